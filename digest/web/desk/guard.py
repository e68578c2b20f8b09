"""The desk's door: every request passes here before any page runs.

In order:
1. The desk is off (404) until an administrator exists (`digest admin add-user`), and refused
   (403, one sentence) when `web.base_url` is `http://` on a host that is not loopback: the
   password and the session cookie would cross the network in clear.
2. Routes in `PUBLIC` (the login page and the static files) need no session; every other
   route does. Without a live session a GET is redirected to the login page (which returns
   to the page asked for, a path of this desk only) and any other method gets 401. A route
   added later is therefore closed unless it is named in `PUBLIC` (the tests enumerate the
   route table against that list).
3. Every request that is not GET or HEAD must come from the desk's own origin (its
   `Origin` header equals `web.base_url`'s; a missing one is refused too) and, once logged
   in, carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`): else
   403. The body is read here (at most `MAX_BODY` bytes) to find the token, and handed on
   unchanged, parsed, as `request.state.form`.

The cookie is `__Host-digest-desk`, `Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/`; on a
loopback `http://` base URL (trying digest out on one machine) the browser would drop a
`Secure` cookie, so it is `digest-desk` without `Secure` (a `__Host-` name requires it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.access import admins as access
from digest.links import is_loopback
from digest.store.database import Database

PUBLIC = frozenset({"/login", "/static/"})  # paths in the desk (a trailing / is a prefix)
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_BODY = 64 * 1024 * 1024  # a CSV of a million subscribers is about 50 MB
COOKIE_SECURE = "__Host-digest-desk"
COOKIE_PLAIN = "digest-desk"


@dataclass(frozen=True, slots=True)
class Door:
    """What the guard knows of where the desk lives."""

    origin: str  # scheme://host[:port] of web.base_url
    secure: bool  # https: the __Host- cookie with Secure
    refused: str | None  # why the desk is refused altogether (non-loopback http), or None

    @classmethod
    def of(cls, base_url: str) -> Door:
        parts = urlsplit(base_url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        secure = parts.scheme == "https"
        refused = None
        if not secure and not is_loopback(parts.hostname or ""):
            refused = (
                f"The desk is off: web.base_url ({base_url}) is not https://, and only a "
                "loopback host may use http:// (a password and a session cookie would cross "
                "the network in clear)."
            )
        return cls(origin, secure, refused)

    @property
    def cookie(self) -> str:
        return COOKIE_SECURE if self.secure else COOKIE_PLAIN

    def set_cookie(self, response: Response, secret: str) -> None:
        response.set_cookie(
            self.cookie,
            secret,
            max_age=int(access.ABSOLUTE.total_seconds()),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(
            self.cookie, path="/", secure=self.secure, httponly=True, samesite="strict"
        )


def desk_path(scope: Scope) -> str:
    """The request's path inside the desk (without the mount's /admin)."""
    path = str(scope["path"])
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def is_public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


class Guard:
    """ASGI middleware in front of the whole desk app (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        database: Database,
        door: Door,
        clock: Callable[[], datetime],
        mount: str,
    ) -> None:
        self.app = app
        self.database = database
        self.door = door
        self.clock = clock
        self.mount = mount
        self.opened = False  # an administrator was seen: the desk stays open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.door.refused is not None:
            await PlainTextResponse(self.door.refused, 403)(scope, receive, send)
            return
        if not self.opened:
            self.opened = await run_in_threadpool(self._any_admin)
            if not self.opened:
                await PlainTextResponse("Not Found", 404)(scope, receive, send)
                return
        request = Request(scope, receive)
        path = desk_path(scope)
        method = request.method
        who = await run_in_threadpool(self._who, request)
        state = scope.setdefault("state", {})
        state["who"] = who
        if not is_public(path) and who is None:
            if method in SAFE_METHODS:
                target = path + (
                    f"?{scope['query_string'].decode('latin-1')}"
                    if scope.get("query_string")
                    else ""
                )
                login = f"{self.mount}/login?next={quote(target, safe='')}"
                await RedirectResponse(login, 303)(scope, receive, send)
            else:
                await PlainTextResponse("Log in first.", 401)(scope, receive, send)
            return
        if method in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        origin = request.headers.get("origin", "").lower()
        if origin != self.door.origin:
            await PlainTextResponse("Refused: not sent from this desk.", 403)(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await PlainTextResponse("Too large.", 413)(scope, receive, send)
            return
        replay = _replay(body)
        form = await _form(Request(scope, replay()))
        if who is not None:
            presented = request.headers.get("x-csrf-token") or _field(form, "csrf")
            if not access.csrf_matches(who, presented):
                await PlainTextResponse("Refused: missing or wrong CSRF token.", 403)(
                    scope, receive, send
                )
                return
        state["form"] = form
        await self.app(scope, replay(), send)

    def _any_admin(self) -> bool:
        with self.database.session() as session:
            return access.exists(session)

    def _who(self, request: Request) -> access.Who | None:
        secret = request.cookies.get(self.door.cookie)
        if not secret or len(secret) > 100:
            return None
        with self.database.session() as session:
            return access.current(session, secret, self.clock())


def _field(form: FormData | None, name: str) -> str | None:
    value = form.get(name) if form is not None else None
    return value if isinstance(value, str) else None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Callable[[], Receive]:
    def make() -> Receive:
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return receive

    return make


async def _form(request: Request) -> FormData | None:
    kind = request.headers.get("content-type", "")
    if not kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    try:
        return await request.form(max_files=1, max_fields=200, max_part_size=1024 * 1024)
    except Exception:  # a malformed body: no form, so no token either
        return None


def who_of(request: Request) -> access.Who:
    who = getattr(request.state, "who", None)
    if not isinstance(who, access.Who):  # pragma: no cover - the guard lets none through
        raise PermissionError("no session")
    return who


def form_of(request: Request) -> FormData:
    form: Any = getattr(request.state, "form", None)
    return form if isinstance(form, FormData) else FormData()
