"""The served GraphQL schema: per-domain Query/Mutation classes merged into one."""

from __future__ import annotations

import functools
from collections.abc import Callable

import strawberry
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.tools import merge_types

from schema import (
    accounts,
    article5,
    audit,
    consent,
    console,
    delivery_admin,
    members,
    partner_events,
    partners,
    passkeys,
    rights,
)
from schema.errors import ErrorCodes, QuietSchema
from schema.limits import HideSuggestions, MaxDirectivesLimiter

__all__ = ["build_schema", "validation_rules", "LIMITS"]

# Numbers documented in the README's Security section (graphql-armor's defaults).
LIMITS = {"depth": 6, "aliases": 15, "tokens": 1000, "directives": 50, "page": 100}

Query = merge_types("Query", (consent.Query, partners.Query, members.Query, rights.Query,
                              audit.Query, delivery_admin.Query, article5.Query,
                              console.Query, partner_events.Query))
Mutation = merge_types("Mutation", (members.Mutation, consent.Mutation, rights.Mutation,
                                    partners.Mutation, delivery_admin.Mutation,
                                    article5.Mutation, passkeys.Mutation, accounts.Mutation,
                                    partner_events.Mutation))


@functools.cache
def validation_rules(production: bool = False) -> tuple[type[ASTValidationRule], ...]:
    """Our extra validation rules, built ONCE per process.

    strawberry's ValidationCache is keyed by (schema, document, rules): limiter extensions built
    per request would make new rule classes every time and the cache would never hit. The fast
    path (schema/fastpath.py) validates with exactly these rules too.
    """
    rules: list[type[ASTValidationRule]] = [
        *QueryDepthLimiter(max_depth=LIMITS["depth"]).validation_rules,
        *MaxAliasesLimiter(max_alias_count=LIMITS["aliases"]).validation_rules,
        *MaxDirectivesLimiter(max_directive_count=LIMITS["directives"]).validation_rules,
    ]
    if production:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


def build_schema(*, production: bool = False) -> strawberry.Schema:
    # Factories, not instances: strawberry builds extensions per request, so no request reads
    # another's execution context; the caches themselves live at module level and are shared.
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        ErrorCodes,
        functools.partial(ParserCache, maxsize=256),
        functools.partial(ValidationCache, maxsize=256),
        functools.partial(AddValidationRules, list(validation_rules(production))),
        functools.partial(MaxTokensLimiter, max_token_count=LIMITS["tokens"]),
    ]
    if production:
        extensions.append(HideSuggestions)
    return QuietSchema(query=Query, mutation=Mutation, extensions=extensions)
