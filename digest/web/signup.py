"""`/subscribe` and `/confirm/TOKEN`: sign-up by double opt-in, from our page or the blog's.

The form creates (or reuses) a `pending` subscriber and mails a signed confirmation link; only
the POST behind that link's button activates the address and stores the consent (time, IP, user
agent, source "web"). A GET of the link changes nothing: mail scanners follow links.

A post is accepted only with what digest.audience.guard asks: a signed stamp from a form we
served, old enough (no instant script), and a solved proof of work when one is needed, never
used before (its challenge is spent with the sign-up: digest.store.challenges). A post
without them — the `digest form` snippet on a static blog page has no stamp — gets a one-click
page on our own origin carrying a fresh stamp (and the challenge when needed), whose button
posts the same fields again; nobody is created until then. The honeypot field answers like a
success and creates nobody.

Answers: the "check your inbox" page; or a 303 back to the blog when the post names a
`return_to` URL whose exact origin is listed in `web.return_to` (any other is ignored: no open
redirect); or, for `Accept: application/json`, JSON with CORS headers for the listed origins
only (`/subscribe/start` gives a snippet's script the stamp and the challenge first).

Sign-up never tells whether an address is known: every well-formed request gets the same
answer, whether a mail went out or not (already active, rate limited, honeypot), and the mail
itself is sent after the response, so the time taken tells nothing either. The welcome mail
(`welcome`, digest.web.welcome) is queued with the confirmation and sent after its answer.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from digest.audience import guard
from digest.audience.addresses import InvalidAddress, clean_name, mask, normalise_email
from digest.audience.signup import CONFIRM_MAIL, IP_WINDOW, Confirmation, confirm, request
from digest.delivery.mailer import Mailer
from digest.render.i18n import supported
from digest.store import challenges, welcomes
from digest.store.events import ips_since
from digest.store.ledger import recent_categories
from digest.store.tables import Status, Subscriber
from digest.tokens import make_token
from digest.web.confirmations import deliver_confirmation, guard_settings, signup_settings
from digest.web.site import Site, client_ip, small_form, user_agent, with_locale
from digest.web.welcome import send_welcomes

log = logging.getLogger("digest.web")

HONEYPOT = "website"  # a field people never see (hidden by CSS); bots fill it in
WIDGET = "/static/altcha.min.js"


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


class Signup:
    def __init__(self, site: Site, mailer: Mailer) -> None:
        self.site = site
        self.mailer = mailer
        self.guard = guard_settings(site.config, site.keys.secret)
        self.origins = frozenset(site.config.web.return_to)

    # -- CORS: the listed origins only --------------------------------------------------------

    def cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        if origin.lower() not in self.origins:
            return {"Vary": "Origin"}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Content-Type, Accept",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def preflight(self, request: Request) -> Response:
        return Response(status_code=204, headers=self.cors(request))

    def return_url(self, value: str) -> str | None:
        """`value` when its exact origin is listed in `web.return_to`, else None."""
        if not value or len(value) > 2000 or any(c in value for c in "\r\n\\"):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.username:
            return None
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        return value if origin in self.origins else None

    # -- the form -------------------------------------------------------------------------------

    def form(self, request: Request) -> Response:
        locale = self.site.locale(request)
        ip = client_ip(request)
        values = self._guarded_values(ip, fresh_stamp=None)
        return self._form(request, locale, {"email": "", "name": "", "chosen": locale}, values)

    def start(self, request: Request) -> Response:
        """`/subscribe/start`: what the snippet's script fetches before the reader submits."""

        def read() -> dict[str, Any]:
            values = self._guarded_values(client_ip(request), fresh_stamp=None)
            return {
                "stamp": values["stamp"],
                "challenge": values["challenge"],
                "widget": f"{self.site.config.web.base_url}{WIDGET}",
            }

        headers = {**self.cors(request), "Cache-Control": "no-store"}
        return JSONResponse(read(), headers=headers)

    def _guarded_values(self, ip: str | None, fresh_stamp: str | None) -> dict[str, Any]:
        now = self.site.clock()
        with self.site.database.session() as session:
            needed = guard.challenge_needed(
                self.guard, ip, ips_since(session, CONFIRM_MAIL, now - IP_WINDOW)
            )
        return {
            "stamp": fresh_stamp or guard.make_stamp(self.guard, now),
            "challenge": guard.new_challenge(self.guard, now) if needed else None,
        }

    async def post(self, request: Request) -> Response:
        form = await small_form(request)
        fields = {
            key: str(form.get(key) or "")
            for key in ("email", "name", "locale", HONEYPOT, "stamp", "altcha", "return_to")
        }
        categories = [str(c)[:100] for c in form.getlist("category")][:50]
        ip, agent = client_ip(request), user_agent(request)
        as_json = wants_json(request)
        cors = self.cors(request)

        def apply() -> Response:
            locale = self.site.locale(request)
            chosen = supported(fields["locale"], locale)
            back = self.return_url(fields["return_to"])
            if fields[HONEYPOT].strip():
                log.info("sign-up from %s caught by the honeypot; nothing sent", ip)
                return self._sent(request, locale, back, as_json, cors)
            try:
                address = normalise_email(fields["email"][:320])
            except InvalidAddress:
                return self._invalid(request, locale, fields, chosen, as_json, cors, "email")
            if guard.domain_refused(self.guard, address):
                return self._invalid(request, locale, fields, chosen, as_json, cors, "domain")
            now = self.site.clock()
            state = guard.check_stamp(self.guard, fields["stamp"], now)
            with self.site.database.session() as session:
                needed = guard.challenge_needed(
                    self.guard, ip, ips_since(session, CONFIRM_MAIL, now - IP_WINDOW)
                )
                offered = recent_categories(session)
                solved = not needed
                if needed and state == "ok":  # spent only by a post that goes on
                    found = guard.solution(self.guard, fields["altcha"], now)
                    solved = found is not None and challenges.spend(
                        session, found.key, found.expires_at, now
                    )
            if state != "ok" or not solved:
                # a young stamp is kept: the reader's next click passes
                stamp = fields["stamp"] if state == "young" else None
                values = self._guarded_values(ip, fresh_stamp=stamp)
                if needed and values["challenge"] is None:
                    values["challenge"] = guard.new_challenge(self.guard, now)
                return self._one_click(
                    request, locale, fields, chosen, categories, values, as_json, cors
                )
            wanted = [c for c in categories if c in offered] or None
            mail = self._request(address, clean_name(fields["name"]), chosen, ip, agent, wanted)
            response = self._sent(request, locale, back, as_json, cors)
            if mail is not None:  # built and sent after the answer: its time tells nothing
                response.background = BackgroundTask(self._deliver, mail)
            return response

        return await run_in_threadpool(apply)

    def _invalid(
        self,
        request: Request,
        locale: str,
        fields: dict[str, str],
        chosen: str,
        as_json: bool,
        cors: dict[str, str],
        error: str,
    ) -> Response:
        if as_json:
            return JSONResponse({"status": "invalid", "error": error}, 400, headers=cors)
        values = {"error": error, **self._guarded_values(client_ip(request), None)}
        entered = {"email": fields["email"][:320], "name": fields["name"][:200], "chosen": chosen}
        return self._form(request, locale, entered, values, status=400)

    def _form(
        self,
        request: Request,
        locale: str,
        entered: dict[str, str],
        guarded: dict[str, Any],
        status: int = 200,
    ) -> Response:
        with self.site.database.session() as session:
            offered = sorted(recent_categories(session))
        values = {
            "email": entered["email"],
            "name": entered["name"],
            "chosen_locale": entered["chosen"],
            "error": guarded.get("error"),
            "honeypot": HONEYPOT,
            "action": with_locale("/subscribe", request),
            "categories": offered,
            **self._common(guarded),
        }
        return self._page(request, locale, "subscribe", values, status)

    def _one_click(
        self,
        request: Request,
        locale: str,
        fields: dict[str, str],
        chosen: str,
        categories: list[str],
        guarded: dict[str, Any],
        as_json: bool,
        cors: dict[str, str],
    ) -> Response:
        """The page a stamp-less (or too quick, or unsolved) post lands on: the same fields,
        a fresh stamp, the challenge when needed, and one button. Nobody is created yet."""
        if as_json:
            body = {
                "status": "confirm",
                "stamp": guarded["stamp"],
                "challenge": guarded["challenge"],
            }
            return JSONResponse(body, 202, headers=cors)
        values = {
            "email": fields["email"][:320],
            "masked": mask(fields["email"][:320]),
            "name": fields["name"][:200],
            "chosen_locale": chosen,
            "chosen_categories": categories,
            "return_to": fields["return_to"][:2000] if self.return_url(fields["return_to"]) else "",
            "action": with_locale("/subscribe", request),
            **self._common(guarded),
        }
        return self._page(request, locale, "subscribe_confirm", values, 200)

    def _common(self, guarded: dict[str, Any]) -> dict[str, Any]:
        config = self.site.config
        challenge = guarded.get("challenge")
        return {
            "stamp": guarded["stamp"],
            "challenge_json": json.dumps(challenge) if challenge else None,
            "widget_src": WIDGET,
            "privacy_url": config.web.privacy_url,
            "personal_tracking": config.tracking.clicks == "personal",
        }

    def _page(
        self, request: Request, locale: str, name: str, values: dict[str, Any], status: int
    ) -> Response:
        response = self.site.render(request, locale, name, values, status)
        response.headers["Content-Security-Policy"] = self.policy()
        return response

    def policy(self) -> str:
        """The sign-up pages' CSP: the vendored widget from our origin (its workers are blob:
        and data: URLs), and forms that may end on the blog (a 303 to a listed origin)."""
        back = " ".join(sorted(self.origins))
        return (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            "script-src 'self'; worker-src 'self' blob: data:; connect-src 'self'; "
            f"base-uri 'none'; form-action 'self' {back}".rstrip()
            + "; frame-ancestors 'none'"
        )

    def _sent(
        self,
        request: Request,
        locale: str,
        back: str | None,
        as_json: bool,
        cors: dict[str, str],
    ) -> Response:
        """The one answer to every well-formed sign-up, whatever happened."""
        if as_json:
            return JSONResponse({"status": "check-inbox"}, headers=cors)
        if back is not None:
            return RedirectResponse(back, status_code=303, headers={"Cache-Control": "no-store"})
        return self.site.render(request, locale, "check_inbox", {})

    def _request(
        self,
        address: str,
        name: str,
        locale: str,
        ip: str | None,
        agent: str | None,
        categories: list[str] | None,
    ) -> Confirmation | None:
        """Record the confirmation mail to send, or None when none may go out."""
        for attempt in (1, 2):
            try:
                with self.site.database.session() as session:
                    return request(
                        session,
                        address,
                        name=name,
                        locale=locale,
                        ip=ip,
                        agent=agent,
                        now=self.site.clock(),
                        settings=signup_settings(self.site.config),
                        categories=categories,
                    )
            except IntegrityError:  # the same address signed up twice at once (PostgreSQL)
                if attempt == 2:
                    raise
        return None  # pragma: no cover - the loop returns or raises

    def _deliver(self, mail: Confirmation) -> None:
        deliver_confirmation(self.site, self.mailer, mail)

    # -- the link in the mail -------------------------------------------------------------------

    def show(self, request: Request) -> Response:
        data = self.site.token("confirm", request.path_params["token"])
        with self.site.database.session() as session:
            person = self.site.subscriber(session, data)
            return self._confirm_page(request, person, just_now=False)

    async def confirm(self, request: Request) -> Response:
        data = self.site.token("confirm", request.path_params["token"])
        ip, agent = client_ip(request), user_agent(request)
        welcome = self.site.config.welcome

        def apply() -> tuple[Response, bool]:
            now = self.site.clock()
            with self.site.database.session() as session:
                person = self.site.subscriber(session, data)
                changed = confirm(
                    session, person, method="web", source="web", ip=ip, agent=agent, now=now
                )
                queued = changed and welcome and welcomes.queue(session, person.id, now)
                return self._confirm_page(request, person, just_now=changed), queued

        response, queued = await run_in_threadpool(apply)
        if queued:  # sent after the answer, as the confirmation mail is; retried if it fails
            response.background = BackgroundTask(send_welcomes, self.site, self.mailer)
        return response

    def _confirm_page(self, request: Request, person: Subscriber, *, just_now: bool) -> Response:
        done = person.status == Status.ACTIVE
        values = {
            "masked": mask(person.email),
            "done": done,
            "just_now": just_now,
            "action": with_locale(request.url.path, request),
            "preferences_href": (
                "/p/" + make_token(self.site.keys, "preferences", person.id, None, person.token_key)
                if done
                else None
            ),
        }
        return self.site.render(
            request, self.site.locale(request, person.locale), "confirm", values
        )
