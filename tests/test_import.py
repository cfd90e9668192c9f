"""``consentry import members``: the real command on the test store (SQLite, or PostgreSQL with
CONSENTRY_TEST_DATABASE_URL), then the store read back.

All or nothing (one bad row and nothing is written, exit 2), resumable after a hard crash
(the documented test hook CONSENTRY_IMPORT_CRASH_AFTER_BATCHES), idempotent on a rerun, and
imported consents carry receipts that verify with the JWKS and say they were imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import jwt
import pytest

from api.consent.consents import current
from api.core.errors import Unauthenticated
from api.members import auth, records
from api.models.audit import AuditEntry
from api.models.consent import ConsentEvent, PolicyVersion
from api.models.member import Member, MemberKey
from api.models.onboarding import ImportedMember, MemberImport
from api.models.partner import Purchase
from api.platform.audit import verify_chain
from api.security.blind_index import blind_index
from api.sharing import purchases
from tests.conftest import PASSWORD

CONSENTRY = str(Path(sys.executable).with_name("consentry"))

CSV = (
    "userId,email,fullName,dateOfBirth,phone,address,purchases,consents\n"
    'ann01,ann@example.org,Ann Example,1980-02-29,+44 20 7946 0000,"1 High St, Town",'
    '"[{""amount"":""12.50"",""currency"":""EUR"",""reference"":""INV-1"",'
    '""at"":""2023-05-01T10:00:00Z""}]",'
    '"[{""purpose"":""marketing"",""at"":""2021-03-04T10:00:00Z"",""policyVersion"":""1.0"",'
    '""source"":""web-form""}]"\n'
    "bob02,bob@example.org,Bob Example,,,,,\n"
)

JSONL = (
    '{"userId": "cat03", "email": "cat@example.org", "fullName": "Cat Example", '
    '"consents": [{"purpose": "research", "at": "2022-01-01T00:00:00+01:00", '
    '"policyVersion": "1.0", "source": "paper"}]}\n'
    '{"userId": "dan04", "email": "dan@example.org", "fullName": "Dan Example", '
    '"phone": "+1 555 0100", "purchases": [{"amount": "3", "currency": "usd", '
    '"reference": "R-9", "at": "2025-12-31T23:00:00Z"}]}\n'
)


def _env(rt) -> dict[str, str]:
    s = rt.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(CONSENTRY_DATA_DIR=str(s.data_dir), CONSENTRY_DATABASE_URL=s.main_url,
               CONSENTRY_VAULT_DATABASE_URL=s.vault_url, CONSENTRY_NOW=rt.now().isoformat())
    return env


def _import(rt, path: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run([CONSENTRY, "import", "members", str(path), *args],
                          env={**_env(rt), **extra_env}, capture_output=True, text=True,
                          timeout=300)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def _rejected(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("line ")]


async def _counts() -> dict[str, int]:
    return {"members": await Member.all().count(), "keys": await MemberKey.all().count(),
            "consents": await ConsentEvent.all().count(),
            "purchases": await Purchase.all().count(),
            "imported": await ImportedMember.all().count(),
            "imports": await MemberImport.all().count(),
            "audit": await AuditEntry.all().count()}


async def _member(rt, user_id: str) -> records.MemberView:
    row = await Member.get(user_id_idx=blind_index(rt.keys, "user_id", user_id))
    return await records.get_view(rt, str(row.id))


async def test_csv_file_imports_profiles_purchases_and_consents(rt, tmp_path):
    done = _import(rt, _write(tmp_path, "members.csv", CSV))
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("import of members.csv: 2 imported, 0 already members (skipped), "
                              "1 consents, 1 purchases in ")
    ann = await _member(rt, "ann01")
    assert (ann.email, ann.full_name, ann.date_of_birth, ann.phone, ann.address) == (
        "ann@example.org", "Ann Example", date(1980, 2, 29), "+44 20 7946 0000", "1 High St, Town")
    assert ann.has_purchase is True
    bob = await _member(rt, "bob02")
    assert (bob.email, bob.full_name, bob.date_of_birth, bob.phone, bob.address,
            bob.has_purchase) == ("bob@example.org", "Bob Example", None, None, None, False)
    bought = await purchases.for_member(rt, ann.id)
    assert [(p.amount, p.currency, p.reference, p.at) for p in bought] == [
        ("12.50", "EUR", "INV-1", datetime(2023, 5, 1, 10, tzinfo=UTC))]
    consents = await current(ann.id)
    assert [(c.purpose, c.state, c.policy_version, c.at) for c in consents] == [
        ("marketing", "GIVEN", "1.0", datetime(2021, 3, 4, 10, tzinfo=UTC))]
    assert await current(bob.id) == []
    # No password: flagged for the reset flow, and no password signs in.
    flagged = await ImportedMember.all().order_by("member_id")
    assert sorted(str(f.member_id) for f in flagged) == sorted([ann.id, bob.id])
    assert all(f.password_set_at is None for f in flagged)
    for attempt in (PASSWORD, "", "consentry-timing-equaliser"):
        with pytest.raises(Unauthenticated):
            await auth.login(rt, "ann01", attempt)
    # One audit entry for the batch, saying it was an import, naming members by id only.
    entries = await AuditEntry.filter(action="member.import")
    assert len(entries) == 1
    assert entries[0].detail["imported"] is True
    assert sorted(entries[0].detail["members"]) == sorted([ann.id, bob.id])
    assert "ann@example.org" not in json.dumps(entries[0].detail)
    assert (await verify_chain())[1] is None


async def test_jsonl_file_imports(rt, tmp_path):
    done = _import(rt, _write(tmp_path, "members.jsonl", JSONL))
    assert done.returncode == 0, done.stderr
    assert "2 imported, 0 already members (skipped), 1 consents, 1 purchases" in done.stdout
    cat = await _member(rt, "cat03")
    consents = await current(cat.id)
    assert [(c.purpose, c.at) for c in consents] == [
        ("research", datetime(2021, 12, 31, 23, tzinfo=UTC))]
    dan = await _member(rt, "dan04")
    assert dan.phone == "+1 555 0100"
    bought = await purchases.for_member(rt, dan.id)
    assert [(p.amount, p.currency, p.reference) for p in bought] == [("3", "USD", "R-9")]


async def test_the_format_can_be_given_when_the_extension_does_not_say(rt, tmp_path):
    path = _write(tmp_path, "export.txt", JSONL)
    unknown = _import(rt, path)
    assert unknown.returncode == 2
    assert "cannot tell the format of export.txt" in unknown.stderr
    done = _import(rt, path, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert await Member.all().count() == 2


def _jsonl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _row(user_id: str, **extra) -> dict:
    return {"userId": user_id, "email": f"{user_id}@example.org", "fullName": "Some Body",
            **extra}


def _consent(**changes) -> list[dict]:
    return [{"purpose": "marketing", "at": "2021-03-04T10:00:00Z", "policyVersion": "1.0",
             "source": "web-form", **changes}]


async def test_invalid_rows_are_reported_with_line_numbers_and_nothing_is_written(rt, tmp_path):
    text = _jsonl(
        _row("good1"),
        {**_row("bademail"), "email": "not-an-address"},
        _row("good1"),
        _row("baddate", dateOfBirth="1980-02-30"),
        _row("purpose", consents=_consent(purpose="telepathy")),
        _row("future", consents=_consent(at="2026-01-01T00:00:01Z")),
        _row("version", consents=_consent(policyVersion="0.9")),
        _row("good2"),
    )
    before = await _counts()
    done = _import(rt, _write(tmp_path, "bad.jsonl", text))
    assert done.returncode == 2
    assert _rejected(done.stderr) == [
        "line 2: email: email is not a valid address",
        "line 3: userId: the same userId is on line 1",
        "line 4: dateOfBirth: dateOfBirth must be a date such as 1980-02-29",
        "line 5: consents[0].purpose: unknown purpose; see the purposes query for the list",
        "line 6: consents[0].at: is in the future",
        "line 7: consents[0].policyVersion: unknown policy version",
    ]
    assert done.stdout.strip() == ("import of bad.jsonl: rejected, 6 row(s) with problems; "
                                   "nothing was imported")
    assert "not-an-address" not in done.stderr + done.stdout
    after = await _counts()
    assert after["members"] == after["imports"] == after["consents"] == 0
    assert after["audit"] == before["audit"]


async def test_a_csv_row_with_the_wrong_shape_is_reported_by_line(rt, tmp_path):
    text = ("userId,email,fullName,consents\n"
            "eve05,eve@example.org,Eve Example,\n"
            "fay06,fay@example.org\n"
            'gus07,gus@example.org,Gus Example,"[{""purpose"":""membership"",'
            '""at"":""2021-03-04T10:00:00Z"",""policyVersion"":""1.0"",""source"":""x""}]"\n')
    done = _import(rt, _write(tmp_path, "shape.csv", text))
    assert done.returncode == 2
    assert _rejected(done.stderr) == [
        "line 3: the row has 2 cells, the header has 4",
        "line 4: consents[0].purpose: purpose membership rests on CONTRACT, not consent",
    ]
    assert await Member.all().count() == 0


async def test_an_email_another_member_already_uses_is_rejected(rt, tmp_path):
    await records.register(rt, user_id="someone", email="bob@example.org", full_name="Other",
                           password=PASSWORD)
    done = _import(rt, _write(tmp_path, "members.csv", CSV))
    assert done.returncode == 2
    assert _rejected(done.stderr) == ["line 3: email: another member already uses this email"]
    assert await Member.all().count() == 1


@pytest.mark.parametrize("name,text,line", [
    ("cut.csv", CSV + "eve05,eve@example.org,Eve Exa", 4),
    ("cut.jsonl", JSONL + '{"userId": "eve05", "email": "eve@example.org", "fullName": "E', 3),
])
async def test_a_half_written_file_is_rejected_whole(rt, tmp_path, name, text, line):
    done = _import(rt, _write(tmp_path, name, text))
    assert done.returncode == 2
    assert _rejected(done.stderr) == [
        f"line {line}: the file does not end with a line break: its last line looks cut off "
        "(a half-written file)"]
    assert await Member.all().count() == 0
    assert await MemberImport.all().count() == 0


def _many(n: int) -> str:
    return _jsonl(*(_row(f"user{i:03d}", consents=_consent(),
                         purchases=[{"amount": "1.00", "currency": "EUR", "reference": f"o{i}",
                                     "at": "2024-01-01T00:00:00Z"}]) for i in range(n)))


async def test_a_crash_mid_import_resumes_and_every_member_is_there_once(rt, tmp_path):
    path = _write(tmp_path, "big.jsonl", _many(10))
    crashed = _import(rt, path, "--batch-size", "3", CONSENTRY_IMPORT_CRASH_AFTER_BATCHES="2")
    assert crashed.returncode == 75, crashed.stderr
    assert await Member.all().count() == 6
    checkpoint = await MemberImport.get()
    assert (checkpoint.batches_done, checkpoint.imported, checkpoint.finished_at) == (2, 6, None)
    rerun = _import(rt, path, "--batch-size", "3")
    assert rerun.returncode == 0, rerun.stderr
    assert ("4 imported, 0 already members (skipped), 4 consents, 4 purchases, resumed after "
            "batch 2 in ") in rerun.stdout
    counts = await _counts()
    assert (counts["members"], counts["keys"], counts["consents"], counts["purchases"],
            counts["imported"]) == (10, 10, 10, 10, 10)
    names = sorted([(await _member(rt, f"user{i:03d}")).user_id for i in range(10)])
    assert names == [f"user{i:03d}" for i in range(10)]
    assert await AuditEntry.filter(action="member.import").count() == 4
    checkpoint = await MemberImport.get()
    assert (checkpoint.batches_done, checkpoint.imported) == (4, 10)
    assert checkpoint.finished_at is not None
    assert (await verify_chain())[1] is None


async def test_a_rerun_changes_nothing_and_overlapping_members_are_skipped(rt, tmp_path):
    path = _write(tmp_path, "members.csv", CSV)
    assert _import(rt, path).returncode == 0
    before = await _counts()
    again = _import(rt, path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == ("import of members.csv: already done "
                                                     "(2 members); nothing to do")
    assert await _counts() == before
    # Another file naming the same members (and one new): they are skipped, not errors.
    overlap = _write(tmp_path, "more.csv", CSV + "eve05,eve@example.org,Eve Example,,,,,\n")
    more = _import(rt, overlap)
    assert more.returncode == 0, more.stderr
    assert "1 imported, 2 already members (skipped), 0 consents, 0 purchases" in more.stdout
    assert await Member.all().count() == 3
    assert await ConsentEvent.all().count() == 1


async def test_an_imported_consent_receipt_verifies_with_the_jwks_and_says_imported(
        rt, client, tmp_path):
    await PolicyVersion.create(version="2.0", text="v2", announced_at=datetime(2022, 1, 1,
                                                                                 tzinfo=UTC),
                               effective_at=datetime(2022, 3, 1, tzinfo=UTC))
    text = _jsonl(_row("hal08", consents=_consent(purpose="health_data", policyVersion="2.0",
                                                  at="2023-06-01T08:30:00+02:00",
                                                  source="paper-form")))
    done = _import(rt, _write(tmp_path, "one.jsonl", text))
    assert done.returncode == 0, done.stderr
    row = await ConsentEvent.get()
    jwks = (await client.get("/.well-known/jwks.json")).json()
    claims = jwt.decode(row.receipt, jwt.PyJWK(jwks["keys"][0]), algorithms=["EdDSA"])
    assert claims["source"] == "import"
    assert claims["consentTimestamp"] == "2023-06-01T06:30:00+00:00"
    assert claims["iat"] == 1767225600  # 2026-01-01T00:00:00Z, the import (the test clock)
    assert claims["collectionMethod"] == "paper-form"
    assert (claims["purpose"], claims["policyVersion"], claims["state"]) == (
        "health_data", "2.0", "GIVEN")
    assert row.at == datetime(2023, 6, 1, 6, 30, tzinfo=UTC)


async def test_a_consent_older_than_its_policy_version_is_rejected(rt, tmp_path):
    await PolicyVersion.create(version="2.0", text="v2", announced_at=datetime(2022, 1, 1,
                                                                                 tzinfo=UTC),
                               effective_at=datetime(2022, 3, 1, tzinfo=UTC))
    text = _jsonl(_row("ivy09", consents=_consent(policyVersion="2.0")))
    done = _import(rt, _write(tmp_path, "old.jsonl", text))
    assert done.returncode == 2
    assert _rejected(done.stderr) == [
        "line 1: consents[0].policyVersion: that policy version was not yet in effect at this "
        "time"]



def _import_on_a_terminal(rt, path: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run the import with stderr on a pseudo-terminal; return it and what stderr drew."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([CONSENTRY, "import", "members", str(path), *args], env=_env(rt),
                              stdout=subprocess.PIPE, stderr=follower, text=True, timeout=300)
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    return proc, drawn.decode()


async def test_the_progress_bar_is_drawn_only_on_a_terminal(rt, tmp_path):
    piped = _import(rt, _write(tmp_path, "piped.jsonl", _many(2)), "--batch-size", "1")
    assert piped.returncode == 0, piped.stderr
    assert "members (" not in piped.stderr
    two_more = _jsonl(_row("tty01"), _row("tty02"))
    proc, drawn = _import_on_a_terminal(rt, _write(tmp_path, "tty.jsonl", two_more),
                                        "--batch-size", "1")
    assert proc.returncode == 0
    assert "] 1/2 members (50%)" in drawn
    assert "[" + "#" * 30 + "] 2/2 members (100%)" in drawn
    assert proc.stdout.startswith("import of tty.jsonl: 2 imported")


async def test_odd_values_are_rejected_by_line_not_crashed_on(rt, tmp_path):
    text = "".join(line + "\n" for line in (
        json.dumps({**_row("num01"), "userId": 123}),
        "[" * 100_000,
        json.dumps(_row("amt02", purchases=[{"amount": 12.5, "currency": "EUR",
                                             "reference": "r", "at": "2024-01-01T00:00:00Z"}])),
        json.dumps(_row("naive03", consents=_consent(at="2021-03-04"))),
        json.dumps({**_row("nul04"), "fullName": "A\u0000B"}),
        json.dumps("just a string"),
        json.dumps(_row("list05", consents={"purpose": "marketing"})),
    ))
    done = _import(rt, _write(tmp_path, "odd.jsonl", text))
    assert done.returncode == 2, done.stderr
    assert _rejected(done.stderr) == [
        "line 1: userId: userId must be text",
        "line 2: the line is not valid JSON",
        "line 3: purchases[0].amount: amount must be a decimal number such as 12.50",
        "line 4: consents[0].at: needs an explicit UTC offset (Z or +01:00)",
        "line 5: fullName: fullName contains control characters",
        "line 6: the line is not a JSON object",
        "line 7: consents: must be a list of objects",
    ]
    assert "Traceback" not in done.stderr
    assert await Member.all().count() == 0


async def test_destroying_an_imported_member_leaves_no_import_row(rt, tmp_path):
    from api.rights import erasure

    assert _import(rt, _write(tmp_path, "members.jsonl", JSONL)).returncode == 0
    cat = await _member(rt, "cat03")
    await erasure.destroy(rt, cat.id, actor="test")
    assert await ImportedMember.filter(member_id=cat.id).count() == 0
    assert await ImportedMember.all().count() == 1  # dan04's row stays
