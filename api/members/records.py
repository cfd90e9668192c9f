"""Members: registration, profile reads and edits, and the per-member data key.

A :class:`MemberView` is the decrypted, read-only picture of one member that the GraphQL layer,
exports and partner events are built from. Other code that decrypts member data does it in
bulk or for one purpose only: a pull page (``api/sharing/pull.py``), an outbox payload at
delivery (``api/sharing/bridge.py``), the member's own export (``api/rights/export.py``).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any, NamedTuple

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.core.errors import BadInput, Conflict, NotFound
from api.core.validation import (
    validate_address,
    validate_date_of_birth,
    validate_email,
    validate_full_name,
    validate_password,
    validate_phone,
    validate_user_id,
)
from api.members import user_ids
from api.models.enums import MemberStatus, PersonalField
from api.models.member import Member, MemberKey
from api.platform import audit, plain_reads
from api.platform.runtime import Runtime
from api.platform.sqlite_immediate import ImmediateSqliteClient, immediate
from api.security.blind_index import blind_index
from api.security.envelope import DataKey, new_data_key, unwrap
from api.security.passwords import hash_password

__all__ = ["MemberView", "register", "get_view", "data_key", "update_profile",
           "views_for", "ProfileChange", "sealed_view", "view_of", "view_from_row",
           "READ_COLUMNS", "READ_FROM", "READ_WIDTH"]


@dataclass(frozen=True)
class MemberView:
    id: str
    user_id: str
    email: str
    full_name: str
    date_of_birth: date | None
    phone: str | None
    address: str | None
    status: MemberStatus
    created_at: datetime
    last_active_at: datetime
    has_purchase: bool
    email_verified: bool = False
    pending_email: str | None = None  # an address change waiting for its verification

    def value(self, field: PersonalField) -> str | None:
        """A personal field by enum, as text (dates ISO) for events and exports."""
        raw = getattr(self, field.column)
        return raw.isoformat() if isinstance(raw, date) else raw

    def personal(self) -> dict[str, str | None]:
        return {f.graphql: self.value(f) for f in PersonalField}


@dataclass(frozen=True)
class ProfileChange:
    """What an edit changed, for the partner bridge and correction handling."""

    member_id: str
    changed: frozenset[PersonalField]


class _Row(NamedTuple):
    """The columns of a member that a view needs, read as values (no model instance)."""

    id: uuid.UUID
    status: MemberStatus
    created_at: datetime
    last_active_at: datetime
    has_purchase: bool
    email_verified_at: object
    user_id_ct: bytes
    email_ct: bytes
    full_name_ct: bytes
    date_of_birth_ct: bytes | None
    phone_ct: bytes | None
    address_ct: bytes | None
    pending_email_ct: bytes | None


async def data_key(rt: Runtime, member_id: str, conn: BaseDBAsyncClient | None = None) -> DataKey:
    row = await MemberKey.get_or_none(member_id=member_id, using_db=conn)
    if row is None:
        raise NotFound("member not found")
    return unwrap(rt.keys, row.wrapped, row.kek_version, str(member_id))


def view_of(member: Member | _Row, key: DataKey) -> MemberView:
    """Decrypt a member row's fields with its data key (the row need not be stored as given)."""
    dob = key.decrypt_optional("date_of_birth", member.date_of_birth_ct)
    return MemberView(
        id=str(member.id),
        user_id=key.decrypt("user_id", member.user_id_ct),
        email=key.decrypt("email", member.email_ct),
        full_name=key.decrypt("full_name", member.full_name_ct),
        date_of_birth=date.fromisoformat(dob) if dob else None,
        phone=key.decrypt_optional("phone", member.phone_ct),
        address=key.decrypt_optional("address", member.address_ct),
        status=member.status,
        created_at=member.created_at,
        last_active_at=member.last_active_at,
        has_purchase=member.has_purchase,
        email_verified=member.email_verified_at is not None,
        pending_email=(key.decrypt("pending_email", bytes(member.pending_email_ct))
                       if member.pending_email_ct else None),
    )


