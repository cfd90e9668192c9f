"""Built-in ``jsonl`` adapter: appends each event as one JSON line to
``<root>/<directory>/<partner>.jsonl`` and fsyncs before reporting success.

``directory`` is relative to the deployment's files root (``CONSENTRY_JSONL_ROOT``, default
``<data_dir>/partners``) and may not climb out of it (no ``..``, no absolute path in
production; outside production an absolute directory is still accepted, for local tests).
Below the root nothing is followed: every directory is opened with ``O_NOFOLLOW`` from its
parent, and the file with ``O_NOFOLLOW`` too, created ``0600``; a planted symlink, hard link
or special file fails the delivery instead of redirecting member records elsewhere.

Delivery is at least once, so a line may repeat after a crash; receivers dedupe by ``id``.
Lines are written with one ``write`` on a file opened in append mode, so concurrent writers
(several workers) never interleave within a line.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from partners.base import (
    PERSONAL_FIELDS,
    DeliveryError,
    Deployment,
    PartnerAdapter,
    PartnerEvent,
    require_keys,
)

__all__ = ["JsonlAdapter"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
               | os.O_CLOEXEC)


def _parts(directory: str) -> tuple[str, ...]:
    """The path components of ``directory``; ``ValueError`` for anything that could climb out."""
    if "\\" in directory or "\x00" in directory:
        raise ValueError("'directory' must use '/' separators")
    path = PurePosixPath(directory)
    if ".." in path.parts:
        raise ValueError("'directory' may not contain '..'")
    return tuple(p for p in path.parts if p not in ("/", "."))


class JsonlAdapter(PartnerAdapter):
    name = "jsonl"
    accepts = PERSONAL_FIELDS

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.relative = str(config["directory"])

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        require_keys(config, "directory")
        _parts(config["directory"])

    @classmethod
    async def check_config(cls, config: Mapping[str, Any], deployment: Deployment) -> None:
        cls._absolute_allowed(str(config["directory"]), deployment)

    @staticmethod
    def _absolute_allowed(directory: str, deployment: Deployment) -> None:
        if PurePosixPath(directory).is_absolute() and deployment.production:
            raise ValueError("'directory' must be relative to the jsonl root "
                             "(CONSENTRY_JSONL_ROOT)")

    @property
    def directory(self) -> Path:
        """Where the files go (for reading them back; writing never follows links below the root)."""
        if PurePosixPath(self.relative).is_absolute():
            return Path(self.relative)
        return Path(self.deployment.files_root, *_parts(self.relative))

    def path_for(self, partner: str) -> Path:
        return self.directory / self._file_name(partner)

    @staticmethod
    def _file_name(partner: str) -> str:
        return f"{_UNSAFE.sub('_', partner).strip('.') or 'partner'}.jsonl"

    def _open_directory(self) -> int:
        """A descriptor of the target directory, made as needed, no link followed below the
        root (the root itself is the operator's and may be a link)."""
        self._absolute_allowed(self.relative, self.deployment)
        parts: tuple[str, ...]
        if PurePosixPath(self.relative).is_absolute():  # development only: it is the root
            root, parts = Path(self.relative), ()
        elif self.deployment.files_root:
            root, parts = Path(self.deployment.files_root), _parts(self.relative)
        else:
            raise ValueError("no jsonl root configured")
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _append(self, partner: str, line: bytes) -> None:
        directory = self._open_directory()
        try:
            fd = os.open(self._file_name(partner), _FILE_FLAGS, 0o600, dir_fd=directory)
        finally:
            os.close(directory)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                raise DeliveryError("the jsonl target is not a plain file")
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def deliver(self, event: PartnerEvent) -> None:
        line = (event.to_json() + "\n").encode("utf-8")
        try:
            await asyncio.to_thread(self._append, event.partner, line)
        except ValueError as exc:  # the directory is not allowed (stored before the rule)
            raise DeliveryError(f"jsonl directory not allowed ({exc})") from exc
        except OSError as exc:
            raise DeliveryError(f"cannot append to the jsonl directory ({exc.strerror})") from exc
