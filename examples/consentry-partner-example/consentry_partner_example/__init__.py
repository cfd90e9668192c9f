"""An example third-party partner adapter for Consentry.

``example-files`` writes each event to ``<directory>/<event id>.json`` (atomically: temp file,
fsync, rename). Naming the file by event id makes redelivery idempotent, which is how a
receiver should treat Consentry's at-least-once delivery. It accepts only the two fields a
logistics partner needs, so the registry never grants it more.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from partners.base import DeliveryError, PartnerAdapter, PartnerEvent

__all__ = ["EventFilesAdapter"]

_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class EventFilesAdapter(PartnerAdapter):
    name = "example-files"
    accepts = frozenset({"fullName", "address"})

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.directory = Path(config["directory"])

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        super().validate_config(config)
        directory = config.get("directory")
        if not isinstance(directory, str) or not os.path.isabs(directory):
            raise ValueError("'directory' must be an absolute path")

    def _write(self, event: PartnerEvent) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(event.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / f"{event.id}.json")
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    async def deliver(self, event: PartnerEvent) -> None:
        if not _ID.match(event.id):
            raise DeliveryError("unexpected event id format")
        try:
            await asyncio.to_thread(self._write, event)
        except OSError as exc:
            raise DeliveryError(f"cannot write the event file ({exc.strerror})") from exc
