"""The admin console (/console/): the two admin queries it needs beyond the contract, then the
console itself in Chromium through a real ``consentry serve``: sign in with password and TOTP,
announce a partner, issue credentials (the secret shown once), axe-core on every screen."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.conftest import error_code, register_member
from tests.helpers_browser import axe_check, chromium, require_browser, screenshot
from tests.helpers_serve import CONSENTRY, serve

LOOKUP = """query($u: String, $e: String) {
  memberLookup(userId: $u, email: $e) { id userId email fullName } }"""
AUDIT = "{ auditTrail(first: 100) { edges { node { action subject actor } } } }"


async def test_member_lookup_by_exact_user_id_or_email_is_audited(gql, admin, member):
    by_id = await gql(LOOKUP, {"u": "alice"}, token=admin.token)
    assert by_id["data"]["memberLookup"]["email"] == "alice@example.org", by_id
    by_mail = await gql(LOOKUP, {"e": "ALICE@example.org"}, token=admin.token)
    assert by_mail["data"]["memberLookup"]["userId"] == "alice", by_mail
    assert (await gql(LOOKUP, {"u": "ali"}, token=admin.token))["data"]["memberLookup"] is None
    trail = await gql(AUDIT, token=admin.token)
    entries = [e["node"] for e in trail["data"]["auditTrail"]["edges"]]
    reads = [e for e in entries if e["action"] == "admin.read_member"]
    assert [e["subject"] for e in reads] == [member.id, member.id]
    misses = [e for e in entries if e["action"] == "admin.lookup_member"]
    assert len(misses) == 1 and misses[0]["subject"] is None
    assert "ali" not in str(misses)  # the value looked up is not in the trail


@pytest.mark.parametrize("variables", [{}, {"u": "alice", "e": "alice@example.org"}])
async def test_member_lookup_needs_exactly_one_key(gql, admin, member, variables):
    body = await gql(LOOKUP, variables, token=admin.token)
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "userId"


async def test_member_lookup_is_for_admins_only(gql, member):
    other = await register_member(gql, "bob")
    body = await gql(LOOKUP, {"u": "alice"}, token=other.token)
    assert error_code(body) == "FORBIDDEN"


async def test_partner_adapters_lists_usable_adapters_with_their_fields(gql, admin):
    body = await gql("{ partnerAdapters { name accepts } }", token=admin.token)
    adapters = {a["name"]: a["accepts"] for a in body["data"]["partnerAdapters"]}
    everything = ["USER_ID", "EMAIL", "FULL_NAME", "DATE_OF_BIRTH", "PHONE", "ADDRESS"]
    assert adapters["jsonl"] == everything
    assert adapters["webhook"] == everything