def sealed_view(member: Member) -> MemberView:
    """A dormant member whose personal data sits in the vault: the main store cannot read it,
    so admins see the account and its status with empty personal fields."""
    return MemberView(id=str(member.id), user_id="", email="", full_name="", date_of_birth=None,
                      phone=None, address=None, status=member.status,
                      created_at=member.created_at, last_active_at=member.last_active_at,
                      has_purchase=member.has_purchase,
                      email_verified=member.email_verified_at is not None)


# A member and its wrapped data key, read as values in one statement (``plain_reads``):
# ``SELECT {READ_COLUMNS} FROM {READ_FROM} WHERE m.id = $1``; other reads may join more.
READ_COLUMNS = ("m.id, m.status, m.created_at, m.last_active_at, m.has_purchase, "
                "m.email_verified_at, m.user_id_ct, m.email_ct, m.full_name_ct, "
                "m.date_of_birth_ct, m.phone_ct, m.address_ct, m.pending_email_ct, k.wrapped, "
                "k.kek_version")
READ_FROM = "members m JOIN member_keys k ON k.member_id = m.id"
READ_WIDTH = 15
_READ = f"SELECT {READ_COLUMNS} FROM {READ_FROM} WHERE m.id = $1"  # noqa: S608 (constants)


def view_from_row(rt: Runtime, member_id: str,
                  r: Sequence[Any] | None) -> tuple[MemberView, DataKey]:
    """The view and data key from a row starting with :data:`READ_COLUMNS` (None: no such
    member, or its key is destroyed); NOT_FOUND as well when the member withdrew."""
    if r is None or r[1] == MemberStatus.WITHDRAWN.value:
        raise NotFound("member not found")
    at = plain_reads.as_datetime
    member = _Row(r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(r[0]), MemberStatus(r[1]),
                  at(r[2]), at(r[3]), bool(r[4]), r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12])
    key = unwrap(rt.keys, r[13], r[14], str(member_id))
    return view_of(member, key), key


async def _load(rt: Runtime, member_id: str) -> tuple[MemberView, DataKey]:
    found = await plain_reads.fetch(Member, _READ, str(member_id))
    return view_from_row(rt, member_id, found[0] if found else None)


async def get_view(rt: Runtime, member_id: str) -> MemberView:
    return (await _load(rt, member_id))[0]


async def views_for(rt: Runtime, members: list[Member]) -> list[MemberView]:
    """Decrypt several members with one key query (no N+1)."""
    ids = [str(m.id) for m in members]
    keys = {str(k.member_id): k for k in await MemberKey.filter(member_id__in=ids)}
    out = []
    for m in members:
        k = keys.get(str(m.id))
        if k is not None:
            out.append(view_of(m, unwrap(rt.keys, k.wrapped, k.kek_version, str(m.id))))
    return out


