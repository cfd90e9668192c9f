"""Compiled plans: a trusted document executed without graphql-core's per-field machinery.

A registered document (``schema/trusted/``) is parsed and validated once at start-up; the fast
path (``schema/fastpath.py``) then compiles it, once, with :func:`compile_operation` into a
tree of planned fields. Per request a plan does what graphql-core and strawberry would do
for that document, and nothing else: it coerces the variables and arguments with
graphql-core's own functions, builds the resolve info with strawberry's own function, runs
strawberry's own ``PermissionExtension`` and calls the same resolver functions (so the same
domain services); it completes values as graphql-core does (nulls, non-null propagation,
lists, leaf coercion with each type's own ``coerce_output_value``), and locates and collects
errors as graphql-core does, so the error mapping after it (``schema.errors.classify``) is
the same. What it drops is the bookkeeping around that: field collection, resolve infos for
plain attributes, ``Path`` objects for leaves, strawberry's per-call argument plumbing.

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
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
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
from graphql.execution.executor import CollectedErrors, Executor
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
    ``build_resolve_info`` reads from an executor: the plan builds resolve infos with it."""

    __slots__ = ("schema", "fragment_definitions", "root_value", "operation", "variable_values",
                 "context_value", "is_awaitable", "abort_signal", "async_helpers",
                 "operation_extensions", "collected")

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
        self.collected = CollectedErrors()


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
        self.fields = fields
        self.steps = _steps(fields)

    def complete(self, run: _Run, f: _Field, path: Path | None, value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise value
        return _execute_fields(run, self.steps, value, path)


class _List(_Completer):
    def __init__(self, item: _Completer, item_type: Any, f: _Field) -> None:
        self.item = item
        self.item_type = item_type
        self.item_non_null = isinstance(item_type, GraphQLNonNull)
        self.message = (f"Expected Iterable, but did not find one for field "
                        f"'{f.parent.name}.{f.name}'.")

    def complete(self, run: _Run, f: _Field, path: Path | None, value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise value
        if isinstance(value, AsyncIterable):  # no resolver here returns one: the same items,
            return self._complete_async_iterable(run, f, path, value)  # collected first
        if not is_iterable(value):
            raise GraphQLError(self.message)
        return self._complete_items(run, f, path, value)

    async def _complete_async_iterable(self, run: _Run, f: _Field, path: Path | None,
                                       value: AsyncIterable[Any]) -> Any:
        items = [item async for item in value]
        completed = self._complete_items(run, f, path, items)
        return await completed if _is_awaitable(completed) else completed

    def _complete_items(self, run: _Run, f: _Field, path: Path | None, items: Any) -> Any:
        results: list[Any] = []
        awaiting: list[int] = []
        complete = self.item.complete
        index = 0
        for item in items:
            item_path = Path(path, index, None)
            if _is_awaitable(item):
                results.append(self._complete_awaitable_item(run, f, item_path, item))
                awaiting.append(index)
            else:
                try:
                    completed = complete(run, f, item_path, item)
                    if _is_awaitable(completed):
                        results.append(self._await_item(run, f, item_path, completed))
                        awaiting.append(index)
                    else:
                        results.append(completed)
                except Exception as raw:
                    _field_error(run, raw, self.item_non_null, f.nodes, item_path)
                    results.append(None)
            index += 1
        if not awaiting:
            return results
        return _gather_items(results, awaiting)

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
    run.collected.add(error, path)


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
        self.scalar_registry: Any = None
        self.config: Any = None
        self.shortcuts: dict[type, Any] = {}  # a leaf's (see _shortcuts)

    def plan_leaf(self, leaf: _Completer) -> None:
        inner = leaf.inner if isinstance(leaf, _NonNull) else leaf
        if isinstance(inner, _Leaf):
            self.shortcuts = inner.shortcuts

    def complete_attribute(self, run: _Run, value: Any, parent_path: Path | None) -> Any:
        """A plain field once its attribute is read (strawberry's default resolver is
        ``getattr(source, python_name)``): graphql-core's ``execute_field`` from there."""
        path = None if self.completer.leaf else Path(parent_path, self.key, self.parent.name)
        try:
            if _is_awaitable(value):
                path = path or Path(parent_path, self.key, self.parent.name)
                return self._complete_awaitable(run, path, value)
            completed = self.completer.complete(run, self, path, value)
            if _is_awaitable(completed):
                return self._await_completed(run, path or Path(parent_path, self.key,
                                                                self.parent.name), completed)
            return completed
        except Exception as raw:
            _field_error(run, raw, self.non_null, self.nodes,
                         path or Path(parent_path, self.key, self.parent.name))
            return None

    def execute_resolver(self, run: _Run, source: Any, parent_path: Path | None) -> Any:
        path = Path(parent_path, self.key, self.parent.name)
        try:
            args = get_argument_values(self.field_def, self.node, run.variable_values, None,
                                       False) if self.has_args else {}
            assert self.build_info is not None
            raw_info = self.build_info(run, self.field_def, self.nodes, self.parent, path)
        except Exception as raw:
            _field_error(run, raw, self.non_null, self.nodes, path)
            return None
        return self._resolve_and_complete(run, path, source, raw_info, args)

    async def _resolve_and_complete(self, run: _Run, path: Path, source: Any, raw_info: Any,
                                    args: dict[str, Any]) -> Any:
        """What strawberry's async resolver does (its Info, its argument conversion, its
        permission extension, then the resolver function), then graphql-core's completion of
        an awaited value: any error is this field's."""
        try:
            info = self.info_class(_raw_info=raw_info, _field=self.definition)
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
            function = self.function
            assert function is not None
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
            completed = self.completer.complete(run, self, path, result)
            if _is_awaitable(completed):
                completed = await completed
        except Exception as raw:
            _field_error(run, raw, self.non_null, self.nodes, path)
            return None
        return completed

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


def _execute_field(run: _Run, f: _Field, source: Any, path: Path | None) -> Any:
    """graphql-core's ``execute_field`` (the shortcuts of :func:`_execute_fields` aside)."""
    if f.function is not None:
        return f.execute_resolver(run, source, path)
    try:
        value = getattr(source, f.attr)
    except Exception as raw:
        _field_error(run, raw, f.non_null, f.nodes, Path(path, f.key, f.parent.name))
        return None
    return f.complete_attribute(run, value, path)


# One field of a selection set as the loop below reads it: the field, its response key, the
# attribute to read (None: it has a resolver), its leaf shortcuts, and whether it is non-null.
_Step = tuple[_Field, str, str | None, dict[type, Any], bool]


def _steps(fields: list[_Field]) -> tuple[_Step, ...]:
    """A selection set's fields, their per-request reads taken once (a plan is immutable)."""
    return tuple((f, f.key, f.attr if f.function is None else None, f.shortcuts, f.non_null)
                 for f in fields)


def _execute_fields(run: _Run, steps: tuple[_Step, ...], source: Any,
                    path: Path | None) -> Any:
    """graphql-core's ``execute_fields``: in order, awaitables gathered together. A plain
    attribute is read here; a leaf value with a shortcut (:func:`_shortcuts`), or a null where
    null is allowed, is stored without going through completion."""
    results: dict[str, Any] = {}
    awaiting: list[str] = []
    try:
        for f, key, attr, shortcuts, non_null in steps:
            if attr is not None:
                try:
                    value = getattr(source, attr)
                except Exception as raw:
                    _field_error(run, raw, non_null, f.nodes, Path(path, key, f.parent.name))
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
                value = f.complete_attribute(run, value, path)
            else:
                value = f.execute_resolver(run, source, path)
            results[key] = value
            if _is_awaitable(value):
                awaiting.append(key)
    except Exception:
        if awaiting:
            _settle_in_background([results[key] for key in awaiting])
        raise
    if not awaiting:
        return results
    return _gather_fields(results, awaiting)


async def _gather_fields(results: dict[str, Any], awaiting: list[str]) -> dict[str, Any]:
    if len(awaiting) == 1:
        results[awaiting[0]] = await results[awaiting[0]]
    else:
        values = await gather_with_cancel(*(results[key] for key in awaiting))
        results.update(zip(awaiting, values, strict=True))
    return results


async def _execute_serially(run: _Run, fields: list[_Field]) -> dict[str, Any]:
    """graphql-core's ``execute_fields_serially`` (a mutation's root fields, one by one)."""
    results: dict[str, Any] = {}
    for f in fields:
        value = _execute_field(run, f, None, None)
        results[f.key] = await value if _is_awaitable(value) else value
    return results


# -- the plan --------------------------------------------------------------------------------
class Plan:
    """A compiled operation; :meth:`execute` answers as ``graphql.execute`` would."""

    def __init__(self, core: Any, operation: OperationDefinitionNode,
                 fields: list[_Field]) -> None:
        self.core = core
        self.operation = operation
        self.variable_definitions = operation.variable_definitions or ()
        self.fields = fields
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
                data = await _execute_serially(run, self.fields)
            else:
                result = _execute_fields(run, self.steps, None, None)
                data = await result if _is_awaitable(result) else result
        except GraphQLError as error:
            run.collected.add(error, None)
            data = None
        return ExecutionResult(data, run.collected.errors or None)


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
