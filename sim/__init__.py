"""einloom.sim"""
