"""Database set-up: the main store and the vault, each on its own connection and migrations."""

from __future__ import annotations

import logging
from typing import Any

from tortoise import Model, Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as run_migrations

from api.core.settings import Settings
from api.models import MAIN_MODULES, VAULT_MODULES
from api.platform import plain_reads

__all__ = ["orm_config", "init_db", "close_db", "migrate", "is_postgres", "insert_rows",
           "flush_sqlite"]

log = logging.getLogger("consentry.db")

# The WAL file is cut back to this size after a checkpoint. tortoise's default (16 KiB) cut it
# after every automatic checkpoint (about 4 MiB of pages), so the next commits grew the file
# again, and an fsync that extends a file also writes its metadata: it doubled the cost of a
# commit. Destroyed key bytes do not linger in the kept WAL: :func:`flush_sqlite` truncates it.
WAL_SIZE_LIMIT = 16 * 1024 * 1024


def _connection(url: str) -> str | dict[str, Any]:
    if url.startswith("sqlite://"):
        config = expand_db_url(url)
        config["engine"] = "api.platform.sqlite_immediate"  # write transactions wait their turn
        if "journal_size_limit=" not in url:
            config["credentials"]["journal_size_limit"] = WAL_SIZE_LIMIT
        return config
    # asyncpg rejects the "postgresql" scheme spelling in tortoise's URL parser.
    url = "postgres://" + url.split("://", 1)[1] if url.startswith("postgresql://") else url
    if not url.startswith("postgres://"):
        return url
    config = expand_db_url(url)
    config["credentials"]["reset"] = _keep_session
    return config


async def _keep_session(conn: Any) -> None:
    """The pool's reset when it takes a connection back: nothing to undo.

    asyncpg's default sends ``RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()``
    after every pooled use, a second round trip per query (17% of the server's CPU under
    ``me`` load, docs/perf). Nothing here leaves session state on a pooled connection: no
    ``SET`` outside a transaction, ``LISTEN`` on its own connection (``api/platform/jobs.py``),
    advisory locks transaction-scoped. An open transaction is still rolled back (asyncpg does
    that before calling this)."""


def orm_config(settings: Settings) -> dict[str, Any]:
    if settings.main_url.startswith("sqlite://") or settings.vault_url.startswith("sqlite://"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "connections": {"default": _connection(settings.main_url),
                        "vault": _connection(settings.vault_url)},
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
    plain_reads.close_readers()  # first: the last connection to close checkpoints the WAL
    await Tortoise.close_connections()


def is_postgres(settings: Settings) -> bool:
    return settings.main_url.startswith(("postgres://", "postgresql://"))


async def insert_rows(conn: BaseDBAsyncClient, model: type[Model], rows: list[dict[str, Any]]) -> None:
    """``bulk_create`` without building model instances (their validating ``__init__`` was a
    tenth of a delivery's CPU): tortoise's own INSERT statement and per-field ``to_db_value``
    conversions, so rows are stored exactly as ``bulk_create`` stores them. Every column must
    be given."""
    if not rows:
        return
    executor = conn.executor_class(model=model, db=conn)
    fields_map = model._meta.fields_map
    columns = [(name, fields_map[name].to_db_value) for name in executor.regular_columns_all]
    await conn.execute_many(executor.insert_query_all,
                            [[to_db(row[name], model) for name, to_db in columns] for row in rows])


async def flush_sqlite() -> None:
    """SQLite keeps old page images in the WAL until a checkpoint: fold them in now, so
    destroyed key bytes do not linger on disk (``secure_delete`` zeroes the freed space)."""
    for name in ("default", "vault"):
        conn = connections.get(name)
        if conn.capabilities.dialect == "sqlite":
            try:
                await conn.execute_query("PRAGMA wal_checkpoint(TRUNCATE)")
            except Exception:  # a busy reader only delays it to the next automatic checkpoint
                log.warning("wal checkpoint deferred on %s", name)
