"""Consentry: a clinic's privacy policy run as software.

Layers (dependencies point down only):

- ``schema/``  GraphQL types and thin resolvers
- ``api/``     domain services (plain async functions taking a :class:`Runtime`)
- ``api/models``, ``api/security``  persistence and cryptography
- ``partners/`` adapter plugins, which see only a minimized read-only event
"""
