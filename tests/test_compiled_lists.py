"""Lists of objects in a compiled plan: an item's Path is made only when something needs it
(schema/compiled.py, ``_List._complete_objects``), and the answers stay graphql-core's; a
resolver's info, which the plan lays out itself, is the one strawberry builds.

Each corner a lazily made path could get wrong: a null in a non-null leaf, an attribute that
raises, a null or failing item, an awaitable item, a resolver (whose info carries the item's
path) and a plain object field inside an item; nullable and non-null items alike.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

import orjson
import pytest
import strawberry
from graphql import execute, parse
from strawberry.execution import optimized_is_awaitable
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.types import Info

from schema.compiled import compile_operation

RESOLVED: list[str] = []  # each Row.where resolved, in order
INFOS: list[Any] = []  # and the resolve info it was given


@strawberry.enum
class Shade(enum.Enum):
    DARK = "dark"
    LIGHT = "light"


@strawberry.type
class Tag:
    label: str


@strawberry.type
class Row:
    name: str
    note: str | None
    shade: Shade
    tag: Tag

    @strawberry.field
    async def where(self, info: Info) -> str:
        where = ".".join(str(key) for key in info.path.as_list())
        RESOLVED.append(where)
        INFOS.append(info._raw_info)
        return where


class Faulty:
    """A row whose ``note`` (nullable) or ``name`` (non-null) cannot be read."""

    def __init__(self, fails: str) -> None:
        self.fails = fails
        self.shade = Shade.LIGHT
        self.tag = Tag(label="t")

    def _read(self, name: str, value: str | None) -> str | None:
        if name == self.fails:
            raise ValueError(f"{name} is unreadable")
        return value

    @property
    def name(self) -> str | None:
        return self._read("name", "ok")

    @property
    def note(self) -> str | None:
        return self._read("note", None)


def _row(name: str, **changes: Any) -> Row:
    values: dict[str, Any] = {"name": name, "note": None, "shade": Shade.DARK,
                              "tag": Tag(label=name)}
    values.update(changes)
    return Row(**values)


async def _later(row: Row) -> Row:
    return row


@strawberry.type
class Query:
    @strawberry.field
    async def rows(self) -> list[Row]:
        return [_row("a"), _row("b", note="n"), _row("c", shade=Shade.LIGHT)]

    @strawberry.field
    async def null_name(self) -> list[Row] | None:
        return [_row("a"), _row(None)]  # type: ignore[arg-type]  # a null in a non-null leaf

    @strawberry.field
    async def faulty(self) -> list[Row | None]:
        return [_row("a"), Faulty("note"), None, Faulty("name"), _row("e")]  # type: ignore[list-item]

    @strawberry.field
    async def null_item(self) -> list[Row] | None:
        return [_row("a"), None]  # type: ignore[list-item]  # a null non-null item

    @strawberry.field
    async def failing_item(self) -> list[Row | None]:
        return [ValueError("item failed"), _row("b")]  # type: ignore[list-item]

    @strawberry.field
    async def awaited(self) -> list[Row | None]:
        return [_later(_row("a")), _row("b"), _later(_row(None))]  # type: ignore[list-item]

    @strawberry.field
    async def bad_tag(self) -> list[Row | None]:
        return [_row("a"), _row("b", tag=Tag(label=None))]  # type: ignore[arg-type]


SCHEMA = strawberry.Schema(query=Query)
EXECUTE = {"is_awaitable": optimized_is_awaitable,
           **execution_context_class_kwargs(SCHEMA.execution_context_class)}
ROW = "name note shade tag { label } where"
DOCUMENTS = [f"{{ {field} {{ {ROW} }} }}" for field in (
    "rows", "nullName", "faulty", "nullItem", "failingItem", "awaited", "badTag")]


async def _both(text: str) -> tuple[Any, Any]:
    document = parse(text)
    planned = await compile_operation(SCHEMA, document).execute({}, None)
    reference = execute(SCHEMA._schema, document, None, {}, None, **EXECUTE)
    reference = await reference if optimized_is_awaitable(reference) else reference
    return planned, reference


def _answer(result: Any) -> bytes:
    return orjson.dumps({"data": result.data,
                         "errors": [e.formatted for e in result.errors or []]})


@pytest.mark.parametrize("text", DOCUMENTS)
async def test_a_list_of_objects_answers_as_graphql_core(text):
    planned, reference = await _both(text)
    assert _answer(planned) == _answer(reference), text


async def test_the_item_paths_are_the_items():
    """What the comparison exercises, with the paths a lazily made item path must give."""
    rows, _ = await _both(DOCUMENTS[0])
    assert rows.errors is None
    assert rows.data == {"rows": [
        {"name": "a", "note": None, "shade": "DARK", "tag": {"label": "a"}, "where": "rows.0.where"},
        {"name": "b", "note": "n", "shade": "DARK", "tag": {"label": "b"}, "where": "rows.1.where"},
        {"name": "c", "note": None, "shade": "LIGHT", "tag": {"label": "c"},
         "where": "rows.2.where"}]}
    null_name, _ = await _both(DOCUMENTS[1])
    assert null_name.data == {"nullName": None}
    assert [(e.message, e.path) for e in null_name.errors or []] == [
        ("Cannot return null for non-nullable field Row.name.", ["nullName", 1, "name"])]
    faulty, _ = await _both(DOCUMENTS[2])
    assert faulty.data is not None
    assert [row and row["name"] for row in faulty.data["faulty"]] == ["a", "ok", None, None, "e"]
    assert faulty.data["faulty"][1]["where"] == "faulty.1.where"
    assert [(e.message, e.path) for e in faulty.errors or []] == [
        ("note is unreadable", ["faulty", 1, "note"]),
        ("name is unreadable", ["faulty", 3, "name"])]
    null_item, _ = await _both(DOCUMENTS[3])
    assert [e.path for e in null_item.errors or []] == [["nullItem", 1]]
    failing, _ = await _both(DOCUMENTS[4])
    assert [(e.message, e.path) for e in failing.errors or []] == [
        ("item failed", ["failingItem", 0])]
    awaited, _ = await _both(DOCUMENTS[5])
    assert awaited.data is not None
    assert [row and row["where"] for row in awaited.data["awaited"]] == [
        "awaited.0.where", "awaited.1.where", None]
    assert [e.path for e in awaited.errors or []] == [["awaited", 2, "name"]]
    bad_tag, _ = await _both(DOCUMENTS[6])
    assert bad_tag.data is not None and bad_tag.data["badTag"][1] is None
    assert [e.path for e in bad_tag.errors or []] == [["badTag", 1, "tag", "label"]]


async def test_a_nulled_list_still_runs_its_pending_items():
    """As graphql-core: item 1's null name nulls the list, item 0's resolver (already
    pending) still runs, in the background."""
    RESOLVED.clear()
    planned = await compile_operation(SCHEMA, parse(DOCUMENTS[1])).execute({}, None)
    assert planned.data == {"nullName": None}
    for _ in range(3):
        await asyncio.sleep(0)
    assert RESOLVED == ["nullName.0.where"]


async def test_a_resolver_gets_the_info_strawberry_builds():
    """The plan makes the resolve info tuple itself (``_info_layout``): the same type and the
    same values, field by field, as strawberry's ``build_resolve_info`` under graphql-core;
    only graphql-core's async helpers are its own object."""
    document = parse("query Q($s: String) { rows { name where } }")
    context = {"who": "me"}
    INFOS.clear()
    await compile_operation(SCHEMA, document).execute(context, {"s": "x"})
    planned = list(INFOS)
    INFOS.clear()
    reference = execute(SCHEMA._schema, document, None, context, {"s": "x"}, **EXECUTE)
    await reference if optimized_is_awaitable(reference) else None
    assert len(planned) == len(INFOS) == 3
    for mine, theirs in zip(planned, INFOS, strict=True):
        assert type(mine) is type(theirs)
        assert mine._replace(async_helpers=None) == theirs._replace(async_helpers=None)
        assert mine.context is context and mine.field_name == "where"
        assert mine.variable_values == {"s": "x"}
    assert [info.path.as_list() for info in planned] == [["rows", i, "where"] for i in range(3)]


def test_an_unknown_info_layout_is_built_by_strawberry_per_field():
    """``_info_layout`` accepts only strawberry's layout; any other and the plan calls the
    schema's ``build_resolve_info`` for each resolver."""
    from schema.compiled import _info_layout

    query = SCHEMA._schema.query_type
    node = parse("{ rows { name } }").definitions[0].selection_set.selections[0]
    build = SCHEMA.execution_context_class.build_resolve_info
    assert _info_layout(build, query.fields["rows"], [node], query) is not None

    def swapped(run: Any, field_def: Any, nodes: Any, parent: Any, path: Any) -> Any:
        info = build(run, field_def, nodes, parent, path)
        return info._replace(root_value=info.operation, operation=info.root_value)

    assert _info_layout(swapped, query.fields["rows"], [node], query) is None
