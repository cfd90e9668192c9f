"""Database wiring: the main store and the vault, each on its own connection and migrations."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as run_migrations

from api.models import MAIN_MODULES, VAULT_MODULES
from api.settings import Settings

__all__ = ["orm_config", "init_db", "close_db", "migrate", "is_postgres"]


def _url(url: str) -> str:
    # asyncpg rejects the "postgresql" scheme spelling in tortoise's URL parser.
    return "postgres://" + url.split("://", 1)[1] if url.startswith("postgresql://") else url


def orm_config(settings: Settings) -> dict[str, Any]:
    if settings.main_url.startswith("sqlite://") or settings.vault_url.startswith("sqlite://"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "connections": {"default": _url(settings.main_url), "vault": _url(settings.vault_url)},
        "apps": {
            "models": {"models": MAIN_MODULES, "default_connection": "default",
                       "migrations": "api.migrations"},
            "vault": {"models": VAULT_MODULES, "default_connection": "vault",
                      "migrations": "api.vault_migrations"},
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def migrate(settings: Settings) -> None:
    """Apply pending migrations on both stores (idempotent)."""
    await run_migrations(config=orm_config(settings))
    await Tortoise.close_connections()


async def init_db(settings: Settings) -> None:
    # Global fallback: uvicorn runs the lifespan in its own task, and request tasks do not
    # inherit a context set there (without it every request under `serve` fails).
    await Tortoise.init(config=orm_config(settings), _enable_global_fallback=True)
    if settings.main_url.startswith("sqlite://"):
        # Deleted rows (destroyed data keys) must not linger in free pages of the file.
        await connections.get("default").execute_script(
            "PRAGMA secure_delete = ON; PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
    if settings.vault_url.startswith("sqlite://"):
        await connections.get("vault").execute_script(
            "PRAGMA secure_delete = ON; PRAGMA busy_timeout = 5000;")


async def close_db() -> None:
    await Tortoise.close_connections()


def is_postgres(settings: Settings) -> bool:
    return settings.main_url.startswith(("postgres://", "postgresql://"))
