"""An example third-party partner adapter for Consentry.

``example-files`` writes each event to ``<directory>/<event id>.json`` (atomically: temp file,
fsync, rename). Naming the file by event id makes redelivery idempotent, which is how a
receiver should treat Consentry's at-least-once delivery. It accepts only the two fields a
logistics partner needs, so the registry never grants it more. In production the directory
must lie under the deployment's files root (``self.deployment``, set by Consentry), checked at
announcement (``check_config``) and again before every write.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from partners.base import DeliveryError, Deployment, PartnerAdapter, PartnerEvent

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

    @classmethod
    async def check_config(cls, config: Mapping[str, Any], deployment: Deployment) -> None:
        cls._inside_root(Path(config["directory"]), deployment)

    @staticmethod
    def _inside_root(directory: Path, deployment: Deployment) -> None:
        if not deployment.production:
            return
        root = Path(os.path.realpath(deployment.files_root)) if deployment.files_root else None
        if root is None or not Path(os.path.realpath(directory)).is_relative_to(root):
            raise ValueError("'directory' must lie under the files root (CONSENTRY_JSONL_ROOT)")

    def _write(self, event: PartnerEvent) -> None:
        self._inside_root(self.directory, self.deployment)
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
        except ValueError as exc:
            raise DeliveryError("the directory is outside the files root") from exc
        except OSError as exc:
            raise DeliveryError(f"cannot write the event file ({exc.strerror})") from exc
