"""Per-request GraphQL context: the runtime, the caller and a request id for logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from api.core.errors import ConsentryError
from api.platform.runtime import Runtime
from api.security.tokens import Principal

__all__ = ["Context"]


@dataclass
class Context:
    rt: Runtime
    request: Request | None
    principal: Principal | None
    request_id: str
    auth_error: ConsentryError | None = None
    # Per-request caches (dataloaders, unwrapped keys); never shared between requests.
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def client(self) -> str:
        if self.request is None or self.request.client is None:
            return ""
        return self.request.client.host

    @property
    def user_agent(self) -> str:
        return "" if self.request is None else self.request.headers.get("user-agent", "")[:255]
