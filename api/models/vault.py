"""The separate store for data kept under a legal duty (tax records, dormant members).

It lives on its own connection (``CONSENTRY_VAULT_DATABASE_URL``) and every record is encrypted
under its own data key, wrapped by the KEK; expiry crypto-shreds the key, then deletes the row.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RetainedRecord(Model):
    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField(db_index=True)  # a random id, meaningless once the member is gone
    reason = fields.CharField(max_length=16)  # TAX | DORMANT
    wrapped_key = fields.BinaryField(null=True)
    kek_version = fields.IntField()
    data_ct = fields.BinaryField()
    retained_until = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "retained_records"
