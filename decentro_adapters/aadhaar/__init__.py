"""aadhaar"""
