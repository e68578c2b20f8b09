"""`/subscribe` and `/confirm/TOKEN`: sign-up by double opt-in.

The form creates (or reuses) a `pending` subscriber and mails a signed confirmation link; only
the POST behind that link's button activates the address and stores the consent (time, IP, user
agent, source "web"). A GET of the link changes nothing: mail scanners follow links.

Sign-up never tells whether an address is known: every well-formed request gets the same "check
your inbox" page, whether a mail went out or not (already active, rate limited, honeypot), and
the mail itself is sent after the response, so the time taken tells nothing either. Against
inbox bombing, confirmation mails are limited per address per day and per IP per hour, counted
from the `confirm-mail` events that record each one.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.audience.addresses import InvalidAddress, clean_name, mask, normalise_email
from digest.audience.signup import Confirmation, confirm, request
from digest.delivery.mailer import Mailer
from digest.render.i18n import supported
from digest.store.tables import Status, Subscriber
from digest.tokens import make_token
from digest.web.confirmations import deliver_confirmation, signup_settings
from digest.web.site import Site, client_ip, small_form, user_agent, with_locale

log = logging.getLogger("digest.web")

HONEYPOT = "website"  # a field people never see (hidden by CSS); bots fill it in


class Signup:
    def __init__(self, site: Site, mailer: Mailer) -> None:
        self.site = site
        self.mailer = mailer

    # -- the form -------------------------------------------------------------------------------

    def form(self, request: Request) -> Response:
        locale = self.site.locale(request)
        return self._form(request, locale, email="", name="", chosen=locale, error=False)

    async def post(self, request: Request) -> Response:
        form = await small_form(request)
        fields = {key: str(form.get(key) or "") for key in ("email", "name", "locale", HONEYPOT)}
        ip, agent = client_ip(request), user_agent(request)

        def apply() -> Response:
            locale = self.site.locale(request)
            chosen = supported(fields["locale"], locale)
            if fields[HONEYPOT].strip():
                log.info("sign-up from %s caught by the honeypot; nothing sent", ip)
                return self._sent(request, locale)
            try:
                address = normalise_email(fields["email"][:320])
            except InvalidAddress:
                return self._form(
                    request,
                    locale,
                    email=fields["email"][:320],
                    name=fields["name"][:200],
                    chosen=chosen,
                    error=True,
                )
            mail = self._request(address, clean_name(fields["name"]), chosen, ip, agent)
            response = self._sent(request, locale)
            if mail is not None:  # built and sent after the answer: its time tells nothing
                response.background = BackgroundTask(self._deliver, mail)
            return response

        return await run_in_threadpool(apply)

    def _form(
        self, request: Request, locale: str, *, email: str, name: str, chosen: str, error: bool
    ) -> Response:
        values = {
            "email": email,
            "name": name,
            "chosen_locale": chosen,
            "error": error,
            "honeypot": HONEYPOT,
            "action": with_locale("/subscribe", request),
        }
        return self.site.render(request, locale, "subscribe", values, 400 if error else 200)

    def _sent(self, request: Request, locale: str) -> Response:
        """The one answer to every well-formed sign-up, whatever happened."""
        return self.site.render(request, locale, "check_inbox", {})

    def _request(
        self, address: str, name: str, locale: str, ip: str | None, agent: str | None
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

        def apply() -> Response:
            with self.site.database.session() as session:
                person = self.site.subscriber(session, data)
                changed = confirm(
                    session,
                    person,
                    method="web",
                    source="web",
                    ip=ip,
                    agent=agent,
                    now=self.site.clock(),
                )
                return self._confirm_page(request, person, just_now=changed)

        return await run_in_threadpool(apply)

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
