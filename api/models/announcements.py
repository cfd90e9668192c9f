"""Announcements to every member, fanned out by a job (``api/members/announcements.py``)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

__all__ = ["Announcement"]


class Announcement(Model):
    """One message for every reachable member. The request that announces writes only this
    row; the fan-out job turns it into notifications in batches by member id. ``cursor`` is
    the last member id done and ``batches`` counts committed batches: each batch advances
    both only if ``batches`` is still what it read (compare-and-set), so two workers never
    notify the same members and a crash resumes after the last committed batch."""

    id = fields.UUIDField(primary_key=True)
    kind = fields.CharField(max_length=40)
    subject = fields.CharField(max_length=200)
    body = fields.TextField()
    created_at = fields.DatetimeField()
    cursor = fields.UUIDField(null=True)
    batches = fields.IntField(default=0)
    notified = fields.IntField(default=0)
    done_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "announcements"
