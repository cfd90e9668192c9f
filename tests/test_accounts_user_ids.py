"""Case-insensitive user ids over existing data: rows written before ids folded case are found
by their exact spelling, folded at sign-in or by ``consentry migrate``, and two accounts that
differ only by case both stay reachable (and are reported)."""

from __future__ import annotations

import subprocess
import uuid

from api.members import records, user_ids
from api.models.member import Member
from api.security.blind_index import blind_index
from tests.conftest import LOGIN, PASSWORD, error_code
from tests.helpers_serve import CONSENTRY


async def _legacy(rt, user_id: str) -> str:
    """A member as written before ids folded case: indexed under the id as typed."""
    view = await records.register(rt, user_id=user_id, email=f"{uuid.uuid4().hex[:12]}@example.org",
                                  full_name="Legacy Member", password=PASSWORD)
    await Member.filter(id=view.id).update(user_id_idx=blind_index(rt.keys, "user_id", user_id),
                                           user_id_folded=False)
    return view.id


async def _who(gql, user_id: str) -> str | None:
    body = await gql(LOGIN, {"u": user_id, "p": PASSWORD})
    return None if "errors" in body else body["data"]["login"]["member"]["id"]


async def test_legacy_ids_that_differ_by_case_stay_two_reachable_accounts(rt, gql, clock):
    upper = await _legacy(rt, "Carol")
    clock.advance(seconds=1)
    lower = await _legacy(rt, "carol")
    clock.advance(seconds=1)
    dave = await _legacy(rt, "Dave")
    assert await _who(gql, "Carol") == upper
    assert await _who(gql, "carol") == lower  # folded at this sign-in; Carol cannot be
    report = await user_ids.fold_legacy(rt)
    assert (report.folded, report.dormant, report.collisions) == (1, 0, [upper])
    assert await _who(gql, "Carol") == upper  # its exact spelling still reaches it
    assert await _who(gql, "CAROL") == lower
    assert await _who(gql, "DAVE") == dave
    again = await user_ids.fold_legacy(rt)
    assert (again.folded, again.collisions) == (0, [upper])


async def test_a_legacy_row_is_folded_at_its_next_sign_in(rt, gql):
    dave = await _legacy(rt, "Dave")
    assert error_code(await gql(LOGIN, {"u": "dave", "p": PASSWORD})) == "UNAUTHENTICATED"
    assert await _who(gql, "Dave") == dave
    row = await Member.get(id=dave)
    assert row.user_id_folded is True
    assert row.user_id_idx == blind_index(rt.keys, "user_id", "dave")
    assert await _who(gql, "dAVE") == dave


def test_consentry_migrate_folds_and_reports(tmp_path):
    env = {"CONSENTRY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([CONSENTRY, "migrate"], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "migrations applied" in out
    assert "user ids made case-insensitive: 0; dormant, done at their next sign-in: 0" in out
