"""Logging in and out of the desk (digest.access.admins holds the rules: argon2id, TOTP,
sessions, throttling). After a login the browser goes back to the page it asked for, when
that is a path of this desk; anything else goes to the overview."""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.access import admins as access
from digest.web.desk.guard import form_of, who_of
from digest.web.desk.pages import Desk
from digest.web.site import client_ip, user_agent

_NEXT = re.compile(r"^/[A-Za-z0-9/_.?=&%+-]*$")


def safe_next(value: str | None) -> str:
    """A path inside the desk to return to, or the overview: never `//host`, a scheme or a
    backslash, so a login link cannot send anyone elsewhere."""
    if value and _NEXT.match(value) and not value.startswith("//"):
        return value
    return "/"


class Login:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def form(self, request: Request) -> Response:
        if getattr(request.state, "who", None) is not None:
            return self.desk.back(safe_next(request.query_params.get("next")))
        return self._page(request, error=None)

    def _page(
        self, request: Request, *, error: str | None, status: int = 200, name: str = ""
    ) -> Response:
        values = {"error": error, "next": safe_next(request.query_params.get("next")), "name": name}
        return self.desk.render(request, "login", values, status=status, title="Log in")

    async def post(self, request: Request) -> Response:
        form = form_of(request)
        name = str(form.get("name", ""))[:100]
        password = str(form.get("password", ""))[:2048]
        code = str(form.get("code", ""))[:20]
        ip, agent = client_ip(request), user_agent(request)

        def attempt() -> access.Opened | None:
            with self.desk.database.session() as session:
                return access.log_in(
                    session,
                    name,
                    password,
                    code,
                    now=self.desk.clock(),
                    ip=ip,
                    user_agent=agent,
                )

        try:
            opened = await run_in_threadpool(attempt)
        except access.Throttled as exc:
            response = self._page(request, error="throttled", status=429, name=name)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        if opened is None:
            return self._page(request, error="failed", status=401, name=name)
        target = safe_next(str(form.get("next", "")) or None)
        response = self.desk.back(target)
        self.desk.door.set_cookie(response, opened.secret)
        return response

    def logout(self, request: Request) -> Response:
        who = who_of(request)
        with self.desk.database.session() as session:
            access.log_out(session, who, self.desk.clock(), client_ip(request))
        response = self.desk.back("/login")
        self.desk.door.clear_cookie(response)
        return response

    def logout_everywhere(self, request: Request) -> Response:
        who = who_of(request)
        with self.desk.database.session() as session:
            access.log_out_everywhere(session, who, self.desk.clock(), client_ip(request))
        response = self.desk.back("/login")
        self.desk.door.clear_cookie(response)
        return response
