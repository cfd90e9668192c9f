"""The served GraphQL schema: per-domain Query/Mutation classes merged into one."""

from __future__ import annotations

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types

from schema import audit, consent, delivery_admin, members, partners, rights
from schema.errors import ErrorCodes
from schema.limits import HideSuggestions, MaxDirectivesLimiter

__all__ = ["build_schema", "LIMITS"]

# Numbers documented in the README's Security section (graphql-armor's defaults).
LIMITS = {"depth": 6, "aliases": 15, "tokens": 1000, "directives": 50, "page": 100}

Query = merge_types("Query", (consent.Query, partners.Query, members.Query, rights.Query,
                              audit.Query, delivery_admin.Query))
Mutation = merge_types("Mutation", (members.Mutation, consent.Mutation, rights.Mutation,
                                    partners.Mutation, delivery_admin.Mutation))


def build_schema(*, production: bool = False) -> strawberry.Schema:
    extensions: list = [
        ErrorCodes,
        ParserCache(maxsize=256),
        ValidationCache(maxsize=256),
        QueryDepthLimiter(max_depth=LIMITS["depth"]),
        MaxAliasesLimiter(max_alias_count=LIMITS["aliases"]),
        MaxTokensLimiter(max_token_count=LIMITS["tokens"]),
        MaxDirectivesLimiter(max_directive_count=LIMITS["directives"]),
    ]
    if production:
        extensions.append(AddValidationRules([NoSchemaIntrospectionCustomRule]))
        extensions.append(HideSuggestions())
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions)
