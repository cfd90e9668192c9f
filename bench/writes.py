"""The write path: consent, profile and registration writes over HTTP against plain-JSON
references doing the same calls through the same services (bench/reference.py).

Each connection writes as its own member (``seeded.extra["writers"]``, registered through the
real service), so writers do not queue on one member's row lock, as clients of a real service
do not. A consent request is one document with two mutations (give then withdraw), so every
request writes twice: event, signed receipt and audit entry each. ``me`` reads of the
benchmark's member from the same load process give the write/read ratio. ``register`` sends a
fresh user id and email on every request (the load generator's ``counter``); its argon2 hash
is the cost of a registration, so it is its own row, outside the consent-write goal.
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = ["scenario", "CONSENT_PAIR", "PROFILE_PAIR", "REGISTER"]

CONSENT_PAIR = ('mutation { g: giveConsent(purpose: "marketing", policyVersion: "{v}") '
                "{ state receipt } w: withdrawConsent(purpose: \"marketing\") "
                "{ state receipt } }")
PROFILE_PAIR = ('mutation { a: updateProfile(input: {phone: "+44 20 7946 0001"}) { phone } '
                'b: updateProfile(input: {phone: "+44 20 7946 0002"}) { phone } }')
REGISTER = ("mutation($input: RegisterInput!) { register(input: $input) { accessToken "
            "refreshToken expiresIn role member { id userId } } }")
COUNTER = "%COUNTER%"  # 9 characters: the load generator puts a 9-digit number in its place


def _per_member(target: dict[str, Any], variants: list[dict[str, Any]]) -> dict[str, Any]:
    target["variants"] = variants
    return target


def _registration(prefix: str) -> dict[str, Any]:
    return {"userId": f"{prefix}{COUNTER}", "email": f"{prefix}{COUNTER}@example.org",
            "fullName": "Bench Registrant", "password": "correct horse battery staple 42",
            "phone": "+44 20 7946 0000", "address": "1 Clinic Road, Leeds"}


def scenario(bench: Any, seeded: Any, version: str = "1.0") -> None:
    from bench.__main__ import ME, _gql, _target

    writers: list[tuple[str, str]] = seeded.extra["writers"]
    tokens = [{"headers": {"authorization": f"Bearer {token}"}} for _, token in writers]
    consent = CONSENT_PAIR.replace("{v}", version)
    rows = bench.measure([
        _per_member(_target("reference", "/plain/consent_pair"),
                    [{"path": f"/plain/consent_pair?id={m}&purpose=marketing"}
                     for m, _ in writers]),
        _per_member(_target("graphql (app)", "/graphql", _gql(consent)), tokens),
        _target("me (same client)", "/graphql", _gql(ME), seeded.member_token)])
    bench.compare("consent writes (give+withdraw per request, one member per connection) "
                  "vs plain JSON", rows)
    app, me, ref = rows["graphql (app)"], rows["me (same client)"], rows["reference"]
    writes = 2 * app["rps"]
    ratio = writes / me["rps"] if me["rps"] else 0.0
    bench.results["scenarios"]["consent writes"] = {
        "writes_per_second": round(writes), "reference_writes_per_second": round(2 * ref["rps"]),
        "me_reads_per_second": round(me["rps"]), "writes_vs_me": round(ratio, 3),
        "members": min(len(writers), bench.args.concurrency),
        "goal_writes_per_second": 1000, "goal_vs_me": 0.8}
    print(f"consent writes: {writes:.0f}/s (goal >= 1000/s; reference {2 * ref['rps']:.0f}/s); "
          f"vs me reads {me['rps']:.0f}/s: {ratio:.2f} (goal >= 0.8)", flush=True)
    rows = bench.measure([
        _per_member(_target("reference", "/plain/profile_pair"),
                    [{"path": f"/plain/profile_pair?id={m}"} for m, _ in writers]),
        _per_member(_target("graphql (app)", "/graphql", _gql(PROFILE_PAIR)), tokens)])
    bench.compare("updateProfile writes (two per request, one member per connection) "
                  "vs plain JSON", rows)
    tag = secrets.token_hex(3)  # user ids stay unique if the scenario runs twice on one store
    reference = _target("reference", "/plain/register", _registration(f"r{tag}"))
    app_register = _target("graphql (app)", "/graphql",
                           _gql(REGISTER, {"input": _registration(f"g{tag}")}))
    for t in (reference, app_register):
        t["counter"] = COUNTER
    rows = bench.measure([reference, app_register], requests=max(20, bench.args.requests // 20))
    bench.compare("register (argon2 hash each) vs plain JSON", rows)
