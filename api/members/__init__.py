"""api.members.records"""
