"""Operational state: job leases (one runner per job at a time) and rate-limit counters."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class JobLease(Model):
    name = fields.CharField(max_length=80, primary_key=True)
    holder = fields.CharField(max_length=80)
    until = fields.DatetimeField()
    last_run_at = fields.DatetimeField(null=True)

    class Meta:
        table = "job_leases"


class RateCounter(Model):
    key = fields.CharField(max_length=128, primary_key=True)
    window_start = fields.DatetimeField()
    count = fields.IntField(default=0)

    class Meta:
        table = "rate_counters"


class HistoryPurge(Model):
    """A destroyed member whose pseudonymous history (consent events, disclosures) is still to
    be deleted. Destruction queues it so the request does constant work whatever the history;
    the rows hold only ids and ciphertexts under the already-shredded key."""

    member_id = fields.UUIDField(primary_key=True)
    queued_at = fields.DatetimeField()

    class Meta:
        table = "history_purge"
