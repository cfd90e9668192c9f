"""The shred log: one line per destroyed member, kept outside the database backups.

A backup taken before a destruction still holds the member (and the audit entry saying it was
destroyed is not in it), so restoring it would bring the member back. Each destruction is
therefore also appended, after its commit, to a plain file (``CONSENTRY_SHRED_LOG``, default
``<data_dir>/shred.log``) that operators keep apart from the stores; after a restore,
``consentry restore reshred`` (:mod:`api.rights.reshred`) destroys every listed member again.

One JSON object per line, ``{"at": ISO-8601, "member": id}``: ids only, never personal values.
Lines are appended with ``O_APPEND`` in one ``write`` and fsynced, so processes sharing the file
never interleave, and a crash can at worst leave a torn last line (reported, not guessed at).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

__all__ = ["Entries", "append", "ensure", "read"]


@dataclass
class Entries:
    """What a log holds: member ids in first-seen order, and how many lines were unreadable."""

    members: list[str] = field(default_factory=list)
    malformed: int = 0


def ensure(path: Path) -> None:
    """Create the log if missing and prove it writable, before a process can destroy anyone
    (``consentry serve``, ``worker`` and ``jobs run`` call it at start)."""
    _append(path, b"")


def _append(path: Path, line: bytes) -> None:
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if line:
            os.write(fd, line)
            os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new directory entry must survive a crash too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


async def append(path: Path, member_id: str, at: datetime) -> None:
    """Durably record one destruction (blocking I/O off the event loop)."""
    line = json.dumps({"at": at.isoformat(), "member": member_id}, sort_keys=True) + "\n"
    await asyncio.to_thread(_append, path, line.encode())


def read(paths: list[Path]) -> Entries:
    """Every member id in the logs, each once; raises FileNotFoundError for a missing log."""
    entries, seen = Entries(), set()
    for path in paths:
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not raw.strip():
                continue
            try:
                member = str(uuid.UUID(json.loads(raw)["member"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                entries.malformed += 1
                continue
            if member not in seen:
                seen.add(member)
                entries.members.append(member)
    return entries
