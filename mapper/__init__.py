"""einloom.mapper"""
