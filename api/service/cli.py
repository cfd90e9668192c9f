"""The ``consentry`` command line (contract README, "Command line")."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.platform.runtime import Runtime

__all__ = ["main"]


def _runtime() -> Runtime:
    from api.core.clock import clock_from_env
    from api.service.composition import build_runtime

    return build_runtime(clock=clock_from_env())


def _check_shred_log(rt: Runtime) -> None:
    """Destructions are appended to the shred log: a process that cannot write it must not
    start in production (found at start, not at the first withdrawal)."""
    from api.rights.shred_log import ensure

    path = rt.settings.shred_log_path
    try:
        ensure(path)
    except OSError as exc:
        message = (f"the shred log {path} is not writable ({type(exc).__name__}); set "
                   "CONSENTRY_SHRED_LOG or mount the data directory writable")
        if rt.settings.production:
            raise SystemExit(f"error: {message}") from None
        logging.getLogger("consentry.shred").warning("%s", message)


async def _with_db(rt: Any, fn: Callable[[], Awaitable[int]]) -> int:
    from api.platform.db import close_db, init_db

    await init_db(rt.settings)
    try:
        return await fn()
    finally:
        await close_db()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.platform.db import migrate
    from api.service.asgi import create_app
    from api.service.http_guard import MAX_HEADER_BYTES, bounded_http_protocol

    rt = _runtime()
    _check_shred_log(rt)
    asyncio.run(migrate(rt.settings))
    app = create_app(rt)
    # Request heads are capped while they are read: httptools has no limit of its own, so its
    # protocol counts; h11 (the fallback) has one. Slow clients are the reverse proxy's job.
    try:
        import httptools  # noqa: F401
    except ImportError:
        http: Any = "h11"
    else:
        http = bounded_http_protocol(MAX_HEADER_BYTES)
    base = f"http://{args.host}:{args.port}"
    print(f"privacy center: {base}/account/  admin console: {base}/console/", flush=True)
    # log_config=None: uvicorn's loggers go through ours (api/platform/logs.py, set in main)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                proxy_headers=True, server_header=False, access_log=False, http=http,
                h11_max_incomplete_event_size=MAX_HEADER_BYTES, log_config=None)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from api.platform.db import migrate

    rt = _runtime()
    asyncio.run(migrate(rt.settings))
    print("migrations applied")

    async def fold_user_ids() -> int:  # needs the keys, which a migration has not
        from api.members import user_ids

        report = await user_ids.fold_legacy(rt)
        print(f"user ids made case-insensitive: {report.folded}; dormant, done at their next "
              f"sign-in: {report.dormant}")
        for member_id in report.collisions:
            print(f"member {member_id}: user id differs only by case from another member's; "
                  "left reachable by its exact spelling")
        return 0

    return asyncio.run(_with_db(rt, fold_user_ids))


def cmd_schema(args: argparse.Namespace) -> int:
    from schema import build_schema

    print(build_schema().as_str())
    return 0


def cmd_admin_create(args: argparse.Namespace) -> int:
    from api.core.errors import ConsentryError
    from api.members import auth
    from api.platform.db import migrate

    password = sys.stdin.readline().rstrip("\n")
    rt = _runtime()
    asyncio.run(migrate(rt.settings))

    async def go() -> int:
        try:
            uri = await auth.create_admin(rt, user_id=args.user_id, email=args.email,
                                          password=password)
        except ConsentryError as exc:
            print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
            return 2
        print(uri)
        return 0

    return asyncio.run(_with_db(rt, go))


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from api.service.keys_rotation import rotate

    rt = _runtime()

    async def go() -> int:
        print(json.dumps(await rotate(rt)))
        return 0

    return asyncio.run(_with_db(rt, go))


def cmd_jobs_run(args: argparse.Namespace) -> int:
    from api.platform.db import migrate
    from api.platform.jobs import run_all
    from api.service.composition import JOBS

    unknown = set(args.only or ()) - {job.name for job in JOBS}
    if unknown:
        print(f"error: unknown job(s): {', '.join(sorted(unknown))}; jobs are "
              f"{', '.join(job.name for job in JOBS)}", file=sys.stderr)
        return 2
    rt = _runtime()
    _check_shred_log(rt)
    asyncio.run(migrate(rt.settings))

    async def go() -> int:
        results = await run_all(rt, JOBS, args.only or None)
        print(json.dumps(results, default=str, sort_keys=True))
        return 1 if "failed" in results.values() else 0

    return asyncio.run(_with_db(rt, go))


def _metrics_server(rt: Runtime, host: str, port: int) -> Any:
    """The worker's ``/metrics`` (same token, same endpoint as the API's), on its own port."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from api.platform.metrics import endpoint

    async def metrics(request: Request) -> Response:
        return await endpoint(rt, request)

    app = Starlette(routes=[Route("/metrics", metrics)])
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                                         access_log=False, server_header=False,
                                         lifespan="off", log_level="warning"))


