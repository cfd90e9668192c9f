"""Logging, set up in one place: the CLI calls :func:`configure` once at start.

Two formats, chosen by ``CONSENTRY_LOG_FORMAT`` (``Settings.log_json``): ``json``, one JSON
object per line with the keys in :data:`BASE_KEYS` plus whichever of :data:`FIELDS` the
record carries (``logger.info("request", extra={...})``); ``text``, the same as
``time level logger message key=value...``. The default is json in production, text elsewhere.

Only the fields named in :data:`FIELDS` leave a record, so an ``extra`` holding anything else is
dropped rather than printed. Exception tracebacks are printed with frames and exception types
only: messages can quote the request (a refused value, a document with a password in it).
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

__all__ = ["BASE_KEYS", "FIELDS", "JsonFormatter", "TextFormatter", "configure",
           "withheld_traceback"]

BASE_KEYS = ("time", "level", "logger", "message")
# What structured lines may carry: bounded labels and numbers, never a personal value,
# a token, a member id or query text.
FIELDS = ("request_id", "route", "status", "operation", "code", "duration_ms", "role",
          "partner", "job", "outcome")

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def withheld_traceback(exc_info: _ExcInfo | tuple[None, None, None]) -> str:
    """Frames and exception types of an exception and its causes, without their messages."""
    exc: BaseException | None = exc_info[1]
    parts = []
    depth = 0
    while exc is not None and depth < 5:
        frames = "".join(traceback.format_tb(exc.__traceback__))
        parts.append(f"{type(exc).__module__}.{type(exc).__qualname__} (message withheld)\n"
                     f"{frames}")
        exc, depth = exc.__cause__ or exc.__context__, depth + 1
    return "stack (most recent call last, exception messages withheld):\n" + "caused by ".join(
        parts)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: record.__dict__[key] for key in FIELDS if key in record.__dict__}


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _time(record), "level": record.levelname,
                                "logger": record.name, "message": record.getMessage(),
                                **_fields(record)}
        if record.exc_info:
            line["stack"] = withheld_traceback(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time level logger message key=value...`` for a terminal; tracebacks withheld too."""

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        text = (f"{_time(record)} {record.levelname} {record.name} {record.getMessage()}"
                f"{' ' + extra if extra else ''}")
        if record.exc_info:
            text += "\n" + withheld_traceback(record.exc_info)
        return text


def configure(*, json: bool, level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's included, started with ``log_config=None``) to stderr in
    one format. Replaces handlers set before, so calling it twice is harmless."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
