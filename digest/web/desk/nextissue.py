"""The next issue: its preview (desktop, phone, text; its size against Gmail's clip), the
editor's note, posts left out, a test copy, and "send now" behind a confirmation page, which
starts `digest send` as its own process (digest.issues.launch) and then shows its progress
as the ledger records it."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from digest.config.stages import issue_settings, render_settings
from digest.errors import DigestError
from digest.issues import editorial
from digest.issues.launch import progress
from digest.issues.plan import NothingToSend, Plan, plan_send
from digest.issues.testcopy import send_test_copy
from digest.issues.upcoming import next_edition, next_issue
from digest.models import Rendered
from digest.render.budget import longest_values, outgoing_size
from digest.render.edition import RenderError, items_for, render
from digest.web.desk.guard import form_of, who_of
from digest.web.desk.pages import Desk
from digest.web.desk.starts import audited, start_sender
from digest.web.pages import email_page
from digest.web.preview import anonymised
from digest.web.site import client_ip

GMAIL_CLIP = 102 * 1024
VIEWS = ("desktop", "phone", "text")


class NextIssue:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def _actor(self, request: Request) -> editorial.Actor:
        return editorial.Actor(who_of(request).name, client_ip(request))

    def _draft(self, locale: str, now: datetime) -> dict[str, Any]:
        config, database = self.desk.config, self.desk.database
        issues = issue_settings(config)
        gathered = next_issue(issues, database, now=now)
        edition = next_edition(gathered, issues, now)
        settings = render_settings(config)
        rendered: Rendered | None = None
        error = None
        if gathered.new:
            try:
                rendered = render(settings, edition, locale)
            except (RenderError, DigestError) as exc:
                error = str(exc)
        size = None
        if rendered is not None:
            size = outgoing_size(
                rendered.html, longest_values(settings.web_base_url, rendered.greeting_named)
            )
        shown = {c.post.id for c in gathered.shown(config.digest.max_posts)}
        candidates = [c for c in gathered.candidates if c.status in ("new", "held", "held-always")]
        return {
            "key": edition.key,
            "posts": [
                {
                    "id": c.post.id,
                    "title": c.post.title,
                    "url": c.post.url,
                    "date": c.post.date,
                    "status": c.status,
                    "shown": c.post.id in shown,
                }
                for c in candidates
            ],
            "new": len(gathered.new),
            "note": gathered.note,
            "rendered": rendered,
            "error": error,
            "size": size,
            "text": anonymised(rendered.text, rendered.greeting_anonymous) if rendered else "",
            "failures": gathered.source.failures,
        }

    async def show(self, request: Request) -> Response:
        desk = self.desk
        locale = desk.locale(request)
        email_locale = request.query_params.get("email_locale") or locale
        if email_locale not in ("zh", "en"):
            email_locale = locale
        view = request.query_params.get("view", "desktop")
        if view not in VIEWS:
            view = "desktop"
        draft = await run_in_threadpool(self._draft, email_locale, desk.clock())
        values = {
            **draft,
            "view": view,
            "views": VIEWS,
            "email_locale": email_locale,
            "clip": GMAIL_CLIP,
            "frame": desk.href("/next/email.html", email_locale=email_locale),
        }
        return desk.render(request, "next", values, section="next", title="Next issue")

    def email(self, request: Request) -> Response:
        locale = request.query_params.get("email_locale", "")
        if locale not in ("zh", "en"):
            locale = self.desk.config.site.locale
        draft = self._draft(locale, self.desk.clock())
        rendered = draft["rendered"]
        if rendered is None:
            raise HTTPException(404)
        return email_page(anonymised(rendered.html, html.escape(rendered.greeting_anonymous)))

    def note(self, request: Request) -> Response:
        text = str(form_of(request).get("note", ""))
        try:
            kept = editorial.set_note(
                self.desk.config,
                self.desk.database,
                text,
                self._actor(request),
                now=self.desk.clock(),
            )
        except DigestError as exc:
            return self.desk.back("/next", problem=exc.message)
        return self.desk.back("/next", done="note-set" if kept else "note-cleared")

    def hold(self, request: Request) -> Response:
        form = form_of(request)
        post = str(form.get("post", ""))
        always = form.get("scope") == "always"
        try:
            editorial.hold_post(
                self.desk.config,
                self.desk.database,
                post,
                self._actor(request),
                always=always,
                now=self.desk.clock(),
            )
        except DigestError as exc:
            return self.desk.back("/next", problem=exc.message)
        return self.desk.back("/next", done="held")

    def unhold(self, request: Request) -> Response:
        post = str(form_of(request).get("post", ""))
        try:
            editorial.release_post(
                self.desk.config,
                self.desk.database,
                post,
                self._actor(request),
                now=self.desk.clock(),
            )
        except DigestError as exc:
            return self.desk.back("/next", problem=exc.message)
        return self.desk.back("/next", done="released")

    def test_copy(self, request: Request) -> Response:
        address = str(form_of(request).get("address", ""))[:320]
        desk = self.desk
        try:
            email, key = send_test_copy(desk.config, desk.database, None, address)
        except DigestError as exc:
            return desk.back("/next", problem=exc.message)
        except NothingToSend as exc:
            return desk.back("/next", problem=str(exc))
        audited(desk, request, "test-copy", f"{key} to {email}")
        return desk.back("/next", done="test-sent")

    def confirm(self, request: Request) -> Response:
        desk = self.desk
        try:
            plan: Plan | None = plan_send(desk.config, desk.database, now=desk.clock())
            nothing = None
        except NothingToSend as exc:
            plan, nothing = None, str(exc)
        current = progress(desk.database)
        values: dict[str, Any] = {
            "plan": plan,
            "nothing": nothing,
            "posts": list(
                items_for(
                    list(plan.edition.posts), render_settings(desk.config), desk.locale(request)
                )
            )
            if plan and plan.edition
            else [],
            "holder": current.holder,
        }
        return desk.render(request, "send", values, section="next", title="Send now")

    def send(self, request: Request) -> Response:
        return start_sender(self.desk, request, "send-started", busy_to="/next/progress")

    def progress_page(self, request: Request) -> Response:
        desk = self.desk
        problem = desk.problem(request) or ""
        values = {
            "progress": progress(desk.database),
            "busy": problem[5:] if problem.startswith("busy:") else None,
            "json": desk.href("/next/progress.json"),
        }
        return desk.render(request, "progress", values, section="next", title="Sending")

    def progress_json(self, request: Request) -> Response:
        return JSONResponse(
            progress(self.desk.database).as_json(), headers={"Cache-Control": "no-store"}
        )
