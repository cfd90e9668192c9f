"""``python -m bench``: seed, start the real app under uvicorn, load it from another process.

Every scenario is measured against its reference in the same run and printed as a ratio;
results go to bench/results/<timestamp>.json (gitignored) so runs can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"

ME = ("{ me { id userId email fullName phone address dateOfBirth status "
      "consents { purpose state policyVersion at } } }")
MEMBERS_PAGE = ("query($first: Int, $after: String) { members(first: $first, after: $after) "
                "{ edges { cursor node { id userId email fullName phone address dateOfBirth "
                "status } } pageInfo { hasNextPage endCursor } } }")
SHARED = ("query($first: Int, $after: String) { sharedMembers(first: $first, after: $after) "
          "{ edges { cursor node { ref userId email fullName dateOfBirth phone address } } "
          "pageInfo { hasNextPage endCursor } } }")
FLOOR = "bare floor"
UNCHECKED = "plain JSON, no caller check"  # round 1's reference: the read alone
FLOOR_GOAL = 0.12  # issue 17: `me` as served, one worker, vs the bare starlette endpoint
ANNOUNCE_POLICY = ("mutation($v: String!, $t: String!, $at: DateTime!) { "
                   "announcePolicy(version: $v, text: $t, effectiveAt: $at) { version } }")


def _trusted_me() -> dict[str, Any]:
    """``me`` as the web pages send it: the registered document's hash, no query text."""
    from schema.trusted import DIRECTORY, document_hash

    digest = document_hash((DIRECTORY / "Me.graphql").read_text(encoding="utf-8").strip())
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}


def _round_ratios(row: dict[str, Any], reference: dict[str, Any]) -> list[float]:
    """The ratio of each interleaved round on its own (a row's slice against the reference's
    slice of the same round): their spread is how far one run's ratio can be trusted."""
    return [round(a / b, 3) for a, b in zip(row.get("round_rps", ()),
                                             reference.get("round_rps", ()), strict=False) if b]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _target(name: str, path: str, body: dict[str, Any] | None = None,
            token: str = "") -> dict[str, Any]:
    return {"name": name, "path": path, "method": "POST" if body is not None else "GET",
            "body": body, "headers": {"authorization": f"Bearer {token}"} if token else {}}


