"""Data-subject requests and member notifications."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from api.models.enums import DataRequestKind, DataRequestStatus


class DataRequest(Model):
    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField(null=True, db_index=True)
    kind = fields.CharEnumField(DataRequestKind, max_length=16)
    status = fields.CharEnumField(DataRequestStatus, max_length=16, default=DataRequestStatus.OPEN,
                                  db_index=True)
    fields_: fields.JSONField[list[str]] = fields.JSONField(source_field="fields", default=list)
    note_ct = fields.BinaryField(null=True)  # the member's note, under the member's data key
    received_at = fields.DatetimeField()
    due_at = fields.DatetimeField()
    resolved_at = fields.DatetimeField(null=True)
    resolution = fields.CharField(max_length=255, null=True)
    overdue_flagged_at = fields.DatetimeField(null=True)

    class Meta:
        table = "data_requests"


class Notification(Model):
    """A message to a member, in a durable outbox. The address is looked up at send time."""

    id = fields.UUIDField(primary_key=True)
    member_id = fields.UUIDField(null=True, db_index=True)
    kind = fields.CharField(max_length=40)
    subject = fields.CharField(max_length=200)
    body = fields.TextField()
    recipient_ct = fields.BinaryField(null=True)  # set when the member is destroyed before sending
    status = fields.CharField(max_length=16, default="PENDING", db_index=True)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=255, null=True)

    class Meta:
        table = "notifications"