def _clean_profile(rt: Runtime, data: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    validators = {"email": validate_email, "full_name": validate_full_name,
                  "phone": validate_phone, "address": validate_address}
    for name, value in data.items():
        if value is None:
            cleaned[name] = None
        elif name == "date_of_birth":
            cleaned[name] = validate_date_of_birth(value, rt.now().date())
        else:
            cleaned[name] = validators[name](value)
    return cleaned


async def register(rt: Runtime, *, user_id: str, email: str, full_name: str, password: str,
                   date_of_birth: date | None = None, phone: str | None = None,
                   address: str | None = None) -> MemberView:
    user_id = validate_user_id(user_id)
    profile = _clean_profile(rt, {"email": email, "full_name": full_name,
                                  "date_of_birth": date_of_birth, "phone": phone,
                                  "address": address})
    validate_password(password, user_id=user_id, email=profile["email"])
    password_hash = await hash_password(password)
    member_id = uuid.uuid4()
    key, wrapped, version = new_data_key(rt.keys, str(member_id))
    now = rt.now()
    dob = profile["date_of_birth"]
    try:
        async with in_transaction("default") as conn:
            await MemberKey.create(member_id=member_id, wrapped=wrapped, kek_version=version,
                                   using_db=conn)
            await Member.create(
                id=member_id, status=MemberStatus.ACTIVE, created_at=now, last_active_at=now,
                password_hash=password_hash,
                user_id_idx=user_ids.index(rt, user_id), user_id_folded=True,
                email_idx=blind_index(rt.keys, "email", profile["email"]),
                user_id_ct=key.encrypt("user_id", user_id),
                email_ct=key.encrypt("email", profile["email"]),
                full_name_ct=key.encrypt("full_name", profile["full_name"]),
                date_of_birth_ct=key.encrypt_optional("date_of_birth",
                                                      dob.isoformat() if dob else None),
                phone_ct=key.encrypt_optional("phone", profile["phone"]),
                address_ct=key.encrypt_optional("address", profile["address"]),
                using_db=conn,
            )
            await audit.record(rt, f"member:{member_id}", "member.register", str(member_id),
                               using=conn)
    except IntegrityError:
        raise Conflict("a member with this user id or email already exists") from None
    return await get_view(rt, str(member_id))


async def _write_profile(rt: Runtime, member_id: str, updates: dict[str, Any],
                         entry: audit.Entry) -> None:
    """The member's new columns and the audit entry that records them, in one transaction.

    On SQLite, outside a caller's transaction, the transaction is one call on the connection's
    thread (``ImmediateSqliteClient.run_alone``): awaited, it was five hops between the event
    loop and that thread (begin, update, the chain's head, the entry, commit)."""
    unknown = set(updates) - _PROFILE_COLUMNS
    if unknown:
        raise ValueError(f"not a profile column: {sorted(unknown)}")
    client = connections.get("default")
    if isinstance(client, ImmediateSqliteClient):
        await client.run_alone(partial(_write_profile_sqlite, member_id=member_id,
                                       updates=updates, entry=entry))
        return
    async with in_transaction("default") as conn:
        await Member.filter(id=member_id).using_db(conn).update(**updates)
        await audit.record(rt, entry.actor, entry.action, entry.subject, entry.detail,
                           using=conn)


def _write_profile_sqlite(conn: sqlite3.Connection, *, member_id: str, updates: dict[str, Any],
                          entry: audit.Entry) -> None:
    assignments = ", ".join(f'"{column}" = ?' for column in updates)
    with immediate(conn):
        conn.execute(f'UPDATE "members" SET {assignments} WHERE "id" = ?',  # noqa: S608 (columns from _PROFILE_COLUMNS)
                     [*updates.values(), member_id])
        audit.append_sqlite(conn, [entry])


_PROFILE_FIELDS = {
    "email": PersonalField.EMAIL, "full_name": PersonalField.FULL_NAME,
    "date_of_birth": PersonalField.DATE_OF_BIRTH, "phone": PersonalField.PHONE,
    "address": PersonalField.ADDRESS,
}
# The columns a profile edit writes (names from here, never from input).
_PROFILE_COLUMNS = frozenset({f"{name}_ct" for name in _PROFILE_FIELDS} | {"email_idx"})


async def update_profile(rt: Runtime, member_id: str, changes: dict[str, Any],
                         *, actor: str | None = None) -> tuple[MemberView, ProfileChange]:
    """Apply edits. ``changes`` maps column names to new values; None clears optional fields.

    Returns the new view and which fields changed, so callers (partner bridge, corrections)
    can react in the same request. Required fields cannot be cleared.
    """
    for required in ("email", "full_name"):
        if required in changes and changes[required] is None:
            raise BadInput(f"{required} cannot be removed", field=required)
    cleaned = _clean_profile(rt, changes)
    before, key = await _load(rt, member_id)
    updates: dict[str, Any] = {}
    changed: set[PersonalField] = set()
    for name, value in cleaned.items():
        old = getattr(before, name)
        if value == old:
            continue
        changed.add(_PROFILE_FIELDS[name])
        text = value.isoformat() if isinstance(value, date) else value
        updates[f"{name}_ct"] = key.encrypt_optional(name, text)
        if name == "email":
            updates["email_idx"] = blind_index(rt.keys, "email", value)
    if updates:
        entry = audit.Entry(rt.now(), actor or f"member:{member_id}", "member.update_profile",
                            member_id, {"fields": sorted(f.value for f in changed)})
        try:
            await _write_profile(rt, str(before.id), updates, entry)
        except IntegrityError:
            raise Conflict("another member uses this email") from None
    view = await get_view(rt, member_id) if updates else before
    return view, ProfileChange(member_id, frozenset(changed))