def _gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"query": query, "variables": variables or {}}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="consentry-bench-"))
        self.env = dict(os.environ, CONSENTRY_DATA_DIR=str(self.tmp),
                        CONSENTRY_ACCESS_TOKEN_TTL="7200", PYTHONPATH=str(ROOT),
                        # every registration comes from 127.0.0.1: still counted, never refused
                        CONSENTRY_RATE_LIMIT_REGISTER_IP="100000000/hour")
        self.pg_names: list[str] = []
        self.port = 0
        self.server: subprocess.Popen[bytes] | None = None
        self.results: dict[str, Any] = {"scenarios": {}, "notes": []}

    # -- setup ---------------------------------------------------------------------------
    async def _pg_admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.args.pg.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def _pg_url(self, name: str) -> str:
        return self.args.pg.rpartition("/")[0] + "/" + name

    async def setup_db(self) -> None:
        if self.args.use_pg:
            tag = uuid.uuid4().hex[:8]
            self.pg_names = [f"consentry_bench_{tag}", f"consentry_bench_{tag}_vault"]
            for name in self.pg_names:
                await self._pg_admin(f'CREATE DATABASE "{name}"')
            params = f"?{self.args.pg_params}" if self.args.pg_params else ""
            self.env["CONSENTRY_DATABASE_URL"] = self._pg_url(self.pg_names[0]) + params
            self.env["CONSENTRY_VAULT_DATABASE_URL"] = self._pg_url(self.pg_names[1])
        os.environ.update(self.env)

    async def teardown_db(self) -> None:
        for name in self.pg_names:
            await self._pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextmanager
    def served(self, *extra: str) -> Iterator[None]:
        self.port = _free_port()
        cmd = [sys.executable, "-m", "bench.server", "--port", str(self.port), *extra]
        self.server = subprocess.Popen(cmd, env=self.env, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                                timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if self.server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the bench server did not start") from None
                    time.sleep(0.1)
            yield
        finally:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()

    # -- load ----------------------------------------------------------------------------
    def measure(self, targets: list[dict[str, Any]], *, requests: int | None = None,
                concurrency: int | None = None) -> dict[str, dict[str, Any]]:
        """One load process, targets measured in interleaved rounds (see bench/load.py)."""
        a = self.args
        job = {"host": "127.0.0.1", "port": self.port, "targets": targets,
               "concurrency": concurrency or a.concurrency,
               "requests": requests or a.requests, "seconds": a.seconds,
               "rounds": a.rounds if len(targets) > 1 else 1,
               "warmup": a.warmup, "warmup_seconds": min(a.seconds, 3.0)}
        out = subprocess.run([sys.executable, "-m", "bench.load"], input=json.dumps(job),
                             capture_output=True, text=True, env=self.env, cwd=ROOT, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
        results = json.loads(out.stdout)
        for name, r in results.items():
            if r["errors"] or r["first_status"] != 200:
                self.results["notes"].append(f"{name}: {r['errors']} bad responses; first: "
                                             f"{r['sample'][:200]}")
        return results

    def load(self, path: str, *, body: dict[str, Any] | None = None, token: str = "",
             requests: int | None = None, concurrency: int | None = None) -> dict[str, Any]:
        return self.measure([_target(path, path, body, token)], requests=requests,
                            concurrency=concurrency)[path]

    def compare(self, name: str, rows: dict[str, dict[str, Any]], goal: float | None = None) -> None:
        reference = rows["reference"]
        for key, r in rows.items():
            if key != "reference":
                r["ratio"] = round(r["rps"] / reference["rps"], 3) if reference["rps"] else 0.0
                r["round_ratios"] = _round_ratios(r, reference)
        self.results["scenarios"][name] = {"goal_ratio": goal, "rows": rows}
        print(f"\n== {name}" + (f" (goal: ratio >= {goal})" if goal else ""))
        print(f"{'served as':<36}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}"
              f"{'rounds':>12}{'errors':>8}")
        for key, r in rows.items():
            ratio = "1.00" if key == "reference" else f"{r['ratio']:.2f}"
            spread = r.get("round_ratios") or []
            rounds = f"{min(spread):.2f}-{max(spread):.2f}" if len(spread) > 1 else ""
            print(f"{key:<36}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
                  f"{ratio:>8}{rounds:>12}{r['errors']:>8}", flush=True)

    # -- scenarios -----------------------------------------------------------------------
    def graphql_targets(self, reference: dict[str, Any], body: dict[str, Any],
                        token: str) -> list[dict[str, Any]]:
        """The reference, the app, and (full runs) the same request with levers switched off:
        the app's strawberry view without the fast path, and stock strawberry."""
        targets = [reference, _target("graphql (app)", "/graphql", body, token)]
        if not self.args.smoke:
            targets += [_target("strawberry + caches (no fast path)", "/variant/cached/graphql",
                                body, token),
                        _target("stock strawberry", "/variant/strawberry/graphql", body, token)]
        return targets

    def scenario_me(self, seeded: Any) -> None:
        ref = _target("reference", "/plain/me", token=seeded.member_token)
        targets = self.graphql_targets(ref, _gql(ME), seeded.member_token)
        targets.insert(2, _target("me (trusted)", "/graphql", _trusted_me(), seeded.member_token))
        targets.insert(3, _target(UNCHECKED, f"/plain/me_unchecked?id={seeded.member_id}"))
        targets.append(_target(FLOOR, "/plain/hello"))  # interleaved with the me targets
        rows = self.measure(targets)
        floor = rows.pop(FLOOR)
        self.compare("me vs plain JSON", rows, goal=0.6)
        self.against_floor(floor, rows)
        trusted, unchecked = rows["me (trusted)"], rows[UNCHECKED]
        trusted["goal_ratio"] = 0.9
        print(f"me (trusted): ratio {trusted['ratio']:.2f} (goal >= 0.9); "
              f"{trusted['rps'] / unchecked['rps']:.2f} of the read alone (no caller check)",
              flush=True)
        bare = _target("reference", "/plain/typename", _gql("{ __typename }"))
        app = _target("graphql (app)", "/graphql", _gql(ME), seeded.member_token)
        self.compare("me vs bare strawberry { __typename }", self.measure([bare, app]))

    def against_floor(self, floor: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
        """``me`` (as served, trusted, plain JSON) as a fraction of the bare starlette endpoint
        measured in the same interleaved run: what the reads and GraphQL cost together."""
        names = {"graphql (app)": "me as served (app)", "me (trusted)": "me (trusted)",
                 "reference": "plain JSON reference"}
        ratios = {label: round(rows[key]["rps"] / floor["rps"], 3) if floor["rps"] else 0.0
                  for key, label in names.items()}
        self.results["scenarios"]["me vs bare starlette floor"] = {
            "goal_ratio": FLOOR_GOAL, "floor": floor, "ratios": ratios,
            "met": ratios["me as served (app)"] >= FLOOR_GOAL}
        print(f"\n== me vs the bare starlette floor, same run (goal: me as served >= {FLOOR_GOAL})")
        print(f"{'served as':<36}{'req/s':>10}{'ratio':>8}")
        print(f"{'bare floor (/plain/hello)':<36}{floor['rps']:>10.0f}{1.0:>8.3f}")
        for key, label in names.items():
            print(f"{label:<36}{rows[key]['rps']:>10.0f}{ratios[label]:>8.3f}")
        met = "met" if ratios["me as served (app)"] >= FLOOR_GOAL else "not met"
        print(f"me as served: {ratios['me as served (app)']:.3f} of the floor "
              f"(goal >= {FLOOR_GOAL}: {met})", flush=True)

    def scenario_hello(self) -> None:
        self.compare("bare endpoint (floor of the stack)",
                     self.measure([_target("reference", "/plain/hello")]))

    def scenario_members_page(self, seeded: Any) -> None:
        ref = _target("reference", "/plain/members?first=100")
        body = _gql(MEMBERS_PAGE, {"first": 100})
        rows = self.measure(self.graphql_targets(ref, body, seeded.admin_token))
        self.compare("members(first:100) (admin) vs plain JSON", rows)

    def partner_token(self, seeded: Any) -> str:
        """A partner token from the real /oauth/token endpoint (client credentials grant)."""
        import urllib.parse

        form = urllib.parse.urlencode({"grant_type": "client_credentials",
                                       "client_id": seeded.extra["client_id"],
                                       "client_secret": seeded.extra["client_secret"],
                                       "scope": "members:read"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/oauth/token", data=form)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["access_token"]

    def scenario_shared(self, seeded: Any) -> None:
        t = self.partner_token(seeded)
        ref = _target("reference", "/plain/shared?first=100", None, t)
        rows = self.measure(self.graphql_targets(ref, _gql(SHARED, {"first": 100}), t))
        self.compare("sharedMembers(first:100) vs plain JSON", rows, goal=0.3)

    def scenario_outbox(self) -> None:
        """Events/s from the delivery job to a signature-checking webhook receiver process
        (bench/delivery.py: real enqueue, real adapter, real HTTP)."""
        from bench import delivery

        a = self.args
        ns = argparse.Namespace(events=300 if a.smoke else 5000, members=5 if a.smoke else 20,
                                batch=200, concurrency=32, adapter="webhook",
                                pg=a.pg if a.use_pg else "")
        r = asyncio.run(delivery.bench(ns))
        self.results["scenarios"]["outbox delivery"] = {"goal_events_per_second": 1500, **r}
        print("\n== outbox delivery (goal: >= 1500 events/s per worker)")
        print(f"{r['delivered']} events delivered in {r['seconds']:.2f} s: "
              f"{r['events_per_second']:.0f} events/s; receiver saw {r['receiver']}", flush=True)

    def scenario_latency(self) -> None:
        """giveConsent (and erasure) answered -> member.shared (member.erasure) at a webhook
        receiver, one real worker running every job (bench/latency.py): on PostgreSQL at
        ``--latency-members`` (default 10k and 100k; 1,000,000 seeds in ~6 min); smoke: 200
        on SQLite."""
        from bench import latency

        a = self.args
        sizes = [200] if a.smoke else [int(n) for n in a.latency_members.split(",")]
        for size in sizes:
            ns = latency.parse(["--members", str(size), "--samples", "20" if a.smoke else "300",
                                "--erasures", "5" if a.smoke else "50",
                                "--pg", "" if a.smoke else (a.pg or PG_DEFAULT)])
            r = asyncio.run(latency.bench(ns))
            self.results["scenarios"][f"propagation latency {size}"] = r
            latency.report(r)

    def scenario_research(self) -> None:
        """createResearchDataset at 10k and 100k members on PostgreSQL (bench/research.py);
        smoke runs use 100 and 1,000 on SQLite."""
        from bench import research

        a = self.args
        ns = research.parse(["--pg", "", "--small", "100", "--large", "1000", "--rounds", "1"]
                            if a.smoke else ["--pg", a.pg or PG_DEFAULT])
        r = asyncio.run(research.bench(ns))
        self.results["scenarios"]["research dataset"] = r
        research.report(r)

    def scenario_mail(self) -> None:
        """The announcement fan-out and mails/s to a local SMTP server (bench/mail.py)."""
        from bench import mail

        a = self.args
        ns = argparse.Namespace(members=300 if a.smoke else 5000, pg=a.pg if a.use_pg else None)
        r = asyncio.run(mail.bench(ns))
        self.results["scenarios"]["announcement fan-out and mail"] = r
        mail.report(r)

    def scenario_import(self) -> None:
        """Members/minute through the bulk importer (bench/importer.py), on its own store."""
        from bench import importer

        a = self.args
        ns = argparse.Namespace(rows=500 if a.smoke else 20_000, batch=500, format="csv",
                                pg=a.pg if a.use_pg else None)
        r = asyncio.run(importer.bench(ns))
        self.results["scenarios"]["bulk import"] = r
        importer.report(r)

    async def _destroy_times(self, history: int, rounds: int) -> dict[str, Any]:
        from datetime import timedelta

        from api.models.consent import ConsentEvent
        from api.models.enums import ConsentState, LegalBasis
        from api.models.partner import Disclosure, Partner
        from api.platform.db import close_db, init_db
        from api.rights import erasure
        from api.service.composition import build_runtime
        from bench.seed import bulk_members

        rt = build_runtime()
        await init_db(rt.settings)
        try:
            partner = await Partner.first()
            times: dict[str, list[float]] = {"none": [], "long": []}
            for r in range(rounds):
                plain, heavy = await bulk_members(rt, 2, prefix=f"d{r}-")
                now = rt.now()
                await ConsentEvent.bulk_create([ConsentEvent(
                    id=uuid.uuid4(), member_id=heavy, purpose=("marketing", "research")[i % 2],
                    state=(ConsentState.GIVEN, ConsentState.WITHDRAWN)[i // 2 % 2],
                    policy_version="1", at=now - timedelta(minutes=history - i), receipt="x" * 300)
                    for i in range(history)], batch_size=500)
                await Disclosure.bulk_create([Disclosure(
                    id=uuid.uuid4(), member_id=heavy, partner_id=partner.id,
                    partner_name=partner.name, fields_=["FULL_NAME", "ADDRESS"],
                    purpose="order_fulfillment", legal_basis=LegalBasis.CONTRACT, channel="pull",
                    at=now - timedelta(minutes=history - i)) for i in range(history)],
                    batch_size=500)
                for label, member_id in (("none", plain), ("long", heavy)):
                    started = time.perf_counter()
                    receipt = await erasure.destroy(rt, member_id, actor="admin:bench")
                    times[label].append(time.perf_counter() - started)
                    assert receipt.destroyed
            return times
        finally:
            await close_db()

    def scenario_destroy(self) -> None:
        history = 100 if self.args.smoke else 1000
        rounds = 2 if self.args.smoke else 7
        times = asyncio.run(self._destroy_times(history, rounds))
        med = {k: sorted(v)[len(v) // 2] * 1000 for k, v in times.items()}
        ratio = med["long"] / med["none"] if med["none"] else 0.0
        self.results["scenarios"]["destruction"] = {
            "history": history, "rounds": rounds, "median_ms": med, "ratio": round(ratio, 2),
            "all_ms": {k: [round(t * 1000, 2) for t in v] for k, v in times.items()}}
        print(f"\n== destruction of a member ({history} consents + {history} disclosures vs none)")
        print(f"no history: {med['none']:.1f} ms   long history: {med['long']:.1f} ms   "
              f"ratio {ratio:.2f} (median of {rounds})", flush=True)

    async def _grow(self, target: int, prefix: str) -> dict[str, Any]:
        """COPY members until the table holds ``target``; pick cursors in the middle."""
        import base64

        import asyncpg

        from api.service.composition import build_runtime
        from bench.seed import copy_members

        rt = build_runtime()
        dsn = self.env["CONSENTRY_DATABASE_URL"].split("?")[0].replace("postgres://", "postgresql://", 1)
        conn = await asyncpg.connect(dsn)
        try:
            have = await conn.fetchval("SELECT count(*) FROM members")
            took = 0.0
            if target > have:
                print(f"seeding {target - have:,} members with COPY (real encryption)...",
                      flush=True)
                took = await copy_members(rt, dsn, target - have, prefix=prefix)
            have = await conn.fetchval("SELECT count(*) FROM members")
            middle = str(await conn.fetchval(
                "SELECT id FROM members ORDER BY id OFFSET $1 LIMIT 1", have // 2))
        finally:
            await conn.close()
        return {"members": have, "seed_seconds": round(took, 1),
                "members_cursor": base64.urlsafe_b64encode(middle.encode()).decode(),
                "middle_id": middle}

    def _announce(self, seeded: Any, members: int, requests: int) -> dict[str, Any]:
        """announcePolicy over HTTP, one request at a time (each a new version): its cost must
        not grow with the members (the notifications are the job's, api/members/announcements)."""
        from datetime import timedelta

        times: list[float] = []
        errors = 0
        start = datetime.now(UTC) + timedelta(days=40)
        for i in range(requests):
            at = start + timedelta(days=members % 1000, seconds=i)
            body = json.dumps(_gql(ANNOUNCE_POLICY, {"v": f"bench-{members}-{i}", "t": "Bench",
                                                     "at": at.isoformat()})).encode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/graphql", data=body,
                headers={"content-type": "application/json",
                         "authorization": f"Bearer {seeded.admin_token}"})
            started = time.perf_counter()
            with urllib.request.urlopen(req, timeout=120) as r:
                answer = json.loads(r.read())
            times.append((time.perf_counter() - started) * 1000)
            errors += "errors" in answer
        times.sort()
        return {"requests": requests, "errors": errors,
                "p50_ms": round(times[len(times) // 2], 2),
                "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2)}

    def _pages(self, seeded: Any, grown: dict[str, Any]) -> dict[str, Any]:
        from api.service.composition import build_runtime
        from api.sharing import pull

        rt = build_runtime()
        shared_cursor = pull.seal_cursor(rt, seeded.extra["partner_id"], grown["middle_id"])
        partner = self.partner_token(seeded)
        kw = {"requests": 300 if not self.args.smoke else 40, "concurrency": 1}
        return {
            "members first page": self.load("/graphql", body=_gql(MEMBERS_PAGE, {"first": 100}),
                                            token=seeded.admin_token, **kw),
            "members middle page": self.load("/graphql", body=_gql(MEMBERS_PAGE, {
                "first": 100, "after": grown["members_cursor"]}), token=seeded.admin_token, **kw),
            "sharedMembers middle page": self.load("/graphql", body=_gql(SHARED, {
                "first": 100, "after": shared_cursor}), token=partner, **kw),
            "announcePolicy (admin)": self._announce(seeded, grown["members"],
                                                     10 if self.args.smoke else 50),
        }

    def scenario_scale(self, seeded: Any) -> None:
        small, big = self.args.scale_small, self.args.scale_size
        runs: dict[str, Any] = {}
        for label, target, prefix in (("small", small, "s"), ("large", big, "t")):
            grown = asyncio.run(self._grow(target, prefix))
            with self.served():
                runs[label] = {"members": grown["members"], "seed_seconds": grown["seed_seconds"],
                               "pages": self._pages(seeded, grown)}
        self.results["scenarios"]["scale"] = {"goal_ratio_max": 1.3, **runs}
        print(f"\n== page latency at {runs['small']['members']:,} vs {runs['large']['members']:,} "
              "members (PostgreSQL; goal: large/small p50 <= 1.3)")
        print(f"{'page':<28}{'p50 small':>11}{'p50 large':>11}{'ratio':>8}{'p99 small':>11}"
              f"{'p99 large':>11}")
        for name, s_row in runs["small"]["pages"].items():
            l_row = runs["large"]["pages"][name]
            ratio = l_row["p50_ms"] / s_row["p50_ms"] if s_row["p50_ms"] else 0.0
            l_row["p50_ratio_to_small"] = round(ratio, 3)
            print(f"{name:<28}{s_row['p50_ms']:>11.2f}{l_row['p50_ms']:>11.2f}{ratio:>8.2f}"
                  f"{s_row['p99_ms']:>11.2f}{l_row['p99_ms']:>11.2f}", flush=True)
        print(f"seeding {runs['large']['members'] - runs['small']['members']:,} members took "
              f"{runs['large']['seed_seconds']:.0f} s", flush=True)

    def scenario_levers(self, seeded: Any) -> None:
        """Server-level levers: the same `me` request under different uvicorn / GC settings."""
        configs = [("uvloop + httptools, gc.freeze (default)", ()),
                   ("asyncio loop + h11", ("--loop", "asyncio", "--http", "h11")),
                   ("no gc.freeze", ("--no-gc-freeze",)),
                   ("gc.freeze + gen0 threshold 50000", ("--gc-threshold", "50000"))]
        rows: dict[str, Any] = {}
        for label, extra in configs:
            with self.served(*extra):
                rows[label] = self.measure([
                    _target("me", "/graphql", _gql(ME), seeded.member_token),
                    _target("plain", "/plain/me", token=seeded.member_token)])
                rows[label]["ratio"] = round(rows[label]["me"]["rps"] / rows[label]["plain"]["rps"], 3)
        self.results["scenarios"]["server levers"] = rows
        print("\n== server levers (`me` through the app vs its plain reference, same server)")
        print(f"{'server':<42}{'me req/s':>10}{'p50':>8}{'p99':>8}{'plain req/s':>13}{'p99':>8}"
              f"{'ratio':>7}")
        for label, r in rows.items():
            print(f"{label:<42}{r['me']['rps']:>10.0f}{r['me']['p50_ms']:>8.2f}"
                  f"{r['me']['p99_ms']:>8.2f}{r['plain']['rps']:>13.0f}{r['plain']['p99_ms']:>8.2f}"
                  f"{r['ratio']:>7.2f}", flush=True)

    # -- main ----------------------------------------------------------------------------
    async def seed(self) -> Any:
        from api.platform.db import close_db, init_db, migrate
        from api.service.composition import build_runtime
        from bench.seed import seed_basic

        rt = build_runtime()
        await migrate(rt.settings)
        await init_db(rt.settings)
        try:
            return await seed_basic(rt, self.args.list_size)
        finally:
            await close_db()

    def run(self) -> int:
        a = self.args
        asyncio.run(self.setup_db())
        try:
            seeded = asyncio.run(self.seed())
            if a.scale:
                self.scenario_scale(seeded)
                return self.finish()
            if a.levers:
                self.scenario_levers(seeded)
                return self.finish()
            from bench import writes

            with self.served():
                for name, fn in (("hello", self.scenario_hello),
                                 ("me", lambda: self.scenario_me(seeded)),
                                 ("shared", lambda: self.scenario_shared(seeded)),
                                 ("members", lambda: self.scenario_members_page(seeded)),
                                 ("writes", lambda: writes.scenario(self, seeded))):
                    if self.wanted(name):
                        fn()
            if self.wanted("destroy"):
                self.scenario_destroy()
            if self.wanted("outbox"):
                self.scenario_outbox()
            if self.wanted("import"):
                self.scenario_import()
            if self.wanted("mail"):
                self.scenario_mail()
            if self.wanted("research"):
                self.scenario_research()
            if self.wanted("latency"):
                self.scenario_latency()
        finally:
            asyncio.run(self.teardown_db())
        return self.finish()

    def wanted(self, name: str) -> bool:
        return not self.args.only or name in self.args.only.split(",")

    def finish(self) -> int:
        a = self.args
        self.results.update({
            "at": datetime.now(UTC).isoformat(), "database": "postgresql" if a.use_pg else "sqlite",
            "smoke": a.smoke, "concurrency": a.concurrency, "cpus": os.cpu_count(),
            "commit": _commit(),
        })
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(json.dumps(self.results, indent=2))
        for note in self.results["notes"]:
            print(f"note: {note}")
        print(f"\nresults: {out}")
        return 0


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT, check=False).stdout.strip()
    except OSError:
        return ""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny sizes; finishes in seconds")
    p.add_argument("--pg", nargs="?", const=PG_DEFAULT, default=None,
                   help=f"run on PostgreSQL (server URL, default {PG_DEFAULT})")
    p.add_argument("--scale", action="store_true",
                   help="page latency at 10k vs 1M members (PostgreSQL; minutes)")
    p.add_argument("--only", default="",
                   help="comma-separated scenarios: hello,me,shared,members,writes,latency,destroy,outbox,"
                        "research,import,mail")
    p.add_argument("--pg-params", default="",
                   help="query string for the main PostgreSQL URL, e.g. maxsize=20 (pool size)")
    p.add_argument("--levers", action="store_true",
                   help="only `me` under several server settings (uvloop/h11, gc)")
    p.add_argument("--scale-size", type=int, default=1_000_000)
    p.add_argument("--scale-small", type=int, default=10_000)
    p.add_argument("--latency-members", default="10000,100000",
                   help="store sizes of the latency scenario (PostgreSQL), e.g. 10000,1000000")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--requests", type=int, default=30_000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--rounds", type=int, default=5,
                   help="interleaved slices per target (background load hits all alike)")
    p.add_argument("--list-size", type=int, default=150)
    args = p.parse_args(argv)
    if args.smoke:
        args.requests, args.seconds, args.warmup, args.concurrency = 200, 2.0, 20, 4
        args.rounds = 2
    args.use_pg = args.pg is not None or args.scale
    if args.use_pg and args.pg is None:
        args.pg = PG_DEFAULT
    return args


def main(argv: list[str] | None = None) -> int:
    return Bench(parse(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
