"""api.consent.consents"""
