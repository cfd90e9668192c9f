"""The write path: consent and profile writes over HTTP against plain-JSON references.

Each request is one document with two mutations (give then withdraw, or two profile edits),
so every request after the first writes twice: event, signed receipt and audit entry each.
The reference (bench/reference.py) makes the same two calls through the same services; ``me``
reads from the same client give the write/read ratio. ``register`` is not here: the load
generator sends one fixed body, and a registration needs a new user id each time.
"""

from __future__ import annotations

from typing import Any

__all__ = ["scenario"]

CONSENT_PAIR = ('mutation { g: giveConsent(purpose: "marketing", policyVersion: "{v}") '
                "{ state receipt } w: withdrawConsent(purpose: \"marketing\") "
                "{ state receipt } }")
PROFILE_PAIR = ('mutation { a: updateProfile(input: {phone: "+44 20 7946 0001"}) { phone } '
                'b: updateProfile(input: {phone: "+44 20 7946 0002"}) { phone } }')


def scenario(bench: Any, seeded: Any, version: str = "1.0") -> None:
    from bench.__main__ import ME, _gql, _target

    member, token = seeded.member_id, seeded.member_token
    consent = CONSENT_PAIR.replace("{v}", version)
    rows = bench.measure([
        _target("reference", f"/plain/consent_pair?id={member}&purpose=marketing"),
        _target("graphql (app)", "/graphql", _gql(consent), token),
        _target("me (same client)", "/graphql", _gql(ME), token)])
    bench.compare("consent writes (give+withdraw per request) vs plain JSON", rows)
    app, me = rows["graphql (app)"], rows["me (same client)"]
    writes = 2 * app["rps"]
    ratio = writes / me["rps"] if me["rps"] else 0.0
    bench.results["scenarios"]["consent writes"] = {
        "writes_per_second": round(writes), "me_reads_per_second": round(me["rps"]),
        "writes_vs_me": round(ratio, 3), "goal_writes_per_second": 1000, "goal_vs_me": 0.8}
    print(f"consent writes: {writes:.0f}/s (goal >= 1000/s); vs me reads {me['rps']:.0f}/s: "
          f"{ratio:.2f} (goal >= 0.8)", flush=True)
    rows = bench.measure([
        _target("reference", f"/plain/profile_pair?id={member}"),
        _target("graphql (app)", "/graphql", _gql(PROFILE_PAIR), token)])
    bench.compare("updateProfile writes (two per request) vs plain JSON", rows)
