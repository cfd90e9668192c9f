"""A third-party adapter installed from examples/consentry-partner-example is discovered and
used with no change to Consentry: pip installs the package (a real build, into a temporary
target directory put on the path), then delivery and ``consentry jobs run`` use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.core.errors import BadInput
from api.models.enums import OutboxStatus
from api.models.partner import OutboxEvent
from api.service.composition import with_settings
from api.sharing.adapters import adapter_infos, check_config, refresh, validate_config
from api.sharing.queue import deliver_due
from tests.helpers_delivery import make_partner, queue

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "consentry-partner-example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(EXAMPLE)],
                   check=True, capture_output=True, timeout=300)
    assert (target / "consentry_partner_example-1.0.0.dist-info" / "entry_points.txt").exists()
    yield target
    sys.modules.pop("consentry_partner_example", None)


async def test_installed_example_adapter_is_discovered_and_delivers(rt, member, installed,
                                                                    monkeypatch, tmp_path) -> None:
    monkeypatch.syspath_prepend(str(installed))
    refresh(rt)
    info = adapter_infos(rt)["example-files"]
    assert info.distribution == "consentry-partner-example"
    assert Path(sys.modules[info.cls.__module__].__file__).is_relative_to(installed)
    assert info.cls.accepts == frozenset({"fullName", "address"})
    with pytest.raises(BadInput, match="absolute path"):
        validate_config(rt, "example-files", {"directory": "relative/dir"})
    prod = with_settings(rt, env="production", jsonl_root=str(tmp_path / "root"))
    with pytest.raises(BadInput, match="files root"):
        await check_config(prod, "example-files", {"directory": str(tmp_path / "elsewhere")})
    await check_config(prod, "example-files", {"directory": str(tmp_path / "root" / "example")})

    partner = await make_partner(rt, "Example Logistics", "example-files", {"directory": str(tmp_path)})
    event_id = await queue(rt, partner, member.id, {"fullName": "Alice Example",
                                                    "address": "1 Clinic Road, Leeds"})
    stats = await deliver_due(rt)
    assert stats["delivered"] == 1, (stats, (await OutboxEvent.get(id=event_id)).last_error)
    event = json.loads((tmp_path / f"{event_id}.json").read_text())
    assert event["partner"] == "Example Logistics" and event["type"] == "member.shared"
    assert set(event["member"]) == {"ref", "fullName", "address"}
    assert (await OutboxEvent.get(id=event_id)).status == OutboxStatus.DELIVERED


async def test_consentry_jobs_run_uses_the_installed_plugin(rt, member, installed, tmp_path) -> None:
    partner = await make_partner(rt, "Example Courier", "example-files", {"directory": str(tmp_path)})
    event_id = await queue(rt, partner, member.id, {"address": "1 Clinic Road, Leeds"})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(installed), str(ROOT)]),
               CONSENTRY_DATABASE_URL=rt.settings.main_url,
               CONSENTRY_VAULT_DATABASE_URL=rt.settings.vault_url,
               CONSENTRY_DATA_DIR=str(rt.settings.data_dir), CONSENTRY_NOW=rt.now().isoformat())
    done = subprocess.run(  # noqa: ASYNC221 - a blocking run is what an operator does
        [sys.executable, "-m", "api.service.cli", "jobs", "run", "--only", "deliver_outbox"], env=env,
        capture_output=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    # What the separate process reports (its own view of the outbox; see note below).
    report = json.loads(done.stdout.decode().strip().splitlines()[0])
    assert report["deliver_outbox"] == {"claimed": 1, "delivered": 1, "failed": 0, "dead": 0}
    member_sent = json.loads((tmp_path / f"{event_id}.json").read_text())["member"]
    assert set(member_sent) == {"ref", "address"} and member_sent["address"] == "1 Clinic Road, Leeds"
    # Not re-read through this process's long-lived SQLite connection: after an in-process
    # `PRAGMA wal_checkpoint(TRUNCATE)` (tests/test_encryption_at_rest.py, api/erasure.py) it
    # was seen to miss other processes' commits while a fresh connection saw them.
