"""Persistence. Every personal value is stored as ciphertext (``*_ct``) plus, where looked up,
a keyed blind index (``*_idx``). Modules by domain; ``MAIN_MODULES``/``VAULT_MODULES`` list them
for the ORM configuration. GraphQL never sees these classes: services map them explicitly."""

MAIN_MODULES = [
    "api.models.member",
    "api.models.consent",
    "api.models.audit",
    "api.models.partner",
    "api.models.rights",
    "api.models.ops",
    "api.models.article5",
    "api.models.onboarding",
    "api.models.passkeys",
    "api.models.accounts",
    "api.models.announcements",
    "api.models.partner_loop",
    "api.models.partner_audits",
]
VAULT_MODULES = ["api.models.vault"]
