"""Shared helpers of the hardening tests: production key files and apps with changed settings."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.platform.runtime import Runtime
from api.security.keys import generate_kek_file
from api.service.asgi import create_app


def write_production_keys(directory: Path) -> dict[str, str]:
    """Key files as an operator would provide them (not marked as development keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    kek, sign, index = directory / "kek.json", directory / "signing.pem", directory / "index.key"
    if not kek.exists():
        generate_kek_file(kek)
        sign.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        index.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    return {"kek_file": str(kek), "signing_key_file": str(sign), "index_key_file": str(index)}


def runtime_with(rt: Runtime, **overrides: object) -> Runtime:
    """Another "process": same database and clock, changed settings (and keys if production)."""
    from api.security.keys import KeyRing

    settings = dataclasses.replace(rt.settings, **overrides)
    keys = KeyRing.load(settings) if settings.production else rt.keys
    return dataclasses.replace(rt, settings=settings, keys=keys, extras={})


def client_for(runtime: Runtime, address: str = "127.0.0.1",
               base_url: str = "http://testserver") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(runtime, manage_db=False),
                                    client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)
