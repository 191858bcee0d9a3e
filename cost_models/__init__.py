"""einloom.cost_models"""
