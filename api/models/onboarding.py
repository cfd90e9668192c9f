"""Bulk imports: one checkpoint per imported file, and the members an import created."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class MemberImport(Model):
    """One file being imported, keyed by its SHA-256. Each batch's transaction advances
    ``batches_done``, so a run that died resumes after the last committed batch."""

    file_sha256 = fields.CharField(max_length=64, primary_key=True)
    file_format = fields.CharField(max_length=8)
    rows = fields.IntField()
    batch_size = fields.IntField()
    batches_done = fields.IntField(default=0)
    imported = fields.IntField(default=0)
    skipped = fields.IntField(default=0)
    started_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "member_imports"


class ImportedMember(Model):
    """A member an import created, without a password. The password-reset flow picks up rows
    whose ``password_set_at`` is null (and sets it once the member has chosen one)."""

    member_id = fields.UUIDField(primary_key=True)
    file_sha256 = fields.CharField(max_length=64, db_index=True)
    imported_at = fields.DatetimeField()
    password_set_at = fields.DatetimeField(null=True)

    class Meta:
        table = "imported_members"
