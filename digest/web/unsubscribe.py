"""`/u/TOKEN`: the unsubscribe link of every email and its one-click header (RFC 8058).

GET only shows whose address it is about and a button: mail scanners follow links, so a GET
must change nothing. POST with `List-Unsubscribe=One-Click` (form-urlencoded or multipart, as
Gmail and Yahoo send it) unsubscribes at once: no cookie, no CSRF token, no redirect, 200, and
a repeat changes nothing. The page's own button posts the same field plus `source=page`, which
is how an unsubscribe "from the link" is told from one "from the mail client's button".
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from digest.audience.addresses import mask
from digest.store.subscribers import Method, unsubscribe
from digest.store.tables import Status
from digest.tokens import TokenData, make_token
from digest.web.site import Site, client_ip, small_form, user_agent, with_locale

ONE_CLICK = ("List-Unsubscribe", "One-Click")
FROM_PAGE = ("source", "page")


class Unsubscribe:
    def __init__(self, site: Site) -> None:
        self.site = site

    def show(self, request: Request) -> Response:
        site = self.site
        data = site.token("unsubscribe", request.path_params["token"])
        with site.database.session() as session:
            person = site.subscriber(session, data)
            email, status, preferred = person.email, person.status, person.locale
        values = {
            "masked": mask(email),
            "done": status == Status.UNSUBSCRIBED,
            "just_now": False,
            "action": with_locale(request.url.path, request),
            "preferences_href": self._preferences(data),
        }
        return site.render(request, site.locale(request, preferred), "unsubscribe", values)

    async def post(self, request: Request) -> Response:
        # the token first: a bad link is the same 400 whatever the body holds
        data = self.site.token("unsubscribe", request.path_params["token"])
        form = await small_form(request)
        if form.get(ONE_CLICK[0]) != ONE_CLICK[1]:
            raise HTTPException(400)
        method: Method = "link" if form.get(FROM_PAGE[0]) == FROM_PAGE[1] else "one-click"
        ip, agent = client_ip(request), user_agent(request)

        def apply() -> Response:
            with self.site.database.session() as session:
                person = self.site.subscriber(session, data)
                changed = unsubscribe(
                    session,
                    person,
                    method,
                    issue_id=self.site.issue_id(session, data),
                    ip=ip,
                    user_agent=agent,
                )
                email, preferred = person.email, person.locale
            values = {
                "masked": mask(email),
                "done": True,
                "just_now": changed,
                "action": with_locale(request.url.path, request),
                "preferences_href": self._preferences(data),
            }
            locale = self.site.locale(request, preferred)
            return self.site.render(request, locale, "unsubscribe", values)

        return await run_in_threadpool(apply)

    def _preferences(self, data: TokenData) -> str:
        keys = self.site.keys
        return "/p/" + make_token(
            keys, "preferences", data.subscriber_id, data.issue_id, data.binding
        )
