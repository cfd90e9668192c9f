"""Reading an import file (CSV or JSON Lines) into raw rows with their line numbers.

Nothing here judges values: that is :mod:`api.onboarding.rows`. This module only turns bytes
into ``{column: value}`` dicts and reports what cannot be read at all (bad UTF-8, a CSV row
with the wrong number of cells, a line that is not a JSON object, a file cut off mid-line).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "REQUIRED", "FORMATS", "RawRow", "Rejection", "ParsedFile", "detect_format",
           "parse"]

COLUMNS = ("userId", "email", "fullName", "dateOfBirth", "phone", "address", "purchases",
           "consents")
REQUIRED = ("userId", "email", "fullName")
FORMATS = ("csv", "jsonl")
_LIST_COLUMNS = ("purchases", "consents")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class RawRow:
    line: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    """Why one line cannot be imported. ``reason`` never repeats the rejected value."""

    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"line {self.line}: {where}{self.reason}"


@dataclass
class ParsedFile:
    sha256: str
    file_format: str
    rows: list[RawRow] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def detect_format(path: Path, given: str | None) -> str | None:
    """``--format`` when given, else by extension; None when neither says."""
    if given:
        return given if given in FORMATS else None
    return _EXTENSIONS.get(path.suffix.lower())


def parse(data: bytes, file_format: str) -> ParsedFile:
    out = ParsedFile(hashlib.sha256(data).hexdigest(), file_format)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        out.rejections.append(Rejection(line, None, "the file is not valid UTF-8 here"))
        return out
    if text and not text.endswith("\n"):
        # A writer that died mid-row leaves a last line without its line break; the part that
        # is there may even parse, so the whole last line is refused rather than guessed at.
        last = text.count("\n") + 1
        out.rejections.append(Rejection(last, None, "the file does not end with a line break: "
                                        "its last line looks cut off (a half-written file)"))
        text = text[: text.rfind("\n") + 1]
    if file_format == "csv":
        _csv(text, out)
    else:
        _jsonl(text, out)
    return out


def _csv(text: str, out: ParsedFile) -> None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells or cells == [""]:
                continue
            if header is None:
                header = [c.strip() for c in cells]
                if not _header_ok(header, line, out):
                    return
                continue
            if len(cells) != len(header):
                out.rejections.append(Rejection(line, None, f"the row has {len(cells)} cells, "
                                                f"the header has {len(header)}"))
                continue
            values: dict[str, Any] = {}
            for name, cell in zip(header, cells, strict=True):
                values[name] = _cell(name, cell, line, out)
            out.rows.append(RawRow(line, values))
    except csv.Error:
        out.rejections.append(Rejection(start, None, "the row is not valid CSV (an unclosed "
                                        "quote?)"))
    if header is None and not out.rejections:
        out.rejections.append(Rejection(1, None, "the file has no header line"))


def _header_ok(header: list[str], line: int, out: ParsedFile) -> bool:
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    twice = sorted({c for c in header if header.count(c) > 1})
    for problem, names in (("unknown column", unknown), ("missing column", missing),
                           ("repeated column", twice)):
        if names:
            out.rejections.append(Rejection(line, None, f"{problem}(s): {', '.join(names)}; "
                                            f"columns are {', '.join(COLUMNS)}"))
    return not (unknown or missing or twice)


def _cell(name: str, cell: str, line: int, out: ParsedFile) -> Any:
    """An empty cell is an absent value; list columns hold a JSON array."""
    if cell.strip() == "":
        return [] if name in _LIST_COLUMNS else None
    if name not in _LIST_COLUMNS:
        return cell
    try:
        return json.loads(cell)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        out.rejections.append(Rejection(line, name, "must be a JSON array"))
        return []


def _jsonl(text: str, out: ParsedFile) -> None:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except (ValueError, RecursionError):
            out.rejections.append(Rejection(number, None, "the line is not valid JSON"))
            continue
        if not isinstance(values, dict):
            out.rejections.append(Rejection(number, None, "the line is not a JSON object"))
            continue
        unknown = sorted(k for k in values if k not in COLUMNS)
        if unknown:
            out.rejections.append(Rejection(number, None, f"unknown key(s): {', '.join(unknown)}"
                                            f"; keys are {', '.join(COLUMNS)}"))
            continue
        out.rows.append(RawRow(number, values))
