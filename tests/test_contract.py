"""The served schema must never break the public contract (graphql-core's own comparison)."""

from pathlib import Path

from graphql import build_schema as parse_sdl
from graphql import find_breaking_changes

from schema import build_schema

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract" / "schema.graphql"


def _contract_path() -> Path:
    for candidate in (CONTRACT, Path(__file__).resolve().parents[1].parent / "shared" /
                      "contract" / "schema.graphql"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("../shared/contract/schema.graphql not found beside the project")


def test_served_schema_has_no_breaking_change_against_the_contract() -> None:
    contract = parse_sdl(_contract_path().read_text())
    served = parse_sdl(build_schema().as_str())
    assert find_breaking_changes(contract, served) == []


def test_every_contract_operation_is_served() -> None:
    contract = parse_sdl(_contract_path().read_text())
    served = build_schema()._schema
    for root in ("Query", "Mutation"):
        wanted = set(contract.get_type(root).fields)  # type: ignore[union-attr]
        assert wanted <= set(served.get_type(root).fields)  # type: ignore[union-attr]
