"""GraphQL armour beyond strawberry's built-ins: a directive-count cap and hidden suggestions.

- ``MaxDirectivesLimiter``: refuses documents with more directives than allowed (graphql-armor's
  default is 50); a validation rule, so a refused document is never executed.
- ``HideSuggestions``: in production, strips graphql-core's "Did you mean ...?" hints, which
  would otherwise let anyone enumerate field, argument and enum names with introspection off.
- ``once_if_anonymous``: a mutation callable without a token may appear once per request for
  such a caller (15 aliases of one anonymous write were 15 writes for the price of one request).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.types import Info

from api.core.errors import BadInput

__all__ = ["MaxDirectivesLimiter", "HideSuggestions", "strip_suggestions", "once_if_anonymous"]

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def _directive_rule(limit: int) -> type[ValidationRule]:
    class MaxDirectivesRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.count = 0

        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            self.count += 1
            if self.count == limit + 1:
                self.report_error(GraphQLError(
                    f"the document uses more than {limit} directives", node))

    return MaxDirectivesRule


class MaxDirectivesLimiter(AddValidationRules):
    def __init__(self, max_directive_count: int) -> None:
        super().__init__([_directive_rule(max_directive_count)])


def strip_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


class HideSuggestions(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        for error in getattr(self.execution_context.result, "errors", None) or []:
            error.message = strip_suggestions(error.message)


def _count(selections: SelectionSetNode, name: str,
           fragments: dict[str, FragmentDefinitionNode]) -> int:
    found = 0
    for node in selections.selections:
        if isinstance(node, FieldNode):
            found += node.name.value == name
        elif isinstance(node, InlineFragmentNode):
            found += _count(node.selection_set, name, fragments)
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            found += _count(fragments[node.name.value].selection_set, name, fragments)
    return found


def once_if_anonymous(info: Info) -> None:
    """Refuse the whole request (every copy answers BAD_USER_INPUT, none runs) when a caller
    without a valid token selects this root field more than once, under aliases or fragments."""
    if info.context.principal is not None:
        return
    # graphql-core's resolve info: the only place the operation's fragments are available.
    fragments: dict[str, FragmentDefinitionNode] = info._raw_info.fragments
    if _count(info.operation.selection_set, info.field_name, fragments) > 1:
        raise BadInput(f"{info.field_name} may appear once per request without a token",
                       field=info.field_name)
