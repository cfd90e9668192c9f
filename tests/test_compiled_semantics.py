"""A compiled plan completes values as graphql-core does, on a schema made for the corners.

The registered documents rarely meet a null in a non-null field, an error in a list item or a
permission that refuses one field among many; this schema does, on purpose. Each document is
run by its plan and by graphql-core (as ``schema/fastpath.py`` runs it) with the same context
and variables; data (with its key order) and located errors must be the same.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
import strawberry
from graphql import execute, parse
from strawberry.execution import optimized_is_awaitable
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.types import Info

from schema.compiled import compile_operation


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Allowed(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return bool(info.context["allow"])


class Refuses(BasePermission):
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        raise PermissionError(f"refused {info.field_name} with {sorted(kwargs)}")


@strawberry.input
class Filter:
    colors: list[Color] | None = None
    since: date | None = strawberry.UNSET


@strawberry.type
class Item:
    name: str
    color: Color
    at: datetime
    day: date | None
    count: int
    ratio: float
    flag: bool
    tags: list[str | None]
    labels: list[str]
    maybe: str | None
    must: str
    extra: JSON

    @strawberry.field
    async def broken(self) -> str | None:
        raise ValueError(f"{self.name} is broken")

    @strawberry.field
    async def required_broken(self) -> str:
        raise ValueError(f"{self.name} is broken for good")

    @strawberry.field(permission_classes=[Allowed])
    async def secret(self, info: Info, shout: bool = False) -> str:
        return f"{self.name}!" if shout else self.name

    @strawberry.field(permission_classes=[Refuses])
    async def never(self, reason: str = "none") -> str | None:
        return reason

    @strawberry.field
    async def children(self, first: int = 2) -> list[Item | None]:
        return [_item(f"{self.name}.{i}") if i != 1 else None for i in range(first)]


def _item(name: str, **changes: Any) -> Item:
    values: dict[str, Any] = {
        "name": name, "color": Color.BLUE if name.endswith("1") else Color.RED,
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "day": date(2026, 1, 2),
        "count": 7, "ratio": 0.5, "flag": True, "tags": ["a", None], "labels": ["x"],
        "maybe": None, "must": "yes", "extra": {"k": [1, "two", None]}}
    values.update(changes)
    return Item(**values)


@strawberry.type
class Query:
    @strawberry.field
    async def items(self, info: Info, filter: Filter | None = None) -> list[Item]:
        colors = filter.colors if filter and filter.colors else None
        found = [_item("i0"), _item("i1"), _item("i2", day=None)]
        return [i for i in found if colors is None or i.color in colors]

    @strawberry.field
    async def item(self, name: str) -> Item | None:
        return None if name == "none" else _item(name)

    @strawberry.field
    async def bad_must(self) -> Item | None:
        return _item("bad", must=None)

    @strawberry.field
    async def bad_labels(self) -> list[Item] | None:
        return [_item("ok"), _item("bad", labels=["x", None])]

    @strawberry.field
    async def gone(self) -> Item:
        return None  # type: ignore[return-value]  # a non-null root field that is null

    @strawberry.field
    def plain(self) -> str:
        return "sync"


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def rename(self, name: str, to: str) -> Item:
        return _item(to)

    @strawberry.mutation(permission_classes=[Allowed])
    async def guarded(self, name: str) -> Item | None:
        return _item(name)


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)
EXECUTE = {"is_awaitable": optimized_is_awaitable,
           **execution_context_class_kwargs(SCHEMA.execution_context_class)}

ITEM = ("name color at day count ratio flag tags labels maybe must extra broken secret "
        "never(reason: \"r\") children { name color must }")
DOCUMENTS = [
    ("query Q($f: Filter) { items(filter: $f) { " + ITEM + " } }",
     [None, {"f": None}, {"f": {"colors": ["BLUE"]}}, {"f": {"colors": ["GREEN"]}},
      {"f": {"colors": "BLUE", "since": "2026-01-01"}}, {"f": {"since": "yesterday"}}]),
    ("query Q($n: String!) { item(name: $n) { name first: color again: name must "
     "children(first: 3) { name } secret(shout: true) } }",
     [{"n": "one"}, {"n": "none"}, {}, {"n": 3}]),
    ("query { badMust { name must } other: item(name: \"x\") { name } }", [None]),
    ("query { badLabels { name labels } item(name: \"y\") { requiredBroken name } }", [None]),
    ("query { item(name: \"z\") { name } gone { name } }", [None]),
    ("mutation M($a: String!) { rename(name: $a, to: \"b\") { name color } "
     "guarded(name: $a) { name } again: rename(name: $a, to: \"c\") { name } }",
     [{"a": "x"}, {}]),
]


def _answer(result: Any) -> bytes:
    return orjson.dumps({"data": result.data,
                         "errors": [e.formatted for e in result.errors or []]})


@pytest.mark.parametrize(("text", "variable_sets"), DOCUMENTS)
@pytest.mark.parametrize("allow", [True, False])
async def test_a_plan_answers_as_graphql_core(text, variable_sets, allow):
    document = parse(text)
    plan = compile_operation(SCHEMA, document)
    for variables in variable_sets:
        context = {"allow": allow}
        planned = await plan.execute(context, variables)
        reference = execute(SCHEMA._schema, document, None, context, variables, **EXECUTE)
        reference = await reference if optimized_is_awaitable(reference) else reference
        assert _answer(planned) == _answer(reference), (text, variables)


async def test_the_corners_are_met():
    """The comparison above is only as good as what it exercises: these answers hold."""
    plan = compile_operation(SCHEMA, parse(DOCUMENTS[0][0]))
    refused = await plan.execute({"allow": False}, None)
    assert refused.data is None  # secret is non-null: its refusal nulls the item, the list, all
    # The non-null refusal is recorded last: it propagates up before it is collected, while
    # the other items' fields run on.
    assert [e.message for e in refused.errors or []] == [
        "i0 is broken", "refused never with ['reason']", "i1 is broken",
        "refused never with ['reason']", "i2 is broken", "refused never with ['reason']",
        "not for you"]
    assert (refused.errors or [])[-1].path == ["items", 0, "secret"]
    result = await plan.execute({"allow": True}, None)
    assert result.data is not None
    first = result.data["items"][0]
    assert list(first) == ["name", "color", "at", "day", "count", "ratio", "flag", "tags",
                           "labels", "maybe", "must", "extra", "broken", "secret", "never",
                           "children"]
    assert first["color"] == "RED" and first["at"] == "2026-01-02T03:04:05+00:00"
    assert first["day"] == "2026-01-02" and result.data["items"][2]["day"] is None
    assert first["tags"] == ["a", None] and first["extra"] == {"k": [1, "two", None]}
    assert first["children"] == [{"name": "i0.0", "color": "RED", "must": "yes"}, None]
    messages = [e.message for e in result.errors or []][:3]
    assert messages == ["i0 is broken", "refused never with ['reason']", "i1 is broken"]
    assert first["broken"] is None and first["never"] is None and first["secret"] == "i0"
    bad = await compile_operation(SCHEMA, parse(DOCUMENTS[3][0])).execute({"allow": True}, None)
    assert bad.data == {"badLabels": None, "item": None}
    assert [e.path for e in bad.errors or []] == [["badLabels", 1, "labels", 1],
                                                   ["item", "requiredBroken"]]
    gone = await compile_operation(SCHEMA, parse(DOCUMENTS[4][0])).execute({"allow": True},
                                                                           None)
    assert gone.data is None
    assert [e.message for e in gone.errors or []] == [
        "Cannot return null for non-nullable field Query.gone."]


def test_a_sync_resolver_is_not_planned():
    from schema.compiled import Unsupported

    with pytest.raises(Unsupported, match="Query.plain has a resolver that is not async"):
        compile_operation(SCHEMA, parse("{ plain }"))
