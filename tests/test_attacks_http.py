"""Attacks from outside, run against a real ``consentry serve`` (security round 2).

- Personal values and secrets never reach the server log: failed sign-ins, registrations and
  profile edits written with inline literals (and variables) leave one line per error with the
  operation, the code and the request id, in development and in production mode.
- A deeply nested JSON body or deeply nested variables answer 400 with a JSON error and a code
  (they answered a plain-text 500 and reset the connection); the same keep-alive connection
  then still answers normally.
- Request headers over 16 kB in total are refused with 431 (a 4 MB header was read and served).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from graphql import GraphQLError, parse

from schema.errors import safe_traceback
from tests.conftest import PASSWORD
from tests.helpers_hardening import write_production_keys
from tests.helpers_serve import serve

CANARIES = ["Canary-99", "Canary-Syntax-98", "Canary-Arg-97", "Canary-Var-96",
            "canary-mail@example.org", "Canary Fullname", "Canary-Pass-95", "canary-dup@example.org",
            "canary-bad-email", "Canary Profile", "Canary-Date", "Canary Anonymous", "Canary-Get-94",
            "Canary-Token-93", "Canary-Bearer-92"]


def _env(tmp_path: Path, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(CONSENTRY_DATA_DIR=str(tmp_path / "data"), CONSENTRY_RATE_LIMIT_REGISTER="1000/hour",
               CONSENTRY_RATE_LIMIT_REGISTER_IP="1000/hour")
    if mode == "production":
        env["CONSENTRY_ENV"] = "production"
        for name, path in write_production_keys(tmp_path / "keys").items():
            env[f"CONSENTRY_{name.upper()}"] = path
    return env


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "serve.log"
    with serve(_env(tmp_path, "development"), log) as (url, _):
        yield url, log


def _post(client: httpx.Client, query: str, variables: dict | None = None, *,
          token: str | None = None, request_id: str = "") -> dict:
    headers = {"x-request-id": request_id} if request_id else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body: dict = {"query": query}
    if variables is not None:
        body["variables"] = variables
    response = client.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _code(answer: dict) -> str:
    return answer["errors"][0]["extensions"]["code"]


@pytest.mark.parametrize("mode", ["development", "production"])
def test_failed_requests_leave_no_secret_or_personal_value_in_the_log(tmp_path, mode):
    log_path = tmp_path / "serve.log"
    with serve(_env(tmp_path, mode), log_path) as (url, _), httpx.Client(base_url=url) as client:
        # Fast path (a valid document), inline password.
        answer = _post(client, 'mutation{login(userId:"someone", password:"Canary-99"){role}}',
                       request_id="attack-login-1")
        assert _code(answer) == "UNAUTHENTICATED"
        # A syntax error and an unknown argument: strawberry's own path.
        answer = _post(client, 'mutation{login(userId:"someone", password:"Canary-Syntax-98"){role}')
        assert _code(answer) == "BAD_USER_INPUT"
        answer = _post(client, 'mutation{login(userId:"someone", password:"Canary-Arg-97", '
                               'pin:"Canary-Arg-97"){role}}')
        assert _code(answer) == "BAD_USER_INPUT"
        # Variables.
        answer = _post(client, "mutation($u: String!, $p: String!){login(userId: $u, password: $p)"
                               "{role}}", {"u": "someone", "p": "Canary-Var-96"})
        assert _code(answer) == "UNAUTHENTICATED"
        # A refused registration with inline personal values, a good one, then a duplicate.
        answer = _post(client, 'mutation{register(input:{userId:"x", email:"canary-mail@example.org",'
                               ' fullName:"Canary Fullname", password:"Canary-Pass-95"}){accessToken}}',
                       request_id="attack-register-2")
        assert _code(answer) == "BAD_USER_INPUT"
        answer = _post(client, 'mutation{register(input:{userId:"victim", email:"victim@example.org",'
                               f' fullName:"Victim Example", password:"{PASSWORD}"}}){{accessToken}}}}')
        token = answer["data"]["register"]["accessToken"]
        answer = _post(client, 'mutation{register(input:{userId:"victim", email:"canary-dup@example.org",'
                               f' fullName:"Canary Fullname", password:"{PASSWORD}"}}){{accessToken}}}}')
        assert _code(answer) == "CONFLICT"
        # Profile edits: a bad email, a bad date literal, and one without a token.
        answer = _post(client, 'mutation{updateProfile(input:{email:"canary-bad-email", '
                               'fullName:"Canary Profile"}){fullName}}', token=token)
        assert _code(answer) == "BAD_USER_INPUT"
        answer = _post(client, 'mutation{updateProfile(input:{dateOfBirth:"Canary-Date"}){fullName}}',
                       token=token)
        assert _code(answer) == "BAD_USER_INPUT"
        answer = _post(client, 'mutation{updateProfile(input:{fullName:"Canary Anonymous"}){fullName}}')
        assert _code(answer) == "UNAUTHENTICATED"
        # Tokens: a refresh token inline, a bearer token that does not verify.
        answer = _post(client, 'mutation{refresh(refreshToken:"Canary-Token-93"){accessToken}}')
        assert _code(answer) == "UNAUTHENTICATED"
        answer = _post(client, "{ me { userId } }", token="Canary-Bearer-92")
        assert _code(answer) == "UNAUTHENTICATED"
        # A mutation over GET (refused: GET serves queries only).
        client.get("/graphql", params={
            "query": 'mutation{login(userId:"someone", password:"Canary-Get-94"){role}}'})
    log = log_path.read_text()
    leaked = [canary for canary in CANARIES if canary.lower() in log.lower()]
    assert not leaked, log
    assert "Traceback" not in log, log
    assert "graphql error field=login code=UNAUTHENTICATED request=attack-login-1" in log, log
    assert ("graphql error field=register code=BAD_USER_INPUT request=attack-register-2"
            in log), log


def test_an_internal_error_traceback_withholds_messages():
    """What an INTERNAL error logs: frames and exception types, never the document."""
    secret = "-".join(["Canary", "Internal", "91"])  # built, so no source line shows it
    try:
        parse('mutation { login(userId: "someone", password: "' + secret + '" ')
    except GraphQLError as exc:
        try:
            raise ValueError("bad value " + secret) from exc
        except ValueError as outer:
            logged = safe_traceback(outer)
    assert "Canary-Internal" not in logged
    assert logged.startswith("stack (most recent call last, exception messages withheld):\n"
                             "builtins.ValueError (message withheld)\n"), logged
    assert "caused by graphql.error.syntax_error.GraphQLSyntaxError (message withheld)" in logged


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _exchange(conn: http.client.HTTPConnection, method: str, path: str,
              body: bytes | None = None) -> tuple[int, str, dict]:
    conn.request(method, path, body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    return response.status, response.getheader("content-type", ""), json.loads(data)


def test_deeply_nested_json_is_refused_and_the_connection_stays_usable(dev_server):
    url, _ = dev_server
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    ok = b'{"query":"{__typename}"}'
    assert _exchange(conn, "POST", "/graphql", ok)[0] == 200
    sock = conn.sock
    refused = {"errors": [{"message": "the JSON is nested more than 64 levels deep",
                           "extensions": {"code": "BAD_USER_INPUT"}}]}
    attacks = [
        ("POST", "/graphql", _nested(2000)),  # 12 kB, 2,000 deep: the whole body
        ("POST", "/graphql", b'{"query":"{__typename}","variables":{"v":' + _nested(2000) + b"}}"),
        ("POST", "/graphql", b'{"query":"{__typename}","variables":{"v":' + _nested(100) + b"}}"),
        ("GET", "/graphql?" + urllib.parse.urlencode(
            {"query": "{__typename}", "variables": '{"v":' + "[" * 2000 + "]" * 2000 + "}"}), None),
    ]
    for method, path, body in attacks:
        status, content_type, answer = _exchange(conn, method, path, body)
        assert (status, content_type, answer) == (400, "application/json", refused), path[:40]
        # The same keep-alive connection answers the next request normally.
        assert _exchange(conn, "POST", "/graphql", ok) == (
            200, "application/json", {"data": {"__typename": "Query"}})
        assert conn.sock is sock
    # Nesting within the bound is still accepted (an unused variable is ignored).
    status, _, answer = _exchange(
        conn, "POST", "/graphql", b'{"query":"{__typename}","variables":{"v":' + _nested(60) + b"}}")
    assert (status, answer) == (200, {"data": {"__typename": "Query"}})
    conn.close()


def _raw_request(port: int, head: bytes) -> bytes:
    """Send a request head as is and return what the server answered before it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head)
        except OSError:  # the server may close while a huge head is still being sent
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    return b"".join(chunks)


def test_request_headers_over_16_kb_are_refused(dev_server):
    url, _ = dev_server
    port = int(url.rsplit(":", 1)[1])
    with httpx.Client(base_url=url) as client:
        big = client.post("/graphql", json={"query": "{__typename}"}, headers={"x-big": "a" * 20_000})
        assert big.status_code == 431
        assert big.json() == {"errors": [{"message": "request headers too large",
                                          "extensions": {"code": "BAD_USER_INPUT"}}]}
        # Many small headers count too.
        many = {f"x-h{i}": "b" * 100 for i in range(200)}
        assert client.get("/healthz", headers=many).status_code == 431
        # Just under the limit is fine.
        assert client.get("/healthz", headers={"x-fine": "c" * 12_000}).status_code == 200
    # 4 MB of one header: refused (431, or the connection closed), never read and served.
    answer = _raw_request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                          + b"a" * 4_000_000 + b"\r\n\r\n")
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:200]
    with httpx.Client(base_url=url) as client:
        assert client.get("/healthz").status_code == 200
