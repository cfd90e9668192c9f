"""The served schema against the checked-in SDL and the public contract.

Three checks, so a clone of this repository alone still proves what it serves:

- ``schema/schema.graphql`` is the served SDL, checked in. Any change to the schema shows in a
  diff; when it drifts the test fails and says to run ``make schema``.
- v1 (``../shared/contract/schema.graphql``): no breaking change (graphql-core's own comparison)
  and every contract operation served. Runs wherever the contract folder sits beside the
  repository; skipped, with the reason, where it does not (a lone clone).
- v2 (``../shared/contract/v2.graphql``): the file is split into blocks at its
  ``# ---- <capability>`` lines (accounts, partner loop, article 5), each served once its
  capability lands. ``BUILT_V2_BLOCKS`` names the blocks built; each is checked like v1 (every
  type, field, argument and enum value present, no breaking change). A block not listed must
  still be missing something: when a capability is complete the test says to list it here, so
  the check cannot be forgotten. Add a block's name to ``BUILT_V2_BLOCKS`` in the commit that
  completes it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import (
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    find_breaking_changes,
    parse,
)
from graphql import build_schema as parse_sdl

from schema import build_schema

ROOT = Path(__file__).resolve().parents[1]
CHECKED_IN = ROOT / "schema" / "schema.graphql"
CONTRACT_DIR = ROOT.parent / "shared" / "contract"
V1 = CONTRACT_DIR / "schema.graphql"
V2 = CONTRACT_DIR / "v2.graphql"

# The v2 blocks whose capability is built, by the name on their ``# ----`` line in v2.graphql:
# "accounts", "partner loop", "article 5".
BUILT_V2_BLOCKS: tuple[str, ...] = ("accounts", "partner loop", "article 5")

BLOCK_LINE = re.compile(r"^# -{10,} (?P<name>.+?)\s*$", re.MULTILINE)


def _contract_path() -> Path:
    """The v1 contract, or a skip that says why (a clone without ../shared beside it)."""
    if not V1.exists():
        pytest.skip(f"contract folder {CONTRACT_DIR} not found beside the repository: "
                    "contract checks run only where ../shared/contract exists")
    return V1


def _served() -> GraphQLSchema:
    return parse_sdl(build_schema().as_str())


def _v2_blocks() -> dict[str, str]:
    if not V2.exists():
        pytest.skip(f"{V2} not found beside the repository: v2 block checks need ../shared/contract")
    text = V2.read_text()
    marks = list(BLOCK_LINE.finditer(text))
    return {m["name"]: text[m.end(): nxt.start() if nxt else len(text)]
            for m, nxt in zip(marks, [*marks[1:], None], strict=True)}


def _missing(block: str, served: GraphQLSchema) -> list[str]:
    """What the block defines or extends that the served schema lacks, as ``Type.member`` names."""
    missing: list[str] = []
    for node in parse(block).definitions:
        if not isinstance(node, TypeDefinitionNode | TypeExtensionNode):
            continue
        name = node.name.value
        have = served.get_type(name)
        if have is None:
            missing.append(name)
            continue
        wanted: list[str] = []
        owned: set[str] = set()
        if isinstance(node, ObjectTypeDefinitionNode | ObjectTypeExtensionNode
                      | InterfaceTypeDefinitionNode | InterfaceTypeExtensionNode):
            assert isinstance(have, GraphQLObjectType | GraphQLInterfaceType), name
            owned = set(have.fields)
            wanted = [f.name.value for f in node.fields or ()]
            for f in node.fields or ():
                if f.name.value in have.fields:
                    args = set(have.fields[f.name.value].args)
                    missing += [f"{name}.{f.name.value}({a.name.value})" for a in f.arguments or ()
                                if a.name.value not in args]
        elif isinstance(node, InputObjectTypeDefinitionNode | InputObjectTypeExtensionNode):
            assert isinstance(have, GraphQLInputObjectType), name
            owned, wanted = set(have.fields), [f.name.value for f in node.fields or ()]
        elif isinstance(node, EnumTypeDefinitionNode | EnumTypeExtensionNode):
            assert isinstance(have, GraphQLEnumType), name
            owned, wanted = set(have.values), [v.name.value for v in node.values or ()]
        missing += [f"{name}.{member}" for member in wanted if member not in owned]
    return missing


def test_checked_in_schema_is_the_served_schema() -> None:
    assert CHECKED_IN.exists(), "schema/schema.graphql is missing: run `make schema` and commit it"
    served = build_schema().as_str() + "\n"  # `consentry schema` prints it with a newline
    assert CHECKED_IN.read_text() == served, (
        "schema/schema.graphql differs from the served schema: run `make schema` and commit it")


def test_served_schema_has_no_breaking_change_against_the_contract() -> None:
    contract = parse_sdl(_contract_path().read_text())
    assert find_breaking_changes(contract, _served()) == []


def test_every_contract_operation_is_served() -> None:
    contract = parse_sdl(_contract_path().read_text())
    served = build_schema()._schema
    for root in ("Query", "Mutation"):
        wanted = set(contract.get_type(root).fields)  # type: ignore[union-attr]
        assert wanted <= set(served.get_type(root).fields)  # type: ignore[union-attr]


def test_v2_blocks_are_the_ones_named_here() -> None:
    """A renamed or new block in v2.graphql must be noticed, and each block parses on top of v1."""
    blocks = _v2_blocks()
    assert list(blocks) == ["accounts", "partner loop", "article 5"]
    assert set(BUILT_V2_BLOCKS) <= set(blocks)
    v1 = _contract_path().read_text()
    for name, body in blocks.items():  # the presence check sees a block served, and not served
        assert _missing(body, parse_sdl(v1 + "\n" + body)) == [], name
        assert _missing(body, parse_sdl(v1)), name


def test_built_v2_blocks_are_served_whole() -> None:
    blocks, served, v1 = _v2_blocks(), _served(), _contract_path().read_text()
    for block in BUILT_V2_BLOCKS:
        assert _missing(blocks[block], served) == [], f"v2 block {block!r} is listed as built"
        assert find_breaking_changes(parse_sdl(v1 + "\n" + blocks[block]), served) == [], block


def test_unlisted_v2_blocks_are_not_served_whole_yet() -> None:
    served = _served()
    for name, body in _v2_blocks().items():
        if name not in BUILT_V2_BLOCKS:
            assert _missing(body, served), (
                f"v2 block {name!r} is served whole: add it to BUILT_V2_BLOCKS in tests/test_contract.py")
