"""api.rights.requests"""
