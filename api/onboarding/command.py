"""``consentry import members FILE``: the command around :mod:`api.onboarding.importer`.

Output: rejected rows (``line N: field: reason``) and a progress bar on stderr, the bar only
when stderr is a terminal; one summary line on stdout whatever happens. Exit codes: 0 done
(or nothing left to do), 2 the file cannot be imported (nothing was written), 1 a write
failed (rerun: the import resumes from its checkpoint).

Test hook: ``CONSENTRY_IMPORT_CRASH_AFTER_BATCHES=N`` makes the process exit hard (no cleanup,
exit code 75) right after its N-th committed batch, as a crash would; tests use it to check
resuming. It does nothing unless set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from api.platform.runtime import Runtime

__all__ = ["add_import_parser", "CRASH_HOOK"]

CRASH_HOOK = "CONSENTRY_IMPORT_CRASH_AFTER_BATCHES"
_MAX_REPORTED = 1000
_BAR = 30


def add_import_parser(sub: Any, runtime: Callable[[], Runtime]) -> None:
    """Register ``import members`` on the top-level subparsers; work starts only when run."""
    from api.onboarding.formats import FORMATS
    from api.onboarding.importer import DEFAULT_BATCH

    group = sub.add_parser("import", help="bulk imports").add_subparsers(dest="sub",
                                                                         required=True)
    members = group.add_parser("members", help="import members from CSV or JSON Lines "
                               "(columns and behaviour: docs/import.md)")
    members.add_argument("file", type=Path)
    members.add_argument("--format", choices=FORMATS,
                         help="csv or jsonl (default: from the extension)")
    members.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                         help=f"members per transaction (default {DEFAULT_BATCH})")
    members.set_defaults(fn=lambda args: run(args, runtime))


class _Bar:
    """A one-line progress bar redrawn in place; silent when the stream is not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.live or not total:
            return
        filled = _BAR * done // total
        self.stream.write(f"\r[{'#' * filled}{'.' * (_BAR - filled)}] {done:,}/{total:,} "
                          f"members ({100 * done // total}%)")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def _crash_hook(bar: _Bar) -> Callable[[int, int], None]:
    after = int(os.environ.get(CRASH_HOOK, "0") or 0)
    batches = 0

    def progress(done: int, total: int) -> None:
        nonlocal batches
        bar(done, total)
        batches += 1
        if after and batches >= after:
            os._exit(75)  # the test hook: die like a killed process, after the commit

    return progress


def run(args: argparse.Namespace, runtime: Callable[[], Runtime]) -> int:
    from api.onboarding.formats import detect_format, parse

    path: Path = args.file
    if not 1 <= args.batch_size <= 10_000:
        print("error: --batch-size must be between 1 and 10000", file=sys.stderr)
        return 2
    file_format = detect_format(path, args.format)
    if file_format is None:
        print(f"error: cannot tell the format of {path.name}: name it .csv or .jsonl, or pass "
              "--format", file=sys.stderr)
        print(f"import of {path.name}: not started (unknown format)")
        return 2
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        print(f"import of {path.name}: not started (unreadable file)")
        return 2
    parsed = parse(data, file_format)
    rt = runtime()
    return asyncio.run(_run(rt, parsed, path.name, args.batch_size))


async def _run(rt: Runtime, parsed: Any, name: str, batch_size: int) -> int:
    from api.core.errors import ConsentryError
    from api.onboarding.importer import ImportRejected, import_members
    from api.platform.db import close_db, init_db, migrate

    await migrate(rt.settings)
    await init_db(rt.settings)
    bar = _Bar(sys.stderr)
    try:
        summary = await import_members(rt, parsed, batch_size=batch_size,
                                       progress=_crash_hook(bar))
    except ImportRejected as exc:
        for rejection in exc.rejections[:_MAX_REPORTED]:
            print(rejection, file=sys.stderr)
        if len(exc.rejections) > _MAX_REPORTED:
            print(f"... and {len(exc.rejections) - _MAX_REPORTED} more", file=sys.stderr)
        print(f"import of {name}: rejected, {len(exc.rejections)} row(s) with problems; "
              "nothing was imported")
        return 2
    except ConsentryError as exc:
        bar.close()
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        print(f"import of {name}: stopped; what was committed stays, run it again to resume")
        return 1
    finally:
        await close_db()
    bar.close()
    if summary.already_done:
        print(f"import of {name}: already done ({summary.rows} members); nothing to do")
        return 0
    rate = summary.imported / summary.seconds * 60 if summary.seconds else 0.0
    resumed = (f", resumed after batch {summary.resumed_after}" if summary.resumed_after else "")
    print(f"import of {name}: {summary.imported} imported, {summary.skipped} already members "
          f"(skipped), {summary.consents} consents, {summary.purchases} purchases{resumed} "
          f"in {summary.seconds:.1f} s ({rate:,.0f} members/minute)")
    return 0
