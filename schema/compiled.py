"""Compiled plans: a trusted document executed without graphql-core's per-field machinery.

A registered document (``schema/trusted/``) is parsed and validated once at start-up; the fast
path (``schema/fastpath.py``) then compiles it, once, with :func:`compile_operation` into a
tree of planned fields. Per request a plan does what graphql-core and strawberry would do
for that document, and nothing else: it coerces the variables and arguments with
graphql-core's own functions, builds the resolve info strawberry's ``build_resolve_info``
builds (the same tuple, its layout checked against that function when compiling), runs
strawberry's own ``PermissionExtension`` and calls the same resolver functions (so the same
domain services); it completes values as graphql-core does (nulls, non-null propagation,
lists, leaf coercion with each type's own ``coerce_output_value``), and locates and collects
errors as graphql-core does, so the error mapping after it (``schema.errors.classify``) is
the same. What it drops is the bookkeeping around that: field collection, resolve infos for
plain attributes, ``Path`` objects nobody reads (a leaf's; a list item's unless an error, a
resolver or a nested object needs it), a coroutine per resolver field (each stores its own
value), strawberry's per-call argument plumbing (a resolver without arguments, parent
parameter or permission is called directly).

What compiles (anything else raises :class:`Unsupported` and the document keeps running on
the fast path, correct and only slower):

- one query or mutation, without directives, fragments or ``__typename``; each response key
  once per selection set (aliases are fine);
- object types without ``is_type_of`` (no interfaces or unions), lists, non-null, and any
  scalar or enum (each serialized by its own type; plain strings and enum members take a
  shortcut that gives the same value);
- fields strawberry resolves as plain attributes (no resolver, no extension, the default
  ``getattr``), and fields with an ``async`` resolver whose only field extension is
  strawberry's ``PermissionExtension`` (or none), with no exception handler in the schema.

So a permission that the plan could not apply the way strawberry does (another extension, a
sync resolver behind a permission) is never skipped: its document is not compiled.
``tests/test_compiled.py`` runs every registered document both ways and compares the answers.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Iterator, Sequence
from datetime import date, datetime
from operator import methodcaller
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    get_argument_values,
    located_error,
)
from graphql.execution.executor import CollectedErrors, Executor, collect_iterator_awaitables
from graphql.execution.values import VariableValues, get_variable_values
from graphql.pyutils import Path, Undefined, gather_with_cancel, is_iterable
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import PermissionExtension
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

__all__ = ["Plan", "Unsupported", "compile_operation"]

_is_awaitable = optimized_is_awaitable
_complete_leaf = Executor.complete_leaf_value  # graphql-core's own (a static method)
_BACKGROUND: set[asyncio.Future[Any]] = set()
_new_tuple = tuple.__new__


class Unsupported(Exception):
    """The document uses something the compiler does not plan; it runs on the fast path."""


def _settle_in_background(awaitables: Sequence[Awaitable[Any]]) -> None:
    """As graphql-core: awaitables left behind by a bubbling error still run to the end."""
    future = asyncio.gather(*awaitables, return_exceptions=True)
    _BACKGROUND.add(future)
    future.add_done_callback(_BACKGROUND.discard)


def _track(values: Sequence[Any]) -> None:
    awaitables = [value for value in values if _is_awaitable(value)]
    if awaitables:
        _settle_in_background(awaitables)


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    return gather_with_cancel(*values)


_HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=_track)


class _Run:
    """One request's execution state. The first ten attributes are the ones strawberry's
    ``build_resolve_info`` reads from an executor: the plan builds resolve infos with it, or
    as it does (see :func:`_info_layout`)."""

    __slots__ = ("schema", "fragment_definitions", "root_value", "operation", "variable_values",
                 "context_value", "is_awaitable", "abort_signal", "async_helpers",
                 "operation_extensions", "collected", "info_tail")

    def __init__(self, plan: Plan, context: Any, variable_values: VariableValues) -> None:
        self.schema = plan.core
        self.fragment_definitions: dict[str, Any] = {}
        self.root_value = None
        self.operation = plan.operation
        self.variable_values = variable_values
        self.context_value = context
        self.is_awaitable = _is_awaitable
        self.abort_signal = None
        self.async_helpers = _HELPERS
        self.operation_extensions = None
        self.collected: CollectedErrors | None = None  # made with the first error
        self.info_tail: tuple[Any, ...] | None = None  # made with the first resolve info

    def add_error(self, error: GraphQLError, path: Path | None) -> None:
        collected = self.collected
        if collected is None:
            collected = self.collected = CollectedErrors()
        collected.add(error, path)

    def errors(self) -> list[GraphQLError] | None:
        return (self.collected.errors or None) if self.collected is not None else None


# The run's part of a resolve info, in strawberry's order (the variables as their coerced dict).
_RUN_PART = ("schema", "fragment_definitions", "root_value", "operation", "variable_values",
             "context_value", "is_awaitable", "abort_signal", "async_helpers",
             "operation_extensions")


def _run_part(run: _Run) -> tuple[Any, ...]:
    return (run.schema, run.fragment_definitions, run.root_value, run.operation,
            run.variable_values.coerced, run.context_value, run.is_awaitable, run.abort_signal,
            run.async_helpers, run.operation_extensions)


def _info_layout(build_info: Callable[..., Any], field_def: Any, nodes: list[FieldNode],
                 parent: GraphQLObjectType) -> type | None:
    """The tuple type of strawberry's resolve info when ``build_info`` lays one out as the
    field's name, nodes, return type, parent type and path, then :data:`_RUN_PART`: the plan
    then makes the same tuple itself, the run's part once per request instead of once per
    resolver. Checked on a probe run whose every attribute is a distinct marker; anything else
    (a custom execution context, another strawberry) and the plan calls ``build_info``."""
    probe = _Run.__new__(_Run)
    for name in _RUN_PART:
        setattr(probe, name, object())
    probe.variable_values = VariableValues({}, {})
    path = Path(None, "probe", None)
    try:
        info = build_info(probe, field_def, nodes, parent, path)
    except Exception:  # noqa: BLE001 - a layout the plan does not know: use build_info
        return None
    expected = (nodes[0].name.value, nodes, field_def.type, parent, path, *_run_part(probe))
    if (not isinstance(info, tuple) or len(info) != len(expected)
            or any(got is not want for got, want in zip(info, expected, strict=True))):
        return None
    return type(info)


# -- completion: graphql-core's complete_value, planned per return type ----------------------
class _Completer:
    leaf = False

    def complete(self, run: _Run, f: _Field, path: Path | None, value: Any) -> Any:
        raise NotImplementedError


def _shortcuts(type_: GraphQLScalarType | GraphQLEnumType) -> dict[type, Any]:
    """Python type -> what the leaf type's own ``coerce_output_value`` gives for a value of
    exactly that type: ``None`` for the value itself, else a function (whose ``None`` means
    "no shortcut, coerce as usual"). Only cases that cannot fail or return null are listed."""
    if type_ is GraphQLString or type_ is GraphQLID:
        return {str: None}  # serialize_string / serialize_id return a str as it is
    if type_ is GraphQLBoolean:
        return {bool: None}
    coerce = type_.coerce_output_value
    if isinstance(coerce, methodcaller) and coerce.__reduce__() == (methodcaller,
                                                                    ("isoformat",)):
        return {date: coerce, datetime: coerce}  # strawberry's Date, DateTime: a str
    wrapped = getattr(type_, "wrapped_cls", None)
    if isinstance(type_, GraphQLEnumType) and isinstance(wrapped, type):
        # strawberry's enum type looks a member's name up by value, per value: ask it once
        names: dict[Any, str] = {}
        members: Any = wrapped  # an Enum class
        for member in members:
            try:
                name = coerce(member)
            except (GraphQLError, ValueError, TypeError):
                continue
            if type(name) is str:
                names[member] = name
        return {wrapped: names.get}
    return {}


_NO_SHORTCUT = object()


class _Leaf(_Completer):
    leaf = True

    def __init__(self, type_: GraphQLScalarType | GraphQLEnumType) -> None:
        self.type = type_
        self.shortcuts = _shortcuts(type_)

    def complete(self, run: _Run, f: _Field, path: Path | None, value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise value
        convert = self.shortcuts.get(type(value), _NO_SHORTCUT)
        if convert is None:
            return value
        if convert is not _NO_SHORTCUT:
            converted = convert(value)
            if converted is not None:
                return converted
        return _complete_leaf(self.type, value)


class _NonNull(_Completer):
    def __init__(self, inner: _Completer, f: _Field) -> None:
        self.inner = inner
        self.leaf = inner.leaf
        self.message = (f"Cannot return null for non-nullable field {f.parent.name}."
                        f"{f.name}.")

    def complete(self, run: _Run, f: _Field, path: Path | None, value: Any) -> Any:
        if isinstance(value, Exception):
            raise value
        completed = self.inner.complete(run, f, path, value)
        if completed is None:
            raise TypeError(self.message)
        return completed


class _Object(_Completer):
    def __init__(self, fields: list[_Field]) -> None:
        self.steps = _steps(fields)

    def complete(self, run: _Run, f: _Field, path: Path | None, value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise value
        return _execute_fields(run, self.steps, value, path)


def _item_path(path: Path | None, index: int | None) -> Path | None:
    """The path of item ``index`` of the list at ``path`` (``path`` itself without one)."""
    return path if index is None else Path(path, index, None)


class _List(_Completer):
    def __init__(self, item: _Completer, item_type: Any, f: _Field) -> None:
        self.item = item
        self.item_type = item_type
        self.item_non_null = isinstance(item_type, GraphQLNonNull)
        # A list of objects: its items completed by one loop (see _complete_objects).
        inner = item.inner if isinstance(item, _NonNull) else item
        self.object_steps = inner.steps if isinstance(inner, _Object) else None
        self.message = (f"Expected Iterable, but did not find one for field "
                        f"'{f.parent.name}.{f.name}'.")

    def complete(self, run: _Run, f: _Field, path: Path | None, value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if type(value) is not list:  # a list is iterable and not an async iterable
            if isinstance(value, Exception):
                raise value
            if isinstance(value, AsyncIterable):  # no resolver here returns one: the same
                return self._complete_async_iterable(run, f, path, value)  # items, first
            if not is_iterable(value):
                raise GraphQLError(self.message)
        if self.object_steps is not None:
            return self._complete_objects(run, f, path, value)
        return self._complete_items(run, f, path, value)

    async def _complete_async_iterable(self, run: _Run, f: _Field, path: Path | None,
                                       value: AsyncIterable[Any]) -> Any:
        items = [item async for item in value]
        completed = self._complete_items(run, f, path, items)
        return await completed if _is_awaitable(completed) else completed

    def _complete_items(self, run: _Run, f: _Field, path: Path | None, items: Any) -> Any:
        return self._collect(run, f, path, items, self._complete_item)

    def _collect(self, run: _Run, f: _Field, path: Path | None, items: Any,
                 complete: Callable[..., None]) -> Any:
        """Each item completed by ``complete`` into the results, in order; pending ones
        gathered together, and settled in the background if an item's error nulls the list."""
        results: list[Any] = []
        awaiting: list[int] = []
        iterator = iter(items)
        try:
            for index, item in enumerate(iterator):
                complete(run, f, path, index, item, results, awaiting)
        except Exception:
            _settle_list(results, awaiting, iterator)
            raise
        if not awaiting:
            return results
        return _gather_items(results, awaiting)

    def _complete_item(self, run: _Run, f: _Field, path: Path | None, index: int, item: Any,
                       results: list[Any], awaiting: list[int]) -> None:
        """graphql-core's completion of one list item, appended to ``results``. A leaf's
        completion does not read its path: the item's is made only for an error then."""
        item_path = None if self.item.leaf else Path(path, index, None)
        if _is_awaitable(item):
            results.append(self._complete_awaitable_item(
                run, f, item_path or Path(path, index, None), item))
            awaiting.append(index)
            return
        try:
            completed = self.item.complete(run, f, item_path, item)
            if _is_awaitable(completed):
                results.append(self._await_item(run, f, item_path or Path(path, index, None),
                                                 completed))
                awaiting.append(index)
            else:
                results.append(completed)
        except Exception as raw:
            _field_error(run, raw, self.item_non_null, f.nodes,
                         item_path or Path(path, index, None))
            results.append(None)

    def _complete_objects(self, run: _Run, f: _Field, path: Path | None, items: Any) -> Any:
        """:meth:`_complete_items` for a list of objects: an object item is completed in place
        (what ``_NonNull`` and ``_Object`` would do for it) and its Path is made only when
        something needs it (an error, a resolver, a field that is not a leaf)."""
        return self._collect(run, f, path, items, self._complete_object)

    def _complete_object(self, run: _Run, f: _Field, path: Path | None, index: int, item: Any,
                         results: list[Any], awaiting: list[int]) -> None:
        steps = self.object_steps
        assert steps is not None
        if item is None or item is Undefined or isinstance(item, Exception) or _is_awaitable(item):
            self._complete_item(run, f, path, index, item, results, awaiting)
            return
        try:
            completed = _execute_fields(run, steps, item, path, index)
        except Exception as raw:
            _field_error(run, raw, self.item_non_null, f.nodes, Path(path, index, None))
            results.append(None)
            return
        if type(completed) is dict:
            results.append(completed)
        else:
            results.append(self._await_item(run, f, Path(path, index, None), completed))
            awaiting.append(index)

    async def _complete_awaitable_item(self, run: _Run, f: _Field, path: Path,
                                       item: Awaitable[Any]) -> Any:
        try:
            completed = self.item.complete(run, f, path, await item)
            if _is_awaitable(completed):
                completed = await completed
        except Exception as raw:
            _field_error(run, raw, self.item_non_null, f.nodes, path)
            return None
        return completed

    async def _await_item(self, run: _Run, f: _Field, path: Path,
                          completed: Awaitable[Any]) -> Any:
        try:
            return await completed
        except Exception as raw:
            _field_error(run, raw, self.item_non_null, f.nodes, path)
            return None


