"""Built-in ``jsonl`` adapter: appends each event as one JSON line to
``<directory>/<partner>.jsonl`` and fsyncs before reporting success.

Delivery is at least once, so a line may repeat after a crash; receivers dedupe by ``id``.
Lines are written with one ``write`` on a file opened in append mode, so concurrent writers
(several workers) never interleave within a line.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from partners.base import PERSONAL_FIELDS, DeliveryError, PartnerAdapter, PartnerEvent, require_keys

__all__ = ["JsonlAdapter"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class JsonlAdapter(PartnerAdapter):
    name = "jsonl"
    accepts = PERSONAL_FIELDS

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.directory = Path(config["directory"])

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        require_keys(config, "directory")

    def path_for(self, partner: str) -> Path:
        return self.directory / f"{_UNSAFE.sub('_', partner).strip('.') or 'partner'}.jsonl"

    def _append(self, path: Path, line: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def deliver(self, event: PartnerEvent) -> None:
        line = (event.to_json() + "\n").encode("utf-8")
        try:
            await asyncio.to_thread(self._append, self.path_for(event.partner), line)
        except OSError as exc:
            raise DeliveryError(f"cannot append to the jsonl directory ({exc.strerror})") from exc
