"""Trusted documents: the GraphQL operations first-party clients send by hash.

The web pages and the clinic's own apps send ``extensions.persistedQuery`` (``version`` 1,
``sha256Hash``: the SHA-256 of the document text, in hex), the form Apollo Client and
graphql-codegen's persisted documents use, instead of the query text. The registered
documents are the ``*.graphql`` files next to this module, one operation each;
``manifest.json`` maps each file's hash to its text (``make trusted`` writes it,
``tests/test_trusted_documents.py`` fails when it drifts). The server parses and validates
each registered document once at start-up (``schema/fastpath.py``); with
``CONSENTRY_TRUSTED_DOCUMENTS_ONLY=true`` anonymous and member callers may send nothing else.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["DIRECTORY", "MANIFEST", "document_hash", "build", "render", "load"]

DIRECTORY = Path(__file__).resolve().parent
MANIFEST = DIRECTORY / "manifest.json"


def document_hash(text: str) -> str:
    """The ``sha256Hash`` a client sends for ``text`` (exactly these characters, UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()


def build(directory: Path = DIRECTORY) -> dict[str, str]:
    """The manifest the ``*.graphql`` files make: hash -> document (text without the
    surrounding whitespace), in file-name order."""
    documents = [path.read_text(encoding="utf-8").strip()
                 for path in sorted(directory.glob("*.graphql"))]
    return {document_hash(text): text for text in documents}


def render(manifest: dict[str, str]) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def load(path: Path = MANIFEST) -> dict[str, str]:
    """The registered documents; a manifest whose hash does not match its text is refused
    (fail closed: the hash is what the client trusts)."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: a trusted-document manifest maps sha256 -> document")
    for digest, text in manifest.items():
        if not isinstance(text, str) or document_hash(text) != digest:
            raise ValueError(f"{path}: entry {str(digest)[:16]}... is not its document's "
                             "SHA-256 (run `make trusted`)")
    return dict(manifest)
