"""GraphQL armour beyond strawberry's built-ins: a directive-count cap and hidden suggestions.

- ``MaxDirectivesLimiter``: refuses documents with more directives than allowed (graphql-armor's
  default is 50); a validation rule, so a refused document is never executed.
- ``HideSuggestions``: in production, strips graphql-core's "Did you mean ...?" hints, which
  would otherwise let anyone enumerate field, argument and enum names with introspection off.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from graphql import DirectiveNode, GraphQLError, ValidationContext, ValidationRule
from strawberry.extensions import AddValidationRules, SchemaExtension

__all__ = ["MaxDirectivesLimiter", "HideSuggestions", "strip_suggestions"]

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
