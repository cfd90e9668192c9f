"""api.core"""
