"""Structured logs of a real ``consentry serve`` (CONSENTRY_LOG_FORMAT=json) over a member's
whole life: every line on stderr is one JSON object with the documented keys, one ``request``
line per request with bounded fields, and nothing the member gave or was given (ids, values,
password, tokens) nor any query text appears anywhere in the log. The same server's
``/metrics`` wants its token and counts the requests by operation and code.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.helpers_serve import CONSENTRY, free_port, fresh_store

PG_URL = os.environ.get("CONSENTRY_TEST_DATABASE_URL", "")
METRICS_TOKEN = "scrape-token-0c1d2e3f4a5b"

REGISTER = ("mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken "
            "member { id } } }")
LOGIN = ("mutation($u: String!, $p: String!) { login(userId: $u, password: $p) "
         "{ accessToken refreshToken } }")
ME = "query ZephyrineProfile { me { id userId email fullName phone address dateOfBirth } }"
GIVE = ("mutation($p: String!, $v: String!) { giveConsent(purpose: $p, policyVersion: $v) "
        "{ state } }")
WITHDRAW_CONSENT = "mutation($p: String!) { withdrawConsent(purpose: $p) { state } }"
UPDATE = "mutation($i: ProfileInput!) { updateProfile(input: $i) { phone address } }"
EXPORT = "mutation { exportMyData { format data } }"
INACCURACY = ("mutation($n: String) { reportInaccuracy(fields: [FULL_NAME], note: $n) "
              "{ id } }")
WITHDRAW = "mutation($p: String!) { withdrawMembership(password: $p) { destroyed } }"

USER_ID = "zephyrine-q7"
EMAIL = "zephyrine.q7@example.org"
NAME = "Zephyrine Quillfeather"
PHONE = "+44 20 7946 0123"
ADDRESS = "42 Marmalade Lane, York"
NEW_PHONE = "+44 20 7946 0456"
NEW_ADDRESS = "7 Treacle Court, Hull"
NOTE = "my surname is spelt Quilfeather"
BASE_KEYS = {"time", "level", "logger", "message"}
ALLOWED_KEYS = BASE_KEYS | {"request_id", "route", "status", "operation", "code", "duration_ms",
                            "role", "partner", "job", "outcome", "stack"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_store(tmp_path, "logs", CONSENTRY_LOG_FORMAT="json",
                     CONSENTRY_METRICS_TOKEN=METRICS_TOKEN) as env:
        yield env


def _serve(env: dict[str, str], tmp_path: Path) -> tuple[str, subprocess.Popen[bytes], Path]:
    """``consentry serve`` with its log (stderr) in one file and its output (stdout) in another."""
    port = free_port()
    log_path = tmp_path / "server.log"
    proc = subprocess.Popen([CONSENTRY, "serve", "--port", str(port)], env=env,
                            stdout=(tmp_path / "server.out").open("w"),
                            stderr=log_path.open("w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return url, proc, log_path
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "consentry serve did not become ready"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


def _gql(c: httpx.Client, query: str, variables: dict[str, Any] | None = None,
         token: str = "") -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = c.post("/graphql", json={"query": query, "variables": variables or {}},
                      headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _ok(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    return dict(body["data"])


def _member_life(url: str) -> list[str]:
    """Every step of a member's life; returns every value the log must not hold."""
    secrets = [USER_ID, EMAIL, NAME, PHONE, ADDRESS, NEW_PHONE, NEW_ADDRESS, NOTE, PASSWORD,
               "1987-06-05"]
    with httpx.Client(base_url=url, timeout=30) as c:
        registered = _ok(_gql(c, REGISTER, {"i": {
            "userId": USER_ID, "email": EMAIL, "fullName": NAME, "password": PASSWORD,
            "phone": PHONE, "address": ADDRESS, "dateOfBirth": "1987-06-05"}}))["register"]
        secrets += [registered["member"]["id"], registered["accessToken"],
                    registered["refreshToken"]]
        refused = _gql(c, LOGIN, {"u": USER_ID, "p": PASSWORD + " wrong"})
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        login = _ok(_gql(c, LOGIN, {"u": USER_ID, "p": PASSWORD}))["login"]
        token = login["accessToken"]
        secrets += [token, login["refreshToken"]]
        assert _ok(_gql(c, ME, token=token))["me"]["email"] == EMAIL
        assert _ok(_gql(c, GIVE, {"p": "marketing", "v": "1.0"}, token))["giveConsent"][
            "state"] == "GIVEN"
        assert _ok(_gql(c, WITHDRAW_CONSENT, {"p": "marketing"}, token))["withdrawConsent"][
            "state"] == "WITHDRAWN"
        assert _ok(_gql(c, UPDATE, {"i": {"phone": NEW_PHONE, "address": NEW_ADDRESS}},
                        token))["updateProfile"] == {"phone": NEW_PHONE, "address": NEW_ADDRESS}
        assert _ok(_gql(c, EXPORT, token=token))["exportMyData"]["format"]
        _ok(_gql(c, INACCURACY, {"n": NOTE}, token))
        # A document that fails to parse, quoting a personal value: its text is never logged.
        broken = _gql(c, '{ me { id email(where: "' + EMAIL + '") ', token=token)
        assert broken["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert _ok(_gql(c, WITHDRAW, {"p": PASSWORD}, token))["withdrawMembership"] == {
            "destroyed": True}
        gone = _gql(c, ME, token=token)
        assert gone["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    return secrets


def _scrape(url: str, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{url}/metrics", headers=headers, timeout=10)


def test_json_logs_of_a_member_life_hold_no_personal_value(env, tmp_path: Path) -> None:
    url, proc, log_path = _serve(env, tmp_path)
    try:
        secrets = _member_life(url)
        assert _scrape(url, None).status_code == 401
        assert _scrape(url, "scrape-token-wrong").status_code == 401
        scraped = _scrape(url, METRICS_TOKEN)
        assert scraped.status_code == 200
    finally:
        _stop(proc)
    text = log_path.read_text()
    for secret in secrets:
        assert secret not in text, f"a member's value reached the log: {secret[:4]}..."
    for fragment in ("ZephyrineProfile", "email(where", "query {", "mutation"):
        assert fragment not in text, fragment

    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert lines
    for line in lines:
        assert BASE_KEYS <= set(line) <= ALLOWED_KEYS, line
        assert line["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    requests = [line for line in lines if line["message"] == "request"]
    graphql = [line for line in requests if line["route"] == "/graphql"]
    for line in requests:
        assert {"request_id", "route", "status", "duration_ms", "role"} <= set(line), line
        assert line["role"] in ("anonymous", "member", "invalid"), line
    assert [(line["operation"], line["code"], line["role"]) for line in graphql] == [
        ("register", "OK", "anonymous"),
        ("login", "UNAUTHENTICATED", "anonymous"),
        ("login", "OK", "anonymous"),
        ("me", "OK", "member"),
        ("giveConsent", "OK", "member"),
        ("withdrawConsent", "OK", "member"),
        ("updateProfile", "OK", "member"),
        ("exportMyData", "OK", "member"),
        ("reportInaccuracy", "OK", "member"),
        ("other", "BAD_USER_INPUT", "member"),
        ("withdrawMembership", "OK", "member"),
        ("me", "UNAUTHENTICATED", "invalid"),
    ]
    assert len({line["request_id"] for line in graphql}) == len(graphql)
    # GraphQL error lines (schema/errors.py) come through the same formatter.
    errors = [line for line in lines if line["message"].startswith("graphql error")]
    assert any("code=UNAUTHENTICATED" in line["message"] for line in errors)

    metrics = scraped.text
    assert 'consentry_graphql_requests_total{code="OK",operation="register"} 1.0' in metrics
    assert ('consentry_graphql_requests_total{code="UNAUTHENTICATED",operation="login"} 1.0'
            in metrics)
    assert 'consentry_graphql_requests_total{code="BAD_USER_INPUT",operation="other"} 1.0' \
        in metrics
    assert 'consentry_http_requests_total{route="/metrics",status="401"} 2.0' in metrics
    for secret in secrets:
        assert secret not in metrics


def test_an_unknown_log_format_is_refused_at_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(CONSENTRY_DATA_DIR=str(tmp_path / "data"), CONSENTRY_LOG_FORMAT="yaml")
    refused = subprocess.run([CONSENTRY, "schema"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2
    assert refused.stderr == "error: CONSENTRY_LOG_FORMAT must be json or text\n"
