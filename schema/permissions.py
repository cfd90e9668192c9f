"""Declared permissions: put one on a field with ``permission_classes=[IsAdmin]``.

Each raises the domain error itself, so the client gets UNAUTHENTICATED for a missing or bad
token and FORBIDDEN for the wrong role or scope.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from api.core.errors import Forbidden, Unauthenticated
from api.security.tokens import Principal
from schema.context import Context

__all__ = ["IsMember", "IsAdmin", "IsPartner", "IsAdminOrPartner", "principal_of"]


def principal_of(info: Info) -> Principal:
    ctx: Context = info.context
    if ctx.auth_error is not None:
        raise ctx.auth_error
    if ctx.principal is None:
        raise Unauthenticated("sign in first: this operation needs a token")
    return ctx.principal


class _RolePermission(BasePermission):
    roles: tuple[str, ...] = ()
    message = "forbidden"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = principal_of(info)
        if principal.role not in self.roles:
            raise Forbidden(f"this operation needs a {' or '.join(self.roles).lower()} token")
        return True


class IsMember(_RolePermission):
    roles = ("MEMBER",)


class IsAdmin(_RolePermission):
    roles = ("ADMIN",)


class IsPartner(_RolePermission):
    roles = ("PARTNER",)


class IsAdminOrPartner(_RolePermission):
    """``recordPurchase`` may come from an admin or a partner service token (scope purchases)."""

    roles = ("ADMIN", "PARTNER")
