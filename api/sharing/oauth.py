"""Partner credentials and ``POST /oauth/token`` (OAuth 2.0 client credentials, RFC 6749 §4.4).

- ``issuePartnerCredentials`` makes a ``client_id`` and a 32-byte random secret, returns the
  secret once and stores only its SHA-256 (a high-entropy secret needs no slow hash).
- The token endpoint takes ``application/x-www-form-urlencoded`` with ``grant_type``,
  ``scope`` (optional: default every scope of the credential) and the client either as form
  fields or HTTP Basic (§2.3.1), never both. Errors are §5.2 JSON: ``invalid_client`` (401,
  with ``WWW-Authenticate``), ``invalid_request`` / ``unsupported_grant_type`` /
  ``invalid_scope`` (400). Answers are ``Cache-Control: no-store``.
- Revocation: :func:`active_partner` checks the credential row on every partner request, so a
  revoked credential's unexpired tokens stop working at once, as do tokens of a retired
  partner.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse
from tortoise.transactions import in_transaction

from api.core.errors import BadInput, Forbidden, NotFound, Unauthenticated
from api.members import sessions
from api.models.partner import Partner, PartnerCredential
from api.platform import audit
from api.platform.runtime import Runtime
from api.security.tokens import Principal

__all__ = ["token_endpoint", "issue_credentials", "revoke_credentials", "active_partner",
           "SCOPES", "IssuedCredentials"]

SCOPES = ("members:read", "purchases:write", "events:ack")  # events:ack: confirmDeletion
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"
_CLIENT_ID = re.compile(r"^pc_[0-9a-f]{24}$")


@dataclass(frozen=True)
class IssuedCredentials:
    client_id: str
    client_secret: str
    scopes: list[str]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _clean_scopes(scopes: list[str]) -> list[str]:
    cleaned = sorted({s.strip() for s in scopes if isinstance(s, str) and s.strip()})
    if not cleaned:
        raise BadInput("at least one scope is required", field="scopes")
    unknown = [s for s in cleaned if s not in SCOPES]
    if unknown:
        raise BadInput(f"unknown scope; allowed: {', '.join(SCOPES)}", field="scopes")
    return cleaned


async def issue_credentials(rt: Runtime, actor: str, partner_id: str,
                            scopes: list[str]) -> IssuedCredentials:
    wanted = _clean_scopes(scopes)
    partner = await Partner.get_or_none(id=partner_id) if _is_uuid(partner_id) else None
    if partner is None:
        raise NotFound("partner not found")
    if partner.retired_at is not None:
        raise BadInput("this partner is retired", field="partnerId")
    client_id = "pc_" + secrets.token_hex(12)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    async with in_transaction("default") as conn:
        await PartnerCredential.create(client_id=client_id, partner_id=partner.id,
                                       secret_hash=_hash(secret), scopes=wanted,
                                       created_at=rt.now(), using_db=conn)
        await audit.record(rt, actor, "partner.credentials.issue", str(partner.id),
                           {"clientId": client_id, "scopes": wanted}, using=conn)
    return IssuedCredentials(client_id, secret, wanted)


async def revoke_credentials(rt: Runtime, actor: str, client_id: str) -> bool:
    async with in_transaction("default") as conn:
        row = (await PartnerCredential.get_or_none(client_id=client_id, using_db=conn)
               if _CLIENT_ID.match(str(client_id)) else None)
        if row is None:
            raise NotFound("no such client")
        if row.revoked_at is not None:
            return False
        row.revoked_at = rt.now()
        await row.save(using_db=conn, update_fields=["revoked_at"])
        await audit.record(rt, actor, "partner.credentials.revoke", str(row.partner_id),
                           {"clientId": row.client_id}, using=conn)
    return True


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


async def active_partner(rt: Runtime, principal: Principal, scope: str) -> str:
    """The partner id of a partner token whose credential still stands and has ``scope``."""
    if principal.role != "PARTNER":
        raise Forbidden("this operation needs a partner token")
    row = await PartnerCredential.get_or_none(client_id=principal.client_id or "")
    if row is None or row.revoked_at is not None or str(row.partner_id) != principal.subject:
        raise Unauthenticated("these partner credentials were revoked")
    partner = await Partner.get_or_none(id=row.partner_id)
    if partner is None or partner.retired_at is not None:
        raise Unauthenticated("this partner is retired")
    if scope not in principal.scopes or scope not in (row.scopes or []):
        raise Forbidden(f"this operation needs the {scope} scope")
    return str(row.partner_id)


# --- the endpoint ---------------------------------------------------------------------------

class _OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _error(exc: _OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.status == 401:
        headers["www-authenticate"] = 'Basic realm="consentry", charset="UTF-8"'
    return JSONResponse({"error": exc.error, "error_description": exc.description},
                        status_code=exc.status, headers=headers)


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "basic":
        raise _OAuthError("invalid_client", "client authentication must use HTTP Basic", 401)
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    client_id, sep, secret = raw.partition(":")
    if not sep:
        raise _OAuthError("invalid_client", "malformed Basic credentials", 401)
    return unquote(client_id), unquote(secret)


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != _FORM:
        raise _OAuthError("invalid_request", f"the body must be {_FORM}")
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True,
                          max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise _OAuthError("invalid_request", "the body is not a valid form") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise _OAuthError("invalid_request", f"parameter {name[:40]} must appear once")
        out[name] = value
    return out


async def _authenticate(form: dict[str, str], request: Request) -> PartnerCredential:
    basic = _basic(request.headers.get("authorization", ""))
    in_form = "client_id" in form or "client_secret" in form
    if basic and in_form:
        raise _OAuthError("invalid_request", "use one client authentication method, not two")
    client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
    if not client_id or not secret:
        raise _OAuthError("invalid_client", "client authentication failed", 401)
    row = (await PartnerCredential.get_or_none(client_id=client_id)
           if _CLIENT_ID.match(client_id) else None)
    expected = row.secret_hash if row else _hash("no such client")
    ok = hmac.compare_digest(expected, _hash(secret))
    if row is None or not ok or row.revoked_at is not None:
        raise _OAuthError("invalid_client", "client authentication failed", 401)
    partner = await Partner.get_or_none(id=row.partner_id)
    if partner is None or partner.retired_at is not None:
        raise _OAuthError("invalid_client", "client authentication failed", 401)
    return row


async def token_endpoint(rt: Runtime, request: Request) -> JSONResponse:
    try:
        form = await _form(request)
        grant = form.get("grant_type")
        if not grant:
            raise _OAuthError("invalid_request", "grant_type is required")
        cred = await _authenticate(form, request)
        if grant != "client_credentials":
            raise _OAuthError("unsupported_grant_type", "only client_credentials is supported")
        allowed = list(cred.scopes or [])
        requested = form.get("scope")
        scopes = allowed if requested is None else sorted(set(requested.split()))
        if not scopes or any(s not in allowed for s in scopes):
            raise _OAuthError("invalid_scope", "the requested scope is not granted to this client")
    except _OAuthError as exc:
        return _error(exc)
    ttl = rt.settings.partner_token_ttl
    token = sessions.access_token_for(
        rt, Principal("PARTNER", str(cred.partner_id), tuple(scopes), cred.client_id), ttl=ttl)
    return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                         "scope": " ".join(scopes)}, headers=_NO_STORE)
