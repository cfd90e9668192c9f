"""Configuration, read once from the environment (contract README, "Configuration")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Settings"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CONSENTRY_{name}", default)


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _list(name: str) -> tuple[str, ...]:
    raw = _env(name, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _flag(name: str) -> bool | None:
    raw = _env(name, "").strip().lower()
    if not raw:
        return None
    if raw not in ("true", "false"):
        raise ValueError(f"CONSENTRY_{name} must be true or false")
    return raw == "true"


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    data_dir: Path = Path("var")
    database_url: str = ""
    vault_database_url: str = ""
    # Key material: files (or inline values) in production, generated under data_dir in development.
    kek_file: str = ""
    signing_key_file: str = ""
    index_key_file: str = ""
    issuer: str = "consentry"
    audience: str = "consentry-api"
    controller: str = "Consentry Clinic"
    access_token_ttl: int = 900
    partner_token_ttl: int = 600
    refresh_token_ttl: int = 30 * 24 * 3600
    # An admin session ends this long after its password+code sign-in, however it is refreshed.
    admin_session_max_seconds: int = 12 * 3600
    # Failed sign-ins: slowed after `login_slow_after`, refused after `login_lock_after` in the window.
    login_slow_after: int = 3
    login_lock_after: int = 5
    login_window_seconds: int = 900
    rate_limit_url: str = ""  # "" = main database, "redis://..." = Redis
    rate_limit_login: str = "20/minute"
    rate_limit_login_ip: str = "100/minute"
    rate_limit_register: str = "5/hour"
    rate_limit_register_ip: str = "30/hour"
    rate_limit_token: str = "60/minute"
    rate_limit_token_ip: str = "300/minute"
    # Anonymous writes: cookie choices per device id and per address; refresh/logout per address.
    rate_limit_device: str = "30/hour"
    rate_limit_anonymous_ip: str = "120/hour"
    rate_limit_session_ip: str = "600/hour"
    # Account mail a caller can trigger (password reset per address asked for, verification
    # resend per member) and per client address.
    rate_limit_account_mail: str = "5/hour"
    rate_limit_account_mail_ip: str = "30/hour"
    cors_origins: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ("*",)
    partner_allow_list: tuple[str, ...] = ()  # empty = every discovered adapter
    # Partner adapters (security round 2): where `jsonl` may write ("" = <data_dir>/partners) and
    # whether webhooks may reach private networks (None = only outside production).
    jsonl_root: str = ""
    webhook_allow_private: bool | None = None
    # Trusted documents (schema/trusted/): when true, anonymous and member callers may only send
    # registered operations by hash; admins and partners keep ad-hoc documents.
    trusted_documents_only: bool = False
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_tls: str = "none"  # none | starttls | tls
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    mail_from: str = "privacy@consentry.invalid"
    max_body_bytes: int = 1_000_000
    # Data rights (issue 5): how long a dormant member's data waits in the vault before it is
    # destroyed, and how the mailer retries.
    dormant_retention_days: int = 5 * 365
    mail_max_attempts: int = 8
    # Partner loop: days a partner has to delete what a member.erasure/member.revoked lists.
    deletion_due_days: int = 30
    mail_timeout_seconds: float = 30.0
    smtp_ca_file: str = ""  # extra CA bundle to trust for SMTP TLS (private relays); "" = system
    # Append-only list of destroyed members, kept apart from the database backups so that
    # `consentry restore reshred` can destroy them again after a restore ("" = <data_dir>/shred.log).
    shred_log: str = ""
    # Operations: the bearer token /metrics wants ("" = no /metrics at all), and the log format
    # (json | text; "" = json in production, text elsewhere).
    metrics_token: str = field(default="", repr=False)
    log_format: str = ""
    # Where members reach the service (mail links; the WebAuthn origin), and the WebAuthn
    # relying-party id ("" = the host of public_url).
    public_url: str = "http://localhost:8000"
    webauthn_rp_id: str = ""

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def log_json(self) -> bool:
        if self.log_format not in ("", "json", "text"):
            raise ValueError("CONSENTRY_LOG_FORMAT must be json or text")
        return self.log_format == "json" or (not self.log_format and self.production)

    @property
    def shred_log_path(self) -> Path:
        return Path(self.shred_log) if self.shred_log else self.data_dir / "shred.log"

    @property
    def partner_files_root(self) -> Path:
        return Path(self.jsonl_root) if self.jsonl_root else self.data_dir / "partners"

    @property
    def webhook_private_allowed(self) -> bool:
        return (not self.production if self.webhook_allow_private is None
                else self.webhook_allow_private)

    @property
    def webauthn_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()  # as browsers serialise it

    @property
    def webauthn_rp(self) -> str:
        return self.webauthn_rp_id or (urlsplit(self.public_url).hostname or "localhost")

    @property
    def main_url(self) -> str:
        return self.database_url or f"sqlite://{self.data_dir / 'consentry.sqlite3'}"

    @property
    def vault_url(self) -> str:
        return self.vault_database_url or f"sqlite://{self.data_dir / 'vault.sqlite3'}"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values: dict[str, Any] = dict(  # one value per field, of that field's type
            env=_env("ENV", "development"),
            data_dir=Path(_env("DATA_DIR", "var")),
            database_url=_env("DATABASE_URL", ""),
            vault_database_url=_env("VAULT_DATABASE_URL", ""),
            kek_file=_env("KEK_FILE", ""),
            signing_key_file=_env("SIGNING_KEY_FILE", ""),
            index_key_file=_env("INDEX_KEY_FILE", ""),
            issuer=_env("ISSUER", "consentry"),
            audience=_env("AUDIENCE", "consentry-api"),
            controller=_env("CONTROLLER", "Consentry Clinic"),
            access_token_ttl=_int("ACCESS_TOKEN_TTL", 900),
            admin_session_max_seconds=_int("ADMIN_SESSION_MAX_SECONDS", 12 * 3600),
            rate_limit_url=_env("RATE_LIMIT_URL", ""),
            rate_limit_login=_env("RATE_LIMIT_LOGIN", "20/minute"),
            rate_limit_login_ip=_env("RATE_LIMIT_LOGIN_IP", "100/minute"),
            rate_limit_register=_env("RATE_LIMIT_REGISTER", "5/hour"),
            rate_limit_register_ip=_env("RATE_LIMIT_REGISTER_IP", "30/hour"),
            rate_limit_token=_env("RATE_LIMIT_TOKEN", "60/minute"),
            rate_limit_token_ip=_env("RATE_LIMIT_TOKEN_IP", "300/minute"),
            rate_limit_device=_env("RATE_LIMIT_DEVICE", "30/hour"),
            rate_limit_anonymous_ip=_env("RATE_LIMIT_ANONYMOUS_IP", "120/hour"),
            rate_limit_session_ip=_env("RATE_LIMIT_SESSION_IP", "600/hour"),
            rate_limit_account_mail=_env("RATE_LIMIT_ACCOUNT_MAIL", "5/hour"),
            rate_limit_account_mail_ip=_env("RATE_LIMIT_ACCOUNT_MAIL_IP", "30/hour"),
            cors_origins=_list("CORS_ORIGINS"),
            trusted_hosts=_list("TRUSTED_HOSTS") or ("*",),
            partner_allow_list=_list("PARTNER_ADAPTERS"),
            jsonl_root=_env("JSONL_ROOT", ""),
            webhook_allow_private=_flag("WEBHOOK_ALLOW_PRIVATE"),
            trusted_documents_only=bool(_flag("TRUSTED_DOCUMENTS_ONLY")),
            smtp_host=_env("SMTP_HOST", "127.0.0.1"),
            smtp_port=_int("SMTP_PORT", 25),
            smtp_tls=_env("SMTP_TLS", "none"),
            smtp_user=_env("SMTP_USER", ""),
            smtp_password=_env("SMTP_PASSWORD", ""),
            mail_from=_env("MAIL_FROM", "privacy@consentry.invalid"),
            dormant_retention_days=_int("DORMANT_RETENTION_DAYS", 5 * 365),
            deletion_due_days=_int("DELETION_DUE_DAYS", 30),
            mail_max_attempts=_int("MAIL_MAX_ATTEMPTS", 8),
            smtp_ca_file=_env("SMTP_CA_FILE", ""),
            shred_log=_env("SHRED_LOG", ""),
            metrics_token=_env("METRICS_TOKEN", ""),
            log_format=_env("LOG_FORMAT", "").strip().lower(),
            public_url=_env("PUBLIC_URL", "http://localhost:8000"),
            webauthn_rp_id=_env("WEBAUTHN_RP_ID", ""),
        )
        values.update(overrides)
        return cls(**values)
