"""einloom.einsum"""
