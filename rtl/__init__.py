"""einloom.rtl"""
