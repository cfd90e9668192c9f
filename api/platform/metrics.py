"""Prometheus metrics of one process, served at ``/metrics`` behind a bearer token.

Each process (every ``consentry serve``, a worker started with ``--metrics-port``) keeps its
own counters in its own registry (one per runtime, built on first use, never at import) and is
scraped at its own address; nothing is shared between processes. Gauges that describe the
database (outbox depth and oldest waiting event, dead letters, overdue data requests) are
counted when scraped, so every process reports the same values for them.

Labels are bounded and never personal: schema field names or ``other``, contract error codes,
job names, partner ids (a partner is an organisation an admin registered), outcomes. No member
id, value or token is ever a label.

``/metrics`` is off the public surface: without ``CONSENTRY_METRICS_TOKEN`` it answers 404; with
it, a request without ``Authorization: Bearer <that token>`` gets 401 (compared in constant time).
"""

from __future__ import annotations

import hmac
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from api.models.enums import DataRequestStatus, OutboxStatus
from api.models.partner import OutboxEvent
from api.models.partner_loop import DeletionDuty
from api.models.rights import DataRequest
from api.platform.runtime import Runtime

__all__ = ["Metrics", "endpoint", "metrics_of", "refresh_gauges"]

_KEY = "platform.metrics"
_LATENCY_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0)
_JOB_BUCKETS = (.01, .05, .1, .5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """The series of one process. ``operation`` is a schema field name, ``multiple`` or
    ``other``; ``code`` is ``OK``, a contract error code or ``http_<status>``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.graphql_requests = Counter(
            "consentry_graphql_requests", "GraphQL requests by top-level field and result code",
            ["operation", "code"], registry=r)
        self.graphql_seconds = Histogram(
            "consentry_graphql_request_duration_seconds", "GraphQL request latency",
            ["operation"], buckets=_LATENCY_BUCKETS, registry=r)
        self.http_requests = Counter(
            "consentry_http_requests", "HTTP requests by route and status", ["route", "status"],
            registry=r)
        self.deliveries = Counter(
            "consentry_deliveries", "Outbox delivery tries by partner id and outcome "
            "(delivered, failed, dead)", ["partner", "outcome"], registry=r)
        self.dead_letters = Counter(
            "consentry_dead_letters", "Events that became dead letters, by partner id",
            ["partner"], registry=r)
        self.job_runs = Counter(
            "consentry_job_runs", "Job runs by job and outcome (ok, failed, skipped)",
            ["job", "outcome"], registry=r)
        self.job_seconds = Histogram(
            "consentry_job_duration_seconds", "Job run duration (ok and failed runs)", ["job"],
            buckets=_JOB_BUCKETS, registry=r)
        self.outbox_pending = Gauge(
            "consentry_outbox_pending_events", "Events waiting for delivery (database)",
            registry=r)
        self.outbox_oldest = Gauge(
            "consentry_outbox_oldest_pending_age_seconds",
            "Age of the oldest event waiting for delivery, 0 when none (database)", registry=r)
        self.outbox_dead = Gauge(
            "consentry_outbox_dead_events", "Dead letters waiting for an admin (database)",
            registry=r)
        self.requests_overdue = Gauge(
            "consentry_data_requests_overdue", "Open data-subject requests past their due "
            "date (database)", registry=r)
        self.deletion_duties_overdue = Gauge(
            "consentry_deletion_duties_overdue", "Partner deletion duties past their due date "
            "and unconfirmed (database)", registry=r)


def metrics_of(rt: Runtime) -> Metrics:
    """This process's metrics (kept in ``rt.extras``)."""
    found = rt.extras.get(_KEY)
    if found is None:
        found = rt.extras[_KEY] = Metrics()
    assert isinstance(found, Metrics)
    return found


async def refresh_gauges(rt: Runtime) -> None:
    """Count the database-derived gauges now: three COUNTs and the oldest waiting row."""
    m = metrics_of(rt)
    now = rt.now()
    pending = OutboxEvent.filter(status=OutboxStatus.PENDING)
    m.outbox_pending.set(await pending.count())
    first = await pending.order_by("created_at").first().values_list("created_at", flat=True)
    oldest = first if isinstance(first, datetime) else None
    m.outbox_oldest.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    m.outbox_dead.set(await OutboxEvent.filter(status=OutboxStatus.DEAD).count())
    m.requests_overdue.set(await DataRequest.filter(status=DataRequestStatus.OPEN,
                                                    due_at__lt=now).count())
    m.deletion_duties_overdue.set(await DeletionDuty.filter(confirmed_at=None,
                                                            due_at__lte=now).count())


def _authorized(expected: str, header: str) -> bool:
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                              expected.encode())


async def endpoint(rt: Runtime, request: Request) -> Response:
    """``GET /metrics``: 404 when no token is configured, 401 without it, else the text format."""
    expected = rt.settings.metrics_token
    if not expected:
        return Response("not found\n", status_code=404, media_type="text/plain")
    if not _authorized(expected, request.headers.get("authorization", "")):
        return Response("unauthorized\n", status_code=401, media_type="text/plain",
                        headers={"www-authenticate": "Bearer"})
    await refresh_gauges(rt)
    return Response(generate_latest(metrics_of(rt).registry),
                    headers={"content-type": CONTENT_TYPE_LATEST})
