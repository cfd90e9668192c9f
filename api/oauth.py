"""``POST /oauth/token``: the OAuth 2.0 client-credentials grant for partner integrators.

Filled in by the partners capability; until then it answers a clear OAuth error.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from api.runtime import Runtime

__all__ = ["token_endpoint"]


async def token_endpoint(rt: Runtime, request: Request) -> JSONResponse:
    return JSONResponse({"error": "unsupported_grant_type",
                         "error_description": "partner credentials are not available yet"},
                        status_code=400)