def cmd_worker(args: argparse.Namespace) -> int:
    from api.platform.db import migrate
    from api.platform.jobs import run_forever
    from api.service.composition import JOBS, PROMPT_JOBS

    rt = _runtime()
    if args.metrics_port and not rt.settings.metrics_token:
        print("error: --metrics-port needs CONSENTRY_METRICS_TOKEN (the scraper's bearer token)",
              file=sys.stderr)
        return 2
    _check_shred_log(rt)
    asyncio.run(migrate(rt.settings))

    async def go() -> int:
        server = (_metrics_server(rt, args.metrics_host, args.metrics_port)
                  if args.metrics_port else None)
        serving = asyncio.create_task(server.serve()) if server is not None else None
        try:
            # Deliveries and mail on every wake (NOTIFY / in-process) and every --poll
            # seconds; the scanning jobs every --interval.
            await run_forever(rt, JOBS, interval=args.interval, prompt=PROMPT_JOBS,
                              poll=args.poll)
        finally:
            if server is not None and serving is not None:
                server.should_exit = True
                await serving
        return 0

    try:
        return asyncio.run(_with_db(rt, go))
    except KeyboardInterrupt:
        return 0


def cmd_restore_reshred(args: argparse.Namespace) -> int:
    from pathlib import Path

    from api.platform.db import migrate
    from api.rights.reshred import reshred

    rt = _runtime()
    logs = [Path(p) for p in args.log] if args.log else [rt.settings.shred_log_path]
    missing = [str(p) for p in logs if not p.is_file()]
    if missing:  # fail closed: no log is not the same as nothing to destroy
        print(f"error: shred log not found: {', '.join(missing)} (set CONSENTRY_SHRED_LOG or "
              "pass --log)", file=sys.stderr)
        return 2
    asyncio.run(migrate(rt.settings))

    async def go() -> int:
        counts = await reshred(rt, logs)
        print(json.dumps(counts))
        return 1 if counts["failed"] or counts["malformed"] else 0

    return asyncio.run(_with_db(rt, go))


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from api.platform.audit import anchor_holds, head, unchained, verify_chain

    rt = _runtime()

    async def go() -> int:
        checked, broken = await verify_chain()
        if broken is not None:
            print(f"audit trail BROKEN at entry {broken.seq}: {broken.reason} "
                  f"({checked} entries verified before it)", file=sys.stderr)
            return 1
        if args.anchor and not await anchor_holds(args.anchor):
            print(f"audit trail BROKEN: anchor {args.anchor} is not in the chain (entries were "
                  "cut from its end or rewritten)", file=sys.stderr)
            return 1
        print(f"audit trail intact: {checked} entries")
        pending = await unchained()
        if pending:
            print(f"not chained yet: {pending} entries (their transactions are still open)")
        anchor = await head()
        if anchor:
            print(f"anchor: {anchor}  (keep it elsewhere; pass it as --anchor to detect "
                  "truncation)")
        return 0

    return asyncio.run(_with_db(rt, go))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consentry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate if needed and serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(fn=cmd_serve)

    sub.add_parser("migrate", help="apply schema migrations").set_defaults(fn=cmd_migrate)
    sub.add_parser("schema", help="print the GraphQL schema (SDL)").set_defaults(fn=cmd_schema)

    admin = sub.add_parser("admin", help="staff accounts").add_subparsers(dest="sub",
                                                                         required=True)
    create = admin.add_parser("create", help="create an admin; password on stdin")
    create.add_argument("--user-id", required=True)
    create.add_argument("--email", required=True)
    create.set_defaults(fn=cmd_admin_create)

    keys = sub.add_parser("keys", help="key management").add_subparsers(dest="sub",
                                                                       required=True)
    keys.add_parser("rotate", help="re-wrap data keys under the active KEK").set_defaults(
        fn=cmd_keys_rotate)

    jobs = sub.add_parser("jobs", help="scheduled work").add_subparsers(dest="sub",
                                                                       required=True)
    run = jobs.add_parser("run", help="run every due job once and exit")
    run.add_argument("--only", action="append", help="run only this job (repeatable)")
    run.set_defaults(fn=cmd_jobs_run)

    worker = sub.add_parser("worker", help="run jobs continuously (deliveries, mail)")
    worker.add_argument("--interval", type=float, default=10.0,
                        help="seconds between runs of the scanning jobs (default 10)")
    worker.add_argument("--poll", type=float, default=0.1,
                        help="at most this many seconds between delivery runs when not woken "
                             "(default 0.1; PostgreSQL wakes the worker at each commit)")
    worker.add_argument("--metrics-port", type=int, default=0,
                        help="serve /metrics (bearer CONSENTRY_METRICS_TOKEN) on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.set_defaults(fn=cmd_worker)

    restore = sub.add_parser("restore", help="after restoring a backup").add_subparsers(
        dest="sub", required=True)
    again = restore.add_parser("reshred", help="destroy again every member the shred log lists")
    again.add_argument("--log", action="append",
                       help="shred log file (repeatable; default CONSENTRY_SHRED_LOG)")
    again.set_defaults(fn=cmd_restore_reshred)

    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="sub", required=True)
    verify = audit.add_parser("verify", help="walk the hash chain")
    verify.add_argument("--anchor", help="SEQ:HASH printed by an earlier verify; must still hold")
    verify.set_defaults(fn=cmd_audit_verify)

    from api.onboarding.command import add_import_parser  # parser only; work starts when run

    add_import_parser(sub, _runtime)
    return parser


def main(argv: list[str] | None = None) -> int:
    from api.core.settings import Settings
    from api.platform.logs import configure

    args = build_parser().parse_args(argv)
    try:
        json_logs = Settings.from_env().log_json
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure(json=json_logs, level=logging.INFO)
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
