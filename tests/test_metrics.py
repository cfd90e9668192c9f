"""``/metrics``: off without a token, 401 without the right one, and series that move with
requests, deliveries, dead letters, job runs and the database (outbox depth and age, overdue
data requests). Labels are bounded: schema field names, never a client's operation name,
alias, member id or value. The worker serves the same endpoint on ``--metrics-port``.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.models.enums import DataRequestKind
from api.models.rights import DataRequest
from api.platform.jobs import run_all
from api.platform.runtime import Runtime
from api.service.asgi import create_app
from api.service.composition import JOBS, with_settings
from api.sharing.queue import deliver_due
from tests.conftest import GQL, PASSWORD, register_member
from tests.helpers_delivery import make_partner, queue
from tests.helpers_serve import CONSENTRY, free_port

TOKEN = "metrics-token-7f3a9c2e"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def mrt(rt: Runtime) -> Runtime:
    """The test runtime with a metrics token (and its own, empty, metrics)."""
    return with_settings(rt, metrics_token=TOKEN)


@pytest.fixture
async def mclient(mrt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(mrt, manage_db=False),
                                    client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_is_404_without_a_configured_token(rt: Runtime) -> None:
    transport = httpx.ASGITransport(app=create_app(rt, manage_db=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert (await c.get("/metrics")).status_code == 404
        assert (await c.get("/metrics", headers={"authorization": "Bearer "})).status_code == 404


async def test_metrics_wants_the_bearer_token(mclient: httpx.AsyncClient) -> None:
    assert (await mclient.get("/metrics")).status_code == 401
    for header in (f"Bearer {TOKEN}x", "Bearer metrics-token", f"Basic {TOKEN}", TOKEN,
                   "Bearer "):
        response = await mclient.get("/metrics", headers={"authorization": header})
        assert response.status_code == 401, header
        assert "consentry_" not in response.text
    samples = await scrape(mclient)
    for name in ("consentry_outbox_pending_events", "consentry_outbox_oldest_pending_age_seconds",
                 "consentry_outbox_dead_events", "consentry_data_requests_overdue"):
        assert (name, frozenset()) in samples, name


async def test_requests_are_counted_by_schema_field_and_code(mclient: httpx.AsyncClient) -> None:
    gql = GQL(mclient)
    member = await register_member(gql, "mira", phone="+44 20 7946 0999")
    before = await scrape(mclient)
    assert value(before, "consentry_graphql_requests_total", operation="register",
                 code="OK") == 1.0
    assert value(before, "consentry_graphql_requests_total", operation="me", code="OK") == 0.0

    await gql("query MiraSecretName { mine: me { id email } }", token=member.token)
    await gql("{ me { id } }", token="not-a-token")
    await gql("{ me { id } purposes { name } }", token=member.token)
    await gql("{ noSuchField }")
    after = await scrape(mclient)
    assert value(after, "consentry_graphql_requests_total", operation="me", code="OK") == 1.0
    assert value(after, "consentry_graphql_requests_total", operation="me",
                 code="UNAUTHENTICATED") == 1.0
    assert value(after, "consentry_graphql_requests_total", operation="multiple",
                 code="OK") == 1.0
    assert value(after, "consentry_graphql_requests_total", operation="other",
                 code="BAD_USER_INPUT") == 1.0
    assert value(after, "consentry_graphql_request_duration_seconds_count", operation="me") == 2.0
    assert value(after, "consentry_http_requests_total", route="/graphql", status="200") == 5.0
    labels = {v for (_, pairs) in after for (_, v) in pairs}
    for leaked in ("MiraSecretName", "mine", "noSuchField", member.id, member.email, "mira",
                   member.token):
        assert leaked not in labels, leaked


async def test_deliveries_dead_letters_and_outbox_gauges_move(mrt: Runtime, clock,
                                                              mclient: httpx.AsyncClient) -> None:
    member = await register_member(GQL(mclient), "nadia")
    ok = await make_partner(mrt, "Steady Courier", "recording", {"bucket": uuid.uuid4().hex})
    bad = await make_partner(mrt, "Broken Courier", "recording",
                             {"bucket": uuid.uuid4().hex, "fail": 10})
    await queue(mrt, ok, member.id, {"fullName": "Nadia Example"})
    await queue(mrt, bad, member.id, {"fullName": "Nadia Example"})
    clock.advance(seconds=90)
    waiting = await scrape(mclient)
    assert value(waiting, "consentry_outbox_pending_events") == 2.0
    assert value(waiting, "consentry_outbox_oldest_pending_age_seconds") == 90.0
    assert value(waiting, "consentry_outbox_dead_events") == 0.0

    assert await deliver_due(mrt, max_attempts=2) == {"claimed": 2, "delivered": 1, "failed": 1,
                                                      "dead": 0}
    clock.advance(hours=2)
    assert await deliver_due(mrt, max_attempts=2) == {"claimed": 1, "delivered": 0, "failed": 0,
                                                      "dead": 1}
    done = await scrape(mclient)
    assert value(done, "consentry_deliveries_total", partner=str(ok.id),
                 outcome="delivered") == 1.0
    assert value(done, "consentry_deliveries_total", partner=str(bad.id), outcome="failed") == 1.0
    assert value(done, "consentry_deliveries_total", partner=str(bad.id), outcome="dead") == 1.0
    assert value(done, "consentry_dead_letters_total", partner=str(bad.id)) == 1.0
    assert value(done, "consentry_outbox_pending_events") == 0.0
    assert value(done, "consentry_outbox_oldest_pending_age_seconds") == 0.0
    assert value(done, "consentry_outbox_dead_events") == 1.0


async def test_job_runs_and_overdue_requests(mrt: Runtime, clock,
                                             mclient: httpx.AsyncClient) -> None:
    now = clock.now()
    for due in (now - timedelta(days=1), now - timedelta(minutes=1), now + timedelta(days=3)):
        await DataRequest.create(id=uuid.uuid4(), member_id=None, kind=DataRequestKind.ACCESS,
                                 received_at=now - timedelta(days=30), due_at=due)
    await run_all(mrt, JOBS, only=["deliver_outbox", "send_mail"])
    samples = await scrape(mclient)
    assert value(samples, "consentry_data_requests_overdue") == 2.0
    assert value(samples, "consentry_job_runs_total", job="deliver_outbox", outcome="ok") == 1.0
    assert value(samples, "consentry_job_runs_total", job="send_mail", outcome="ok") == 1.0
    assert value(samples, "consentry_job_duration_seconds_count", job="deliver_outbox") == 1.0


def _worker(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([CONSENTRY, "worker", "--interval", "0.2", "--metrics-port",
                             str(port)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_worker_serves_job_metrics_behind_the_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_DATA_DIR"] = str(tmp_path / "data")
    refused = subprocess.run([CONSENTRY, "worker", "--metrics-port", str(free_port())], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "CONSENTRY_METRICS_TOKEN" in refused.stderr

    env["CONSENTRY_METRICS_TOKEN"] = TOKEN
    port = free_port()
    proc = _worker(env, port, tmp_path / "worker.log")
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(url, headers={"authorization": f"Bearer {TOKEN}"},
                                     timeout=2)
                if 'consentry_job_runs_total{job="deliver_outbox",outcome="ok"}' in response.text:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker never reported a job run"
            time.sleep(0.2)
        assert httpx.get(url, timeout=2).status_code == 401
        assert "consentry_outbox_pending_events 0.0" in response.text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
    assert PASSWORD not in (tmp_path / "worker.log").read_text()
