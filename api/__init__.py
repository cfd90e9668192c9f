"""Consentry: a clinic's privacy policy run as software.

Layers (dependencies point down only; import-linter enforces them, see ARCHITECTURE.md):

- ``api.service``   the composition root: app, CLI, event subscribers and job order
- ``schema``        GraphQL types and thin resolvers
- ``api.rights``, ``api.sharing``, ``api.consent``, ``api.members``  the domains
- ``api.platform``  runtime, database, jobs, event bus, audit trail, rate limits
- ``api.security``, ``api.core``, ``api.models``  cryptography, foundations, persistence
- ``partners``      adapter plugins, which see only a minimized read-only event
"""
