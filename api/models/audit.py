"""The hash-chained audit trail. Entries hold ids and action names, never personal values.

``seq`` is the insertion order the database hands out (gap-tolerant, no lock); ``pos`` is the
place in the chain, given with ``prev_hash`` and ``hash`` by the chaining step. An entry with
no ``pos`` is appended but not chained yet (its hashes are empty).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    seq = fields.BigIntField(primary_key=True)
    pos = fields.BigIntField(null=True, unique=True)
    at = fields.DatetimeField()
    actor = fields.CharField(max_length=120)
    action = fields.CharField(max_length=80)
    subject = fields.CharField(max_length=120, null=True)
    detail: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_entries"
        # The latest entry of one action (the processing_record job's last record) without
        # walking the whole trail back.
        indexes = (("action", "seq"),)