def _settle_list(results: list[Any], awaiting: list[int], iterator: Iterator[Any]) -> None:
    """As graphql-core when an item's error nulls the list: the items already pending, and
    the awaitable items not reached yet, still run to the end (in the background)."""
    pending = [results[i] for i in awaiting]
    pending.extend(collect_iterator_awaitables(iterator, _is_awaitable))
    if pending:
        _settle_in_background(pending)


async def _gather_items(results: list[Any], awaiting: list[int]) -> list[Any]:
    if len(awaiting) == 1:
        results[awaiting[0]] = await results[awaiting[0]]
    else:
        values = await gather_with_cancel(*(results[i] for i in awaiting))
        for i, value in zip(awaiting, values, strict=True):
            results[i] = value
    return results


def _field_error(run: _Run, raw: Exception, non_null: bool, nodes: list[FieldNode],
                 path: Path) -> None:
    """graphql-core's ``handle_field_error``: locate, then propagate (non-null) or collect."""
    error = located_error(raw, nodes, path.as_list())
    if non_null:
        raise error
    run.add_error(error, path)


# -- fields ----------------------------------------------------------------------------------
class _Field:
    """One selected field of one selection set, planned."""

    def __init__(self, key: str, node: FieldNode, parent: GraphQLObjectType,
                 field_def: Any) -> None:
        self.key = key
        self.name = node.name.value
        self.node = node
        self.nodes = [node]
        self.parent = parent
        self.field_def = field_def
        self.non_null = isinstance(field_def.type, GraphQLNonNull)
        self.completer: _Completer = _Object([])  # set by the compiler
        self.has_args = bool(field_def.args or node.arguments)
        self.attr = ""
        self.definition: Any = None
        self.function: Callable[..., Any] | None = None
        self.permission: PermissionExtension | None = None
        self.self_param = False
        self.source_params: tuple[str, ...] = ()
        self.info_param: str | None = None
        self.info_class: Any = None
        self.build_info: Callable[..., Any] | None = None
        self.info_type: type | None = None  # see _info_layout
        self.info_head: tuple[Any, ...] = (self.name, self.nodes, field_def.type, parent)
        # No arguments, no parent or root parameter, no permission: the resolver is called
        # with the source (its self) and the info only, and awaited when it is a coroutine
        # function (strawberry's kwargs plumbing gives that same call).
        self.bare = False
        self.coroutine = False
        self.scalar_registry: Any = None
        self.config: Any = None
        self.shortcuts: dict[type, Any] = {}  # a leaf's (see _shortcuts)

    def plan_leaf(self, leaf: _Completer) -> None:
        inner = leaf.inner if isinstance(leaf, _NonNull) else leaf
        if isinstance(inner, _Leaf):
            self.shortcuts = inner.shortcuts

    def complete_attribute(self, run: _Run, value: Any, parent_path: Path | None,
                           index: int | None = None) -> Any:
        """A plain field once its attribute is read (strawberry's default resolver is
        ``getattr(source, python_name)``): graphql-core's ``execute_field`` from there. The
        source is item ``index`` of the list at ``parent_path`` when ``index`` is given."""
        path = None if self.completer.leaf else self.path_in(parent_path, index)
        try:
            if _is_awaitable(value):
                return self._complete_awaitable(run, path or self.path_in(parent_path, index),
                                                value)
            completed = self.completer.complete(run, self, path, value)
            if _is_awaitable(completed):
                return self._await_completed(run, path or self.path_in(parent_path, index),
                                             completed)
            return completed
        except Exception as raw:
            _field_error(run, raw, self.non_null, self.nodes,
                         path or self.path_in(parent_path, index))
            return None

    def path_in(self, parent_path: Path | None, index: int | None = None) -> Path:
        return Path(_item_path(parent_path, index), self.key, self.parent.name)

    def resolve_info(self, run: _Run, path: Path) -> Any:
        """strawberry's resolve info for this field (see :func:`_info_layout`)."""
        if self.info_type is None:
            assert self.build_info is not None
            return self.build_info(run, self.field_def, self.nodes, self.parent, path)
        run_part = run.info_tail
        if run_part is None:
            run_part = run.info_tail = _run_part(run)
        return _new_tuple(self.info_type, (*self.info_head, path, *run_part))

    def execute_resolver(self, run: _Run, source: Any, parent_path: Path | None,
                         results: dict[str, Any]) -> Coroutine[Any, Any, dict[str, Any]] | None:
        """graphql-core's ``execute_field`` up to the resolver call (arguments and resolve
        info, whose errors are this field's at once); the coroutine returned runs the resolver,
        completes its value, stores it under the field's key in ``results`` and returns
        ``results``. None when the field failed before (its error is recorded)."""
        path = Path(parent_path, self.key, self.parent.name)
        try:
            args = get_argument_values(self.field_def, self.node, run.variable_values, None,
                                       False) if self.has_args else {}
            raw_info = self.resolve_info(run, path)
        except Exception as raw:
            _field_error(run, raw, self.non_null, self.nodes, path)
            return None
        return self._resolve_and_complete(run, path, source, raw_info, args, results)

    async def _resolve_and_complete(self, run: _Run, path: Path, source: Any, raw_info: Any,
                                    args: dict[str, Any],
                                    results: dict[str, Any]) -> dict[str, Any]:
        """What strawberry's async resolver does (its Info, its argument conversion, its
        permission extension, then the resolver function), then graphql-core's completion of
        an awaited value: any error is this field's."""
        try:
            info = self.info_class(_raw_info=raw_info, _field=self.definition)
            function = self.function
            assert function is not None
            if self.bare:
                call_args = (source,) if self.self_param else ()
                result = (function(*call_args, **{self.info_param: info})
                          if self.info_param is not None else function(*call_args))
                if self.coroutine or inspect.isawaitable(result):
                    result = await result
            else:
                result = await self._call(function, source, info, args)
            completed = self.completer.complete(run, self, path, result)
            if _is_awaitable(completed):
                completed = await completed
        except Exception as raw:
            _field_error(run, raw, self.non_null, self.nodes, path)
            completed = None
        results[self.key] = completed
        return results

    async def _call(self, function: Callable[..., Any], source: Any, info: Any,
                    args: dict[str, Any]) -> Any:
        """strawberry's call of a resolver with arguments, parent or root parameters or a
        permission extension."""
        kwargs = convert_arguments(args, self.definition.arguments,
                                   scalar_registry=self.scalar_registry, config=self.config,
                                   info=info) if self.definition.arguments else {}
        call_args = (source,) if self.self_param else ()
        for name in self.source_params:
            kwargs[name] = source
        if self.info_param is not None:
            kwargs[self.info_param] = info
        # strawberry hands the info to the extensions separately, and back to the
        # resolver under the key "info" (a differently named info parameter stays).
        requested = "info" in kwargs
        if requested:
            del kwargs["info"]
        if self.permission is None:
            if requested:
                kwargs["info"] = info
            result = function(*call_args, **kwargs)
        else:
            def call(_source: Any, info: Any, **kwargs: Any) -> Any:
                if requested:
                    kwargs["info"] = info
                return function(*call_args, **kwargs)

            result = self.permission.resolve_async(call, source, info, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _complete_awaitable(self, run: _Run, path: Path, result: Awaitable[Any]) -> Any:
        try:
            completed = self.completer.complete(run, self, path, await result)
            if _is_awaitable(completed):
                completed = await completed
        except Exception as raw:
            _field_error(run, raw, self.non_null, self.nodes, path)
            return None
        return completed

    async def _await_completed(self, run: _Run, path: Path, completed: Awaitable[Any]) -> Any:
        try:
            return await completed
        except Exception as raw:
            _field_error(run, raw, self.non_null, self.nodes, path)
            return None


# One field of a selection set as the loop below reads it: the field, its response key, the
# attribute to read (None: it has a resolver), its leaf shortcuts, and whether it is non-null.
_Step = tuple[_Field, str, str | None, dict[type, Any], bool]


def _steps(fields: list[_Field]) -> tuple[_Step, ...]:
    """A selection set's fields, their per-request reads taken once (a plan is immutable)."""
    return tuple((f, f.key, f.attr if f.function is None else None, f.shortcuts, f.non_null)
                 for f in fields)


def _execute_fields(run: _Run, steps: tuple[_Step, ...], source: Any, path: Path | None,
                    index: int | None = None) -> Any:
    """graphql-core's ``execute_fields``: in order, awaitables gathered together. A plain
    attribute is read here; a leaf value with a shortcut (:func:`_shortcuts`), or a null where
    null is allowed, is stored without going through completion. ``source`` is item ``index``
    of the list at ``path`` when ``index`` is given: its Path is made when first needed.

    Returns the fields' values, or an awaitable of them: each pending field stores its own
    value, so one pending field is awaited as it is (no gathering coroutine around it)."""
    results: dict[str, Any] = {}
    awaiting: list[Awaitable[Any]] = []
    try:
        for f, key, attr, shortcuts, non_null in steps:
            if attr is None:
                if index is not None:
                    path, index = Path(path, index, None), None
                pending = f.execute_resolver(run, source, path, results)
                results[key] = pending
                if pending is not None:
                    awaiting.append(pending)
                continue
            try:
                value = getattr(source, attr)
            except Exception as raw:
                _field_error(run, raw, non_null, f.nodes, f.path_in(path, index))
                results[key] = None
                continue
            convert = shortcuts.get(type(value), _NO_SHORTCUT)
            if convert is None:
                results[key] = value
                continue
            if convert is not _NO_SHORTCUT:
                converted = convert(value)
                if converted is not None:
                    results[key] = converted
                    continue
            if value is None and not non_null:
                results[key] = None
                continue
            value = f.complete_attribute(run, value, path, index)
            if _is_awaitable(value):
                value = _store(results, key, value)
                awaiting.append(value)
            results[key] = value
    except Exception:
        if awaiting:
            _settle_in_background(awaiting)
        raise
    if not awaiting:
        return results
    if len(awaiting) == 1:
        return awaiting[0]
    return _gather_fields(results, awaiting)


async def _store(results: dict[str, Any], key: str, value: Awaitable[Any]) -> dict[str, Any]:
    results[key] = await value
    return results


async def _gather_fields(results: dict[str, Any],
                         awaiting: list[Awaitable[Any]]) -> dict[str, Any]:
    await gather_with_cancel(*awaiting)
    return results


async def _execute_serially(run: _Run, steps: tuple[_Step, ...]) -> dict[str, Any]:
    """graphql-core's ``execute_fields_serially`` (a mutation's root fields, one by one)."""
    results: dict[str, Any] = {}
    for f, key, attr, _, _ in steps:
        if attr is None:
            results[key] = None
            pending = f.execute_resolver(run, None, None, results)
            if pending is not None:
                await pending
            continue
        try:
            value = getattr(None, attr)
        except Exception as raw:
            _field_error(run, raw, f.non_null, f.nodes, f.path_in(None))
            results[key] = None
            continue
        value = f.complete_attribute(run, value, None)
        results[key] = await value if _is_awaitable(value) else value
    return results


# -- the plan --------------------------------------------------------------------------------
class Plan:
    """A compiled operation; :meth:`execute` answers as ``graphql.execute`` would."""

    def __init__(self, core: Any, operation: OperationDefinitionNode,
                 fields: list[_Field]) -> None:
        self.core = core
        self.operation = operation
        self.variable_definitions = operation.variable_definitions or ()
        self.steps = _steps(fields)
        self.serial = operation.operation == OperationType.MUTATION

    async def execute(self, context: Any, variables: dict[str, Any] | None) -> ExecutionResult:
        coerced = get_variable_values(self.core, self.variable_definitions, variables or {},
                                      max_errors=50, hide_suggestions=False
                                      ) if self.variable_definitions else VariableValues({}, {})
        if isinstance(coerced, list):
            return ExecutionResult(None, coerced)
        run = _Run(self, context, coerced)
        data: dict[str, Any] | None
        try:
            if self.serial:
                data = await _execute_serially(run, self.steps)
            else:
                result = _execute_fields(run, self.steps, None, None)
                data = result if type(result) is dict else await result
        except GraphQLError as error:
            run.add_error(error, None)
            data = None
        return ExecutionResult(data, run.errors())


def compile_operation(schema: strawberry.Schema, document: DocumentNode) -> Plan:
    """The plan for ``document`` (one validated query or mutation); raises
    :class:`Unsupported` naming the first thing it does not plan."""
    return _Compiler(schema).operation(document)


class _Compiler:
    def __init__(self, schema: strawberry.Schema) -> None:
        self.schema = schema
        self.core = schema._schema
        converter = schema.schema_converter
        handlers = getattr(converter, "exception_handlers", None)
        if handlers is None or tuple(handlers):
            raise Unsupported("the schema has exception handlers")
        if schema.config.default_resolver is not getattr:
            raise Unsupported("the schema's default resolver is not getattr")
        self.build_info = schema.execution_context_class.build_resolve_info
        self.info_class = schema.config.info_class
        self.scalar_registry = converter.scalar_registry
        self.config = schema.config

    def operation(self, document: DocumentNode) -> Plan:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != len(document.definitions) or len(operations) != 1:
            raise Unsupported("fragments or more than one operation")
        op = operations[0]
        if op.operation not in (OperationType.QUERY, OperationType.MUTATION):
            raise Unsupported(f"a {op.operation.value} operation")
        if op.directives or any(v.directives for v in op.variable_definitions or ()):
            raise Unsupported("directives")
        root = self.core.get_root_type(op.operation)
        if root is None:
            raise Unsupported(f"no {op.operation.value} type")
        return Plan(self.core, op, self.selection(root, op.selection_set.selections))

    def selection(self, parent: GraphQLObjectType, selections: Any) -> list[_Field]:
        fields: list[_Field] = []
        keys: set[str] = set()
        for node in selections:
            if not isinstance(node, FieldNode):
                raise Unsupported("fragments")
            if node.directives:
                raise Unsupported("directives")
            name = node.name.value
            key = node.alias.value if node.alias else name
            if key in keys:
                raise Unsupported(f"{key} selected twice")
            keys.add(key)
            if name.startswith("__"):
                raise Unsupported(f"meta field {name}")
            field_def = parent.fields.get(name)
            if field_def is None:
                raise Unsupported(f"unknown field {parent.name}.{name}")
            f = _Field(key, node, parent, field_def)
            self.resolution(f)
            f.completer = self.completion(f, field_def.type, node)
            f.plan_leaf(f.completer)
            fields.append(f)
        return fields

    def resolution(self, f: _Field) -> None:
        definition = f.field_def.extensions.get("strawberry-definition")
        where = f"{f.parent.name}.{f.name}"
        if not isinstance(definition, StrawberryField):
            raise Unsupported(f"{where} is not a strawberry field")
        resolve = f.field_def.resolve
        qualname = getattr(resolve, "__qualname__", "")
        if definition.base_resolver is None:
            if (definition.extensions or f.field_def.args
                    or not qualname.endswith("._get_basic_result")
                    or definition.default_resolver is not getattr):
                raise Unsupported(f"{where} is not a plain attribute")
            f.attr = definition.python_name
            return
        resolver = definition.base_resolver
        if not definition.is_async or not qualname.endswith("._async_resolver"):
            raise Unsupported(f"{where} has a resolver that is not async")
        function = resolver.wrapped_func
        if not callable(function) or inspect.isasyncgenfunction(function):
            raise Unsupported(f"{where} has a resolver the plan cannot call")
        extensions = list(definition.extensions)
        if any(type(e) is not PermissionExtension for e in extensions) or len(extensions) > 1:
            raise Unsupported(f"{where} has a field extension other than one permission list")
        if extensions and type(extensions[0]).map_arguments is not FieldExtension.map_arguments:
            raise Unsupported(f"{where} maps its arguments")
        f.definition = definition
        f.function = function
        f.permission = next((e for e in extensions if isinstance(e, PermissionExtension)), None)
        f.self_param = resolver.self_parameter is not None
        f.source_params = tuple(p.name for p in (resolver.parent_parameter,
                                                 resolver.root_parameter) if p is not None)
        f.info_param = resolver.info_parameter.name if resolver.info_parameter else None
        f.info_class = self.info_class
        f.build_info = self.build_info
        f.info_type = _info_layout(self.build_info, f.field_def, f.nodes, f.parent)
        f.bare = not definition.arguments and not f.source_params and f.permission is None
        f.coroutine = inspect.iscoroutinefunction(function)
        f.scalar_registry = self.scalar_registry
        f.config = self.config

    def completion(self, f: _Field, type_: Any, node: FieldNode) -> _Completer:
        if isinstance(type_, GraphQLNonNull):
            return _NonNull(self.completion(f, type_.of_type, node), f)
        if isinstance(type_, GraphQLList):
            return _List(self.completion(f, type_.of_type, node), type_.of_type, f)
        if isinstance(type_, (GraphQLScalarType, GraphQLEnumType)):
            if node.selection_set is not None:
                raise Unsupported(f"a selection on leaf {f.name}")
            return _Leaf(type_)
        if isinstance(type_, GraphQLObjectType):
            if type_.is_type_of is not None:
                raise Unsupported(f"{type_.name} has is_type_of")
            if node.selection_set is None:
                raise Unsupported(f"no selection on {f.name}")
            return _Object(self.selection(type_, node.selection_set.selections))
        raise Unsupported(f"{f.parent.name}.{f.name} returns an abstract type")
