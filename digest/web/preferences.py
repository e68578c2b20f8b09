"""`/p/TOKEN`: a subscriber's own settings, reached from the link in every email.

Language, categories (none ticked means every post), pause and resume, unsubscribe, and — for
someone who left — subscribing again: the signed link proves it is their own address, so that
is their consent, recorded with method "preferences". Every change is an event carrying the
issue the link came from. One POST form per button, told apart by its `action` field.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from digest.audience.addresses import mask, parse_categories
from digest.render.i18n import LOCALES
from digest.store.ledger import recent_categories
from digest.store.subscribers import record, resubscribe, set_paused, unsubscribe
from digest.store.tables import Status, Subscriber
from digest.tokens import TokenData
from digest.web.site import Site, client_ip, small_form, user_agent, with_locale

ACTIONS = ("save", "pause", "resume", "unsubscribe", "resubscribe")


def _describe(categories: list[str] | None) -> str:
    return ";".join(categories) if categories else "(all)"


class Preferences:
    def __init__(self, site: Site) -> None:
        self.site = site

    def show(self, request: Request) -> Response:
        data = self.site.token("preferences", request.path_params["token"])
        with self.site.database.session() as session:
            person = self.site.subscriber(session, data)
            return self._page(request, session, person, data, notice=None)

    async def post(self, request: Request) -> Response:
        data = self.site.token("preferences", request.path_params["token"])
        form = await small_form(request)
        action = form.get("action")
        if action not in ACTIONS:
            raise HTTPException(400)
        locale = form.get("locale")
        frequency = form.get("frequency")
        chosen = [str(c) for c in form.getlist("category")]
        ip, agent = client_ip(request), user_agent(request)

        def apply() -> Response:
            with self.site.database.session() as session:
                person = self.site.subscriber(session, data)
                issue_id = self.site.issue_id(session, data)
                if action == "save":
                    offered = recent_categories(session) | set(person.categories or [])
                    picked = sorted({c for c in chosen if c in offered}, key=str.casefold)
                    wanted = parse_categories(picked)
                    changes = []
                    if isinstance(locale, str) and locale in LOCALES and locale != person.locale:
                        changes.append(f"locale: {person.locale or '(site)'} -> {locale}")
                        person.locale = locale
                    rhythms = self.site.config.schedule.frequencies
                    current = person.frequency or rhythms[0]
                    if isinstance(frequency, str) and frequency in rhythms and frequency != current:
                        changes.append(f"frequency: {current} -> {frequency}")
                        # the site's own rhythm is stored as "no preference", so it follows
                        # the site if the site changes its rhythm
                        person.frequency = None if frequency == rhythms[0] else frequency
                    if set(wanted or ()) != set(person.categories or ()):
                        changes.append(
                            f"categories: {_describe(person.categories)} -> {_describe(wanted)}"
                        )
                        person.categories = wanted
                    if changes:
                        record(
                            session,
                            person,
                            "preferences",
                            "preferences",
                            issue_id=issue_id,
                            ip=ip,
                            user_agent=agent,
                            detail="; ".join(changes),
                        )
                    changed = bool(changes)
                elif action in ("pause", "resume"):
                    changed = set_paused(
                        session, person, action == "pause", "preferences", issue_id=issue_id
                    )
                elif action == "unsubscribe":
                    changed = unsubscribe(
                        session, person, "preferences", issue_id=issue_id, ip=ip, user_agent=agent
                    )
                else:
                    changed = resubscribe(
                        session, person, "preferences", issue_id=issue_id, ip=ip, user_agent=agent
                    )
                notice = action if changed else "unchanged"
                session.flush()
                return self._page(request, session, person, data, notice=notice)

        return await run_in_threadpool(apply)

    def _page(
        self,
        request: Request,
        session: Session,
        person: Subscriber,
        data: TokenData,
        notice: str | None,
    ) -> Response:
        current = person.categories or []
        offered = sorted(recent_categories(session) | set(current), key=str.casefold)
        values: dict[str, Any] = {
            "masked": mask(person.email),
            "status": person.status,
            "active": person.status == Status.ACTIVE,
            "paused": person.paused,
            "chosen_locale": person.locale or self.site.config.site.locale,
            "frequencies": self.site.config.schedule.frequencies,
            "chosen_frequency": person.frequency or self.site.config.schedule.frequencies[0],
            "categories": [{"name": c, "checked": c in current} for c in offered],
            "notice": notice,
            "action": with_locale(request.url.path, request),
        }
        locale = self.site.locale(request, person.locale)
        return self.site.render(request, locale, "preferences", values)
