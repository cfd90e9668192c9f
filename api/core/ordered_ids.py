"""Time-ordered UUIDs (UUIDv7 layout) for append-only rows.

Ordering such rows by ``(at, id)`` gives a definite order even for two rows written in the same
instant (a frozen test clock, or a coarse one): ids strictly increase within the process.
Stored as UUID (PostgreSQL) or its canonical text (SQLite), both compare in the same order.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["ordered_uuid"]

_lock = threading.Lock()
_last = [0, 0]  # [unix ms, counter]


def ordered_uuid() -> uuid.UUID:
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last[0]:
            ms, counter = _last[0], _last[1] + 1
            if counter > 0xFFF:
                ms, counter = ms + 1, 0
        else:
            counter = 0
        _last[0], _last[1] = ms, counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    return uuid.UUID(int=value)
