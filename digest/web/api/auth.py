"""Bearer tokens on every route of the API but the public ones, and each token's limit.

`BearerAuth` wraps the whole API app, so a route added later is closed unless it is named in
PUBLIC: a request without a valid, unrevoked token gets 401 (with `WWW-Authenticate:
Bearer`), one over its token's requests per minute 429 with `Retry-After`, before any handler
runs. What the token may do is then the handler's question (`require`): a `read` token may
only read; writing needs `write`.

Tokens travel in the `Authorization` header only, never in a cookie or the URL, so a page on
another site cannot make a browser use one: the API needs no CSRF token.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from digest.access.tokens import Grant, check
from digest.store.database import Database
from digest.web.api.errors import ApiError, error_response
from digest.web.api.limits import TokenLimiter

PUBLIC = frozenset({"/openapi.json"})  # answered without a token (tests list them too)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="digest"'}


class BearerAuth:
    def __init__(self, app: ASGIApp, *, database: Database, limiter: TokenLimiter) -> None:
        self.app = app
        self.database = database
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _route_path(scope) in PUBLIC:
            await self.app(scope, receive, send)
            return
        presented = _bearer(scope)
        grant = await run_in_threadpool(self._check, presented) if presented else None
        if grant is None:
            message = (
                "this token is not valid (or was revoked)."
                if presented
                else "send a token: Authorization: Bearer dgt_... (digest admin token create)."
            )
            await error_response(401, "unauthorized", message, CHALLENGE)(scope, receive, send)
            return
        wait = self.limiter.wait(grant.id, grant.per_minute)
        if wait:
            message = f"token {grant.name} made more than {grant.per_minute} requests a minute."
            headers = {"Retry-After": str(wait)}
            await error_response(429, "rate_limited", message, headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["grant"] = grant
        await self.app(scope, receive, send)

    def _check(self, presented: str) -> Grant | None:
        with self.database.session() as session:
            return check(session, presented)


def _route_path(scope: Scope) -> str:
    path = str(scope["path"])
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


def grant_of(request: Request) -> Grant:
    grant = getattr(request.state, "grant", None)
    if not isinstance(grant, Grant):  # pragma: no cover - BearerAuth guards every route
        raise ApiError(401, "send a token.", headers=CHALLENGE)
    return grant


def require(request: Request, scope: str) -> Grant:
    """The request's grant, if it may do what `scope` needs (`read` or `write`); else 403."""
    grant = grant_of(request)
    if scope == "write" and not grant.can_write:
        raise ApiError(403, f"token {grant.name} is read-only; this needs a write token.")
    return grant
