"""api.service"""
