"""The audit chain under concurrent appends, and anchors that catch a truncated tail."""

import asyncio

from tortoise.transactions import in_transaction

from api.platform import audit
from api.platform.audit import verify_chain
from tests.conftest import PASSWORD
from tests.helpers_consent import cli_store, raw_sql, run_cli


async def test_concurrent_multi_entry_transactions_keep_one_chain(rt):
    async def writer(n: int) -> None:
        async with in_transaction("default") as conn:
            for step in range(3):
                await audit.record(rt, f"test:{n}", "test.step", str(step), using=conn)

    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(8))), timeout=30)
    checked, broken = await verify_chain()
    assert (checked, broken) == (24, None)


async def test_an_anchor_catches_entries_cut_from_the_end(rt, tmp_path):
    """End to end: verify prints an anchor; after the tail is deleted the chain alone still
    verifies, but verify with the anchor fails."""
    store = cli_store(rt, tmp_path)
    assert (await run_cli(store, "migrate"))[0] == 0
    for user in ("ops-one", "ops-two", "ops-three"):
        code, _, err = await run_cli(store, "admin", "create", "--user-id", user, "--email",
                                     f"{user}@clinic.example", stdin=PASSWORD + "\n")
        assert code == 0, err
    code, out, _ = await run_cli(store, "audit", "verify")
    anchor = out.split("anchor: ", 1)[1].split()[0]
    assert code == 0 and anchor.startswith("3:")
    await raw_sql(store, "DELETE FROM audit_entries WHERE seq = $1", 3)
    assert (await run_cli(store, "audit", "verify"))[0] == 0
    code, _, err = await run_cli(store, "audit", "verify", "--anchor", anchor)
    assert code == 1 and "anchor" in err
