"""`digest preview`: the next digest as it would arrive, and past issues; read-only, local.

Every request reads the sources and renders again, so edits to posts and templates show on
reload. Nothing here is personal: the per-recipient placeholders are replaced by harmless
preview values and the anonymous greeting, never a subscriber's real links.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import TemplateError, TemplateSyntaxError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.config.schema import Config
from digest.config.stages import issue_settings, render_settings
from digest.delivery.personalise import with_sample_values
from digest.issues.upcoming import Gathered, first_wait, next_edition, next_issue
from digest.models import Rendered
from digest.render.edition import RenderError, items_for, render
from digest.render.i18n import translate
from digest.store.database import Database
from digest.web.archive import (
    ArchivedIssue,
    DatabaseArchive,
    IssueArchive,
    MemoryArchive,
    Pagination,
)
from digest.web.pages import email_page, page, page_environment, request_locale

PAGE_SIZE = 10
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
PHONE_WIDTH, DESKTOP_WIDTH = 375, 1024
MIN_WIDTH, MAX_WIDTH = 240, 1920
_WIDTH = re.compile(r"[0-9]{3,4}")


def anonymised(content: str, greeting: str) -> str:
    """`content` with every per-recipient placeholder replaced by a harmless preview value."""
    return with_sample_values(content, greeting)


@dataclass(frozen=True, slots=True)
class Draft:
    """The next digest in one locale, or why there is none."""

    gathered: Gathered
    key: str
    rendered: Rendered | None
    template_error: str | None


class Preview:
    """The app's endpoints over one configuration, one archive and one clock."""

    def __init__(
        self,
        config: Config,
        archive: IssueArchive,
        clock: Callable[[], datetime],
        page_size: int,
        drafts: Callable[[datetime], Gathered],
    ) -> None:
        self.config = config
        self.settings = render_settings(config)
        self.upcoming = issue_settings(config)
        self.archive = archive
        self.clock = clock
        self.page_size = page_size
        self.drafts = drafts

    def draft(self, locale: str, env: Any) -> Draft:
        now = self.clock()
        gathered = self.drafts(now)
        edition = next_edition(gathered, self.upcoming, now)
        rendered, error = None, None
        if gathered.new:
            try:
                rendered = render(self.settings, edition, locale, env=env)
            except (TemplateError, RenderError) as exc:
                error = _describe(exc)
        return Draft(gathered=gathered, key=edition.key, rendered=rendered, template_error=error)

    def index(self, request: Request) -> Response:
        locale = request_locale(request, self.config)
        env = page_environment(self.config, locale)
        draft = self.draft(locale, env)
        new = [c.post for c in draft.gathered.new]
        shown = len(draft.gathered.shown(self.config.digest.max_posts))
        rendered = draft.rendered
        values = {
            "key": draft.key,
            "failures": draft.gathered.source.failures,
            "problems": [str(p) for p in draft.gathered.source.problems],
            "template_error": draft.template_error,
            "posts": [
                {"item": item, "overflow": number > shown}
                for number, item in enumerate(items_for(new, self.settings, locale), start=1)
            ],
            "shown": shown,
            "waiting": first_wait(draft.gathered, self.upcoming),
            "rendered": rendered,
            "text": anonymised(rendered.text, rendered.greeting_anonymous) if rendered else "",
            "size_kb": f"{len(rendered.html.encode()) / 1024:.1f}" if rendered else "",
            "frame": _frame(request, f"/email.html?{urlencode({'locale': locale})}"),
        }
        status = 500 if draft.template_error else 200
        return page(request, env, self.config, locale, "preview", values, status)

    def email(self, request: Request) -> Response:
        locale = request_locale(request, self.config)
        env = page_environment(self.config, locale)
        draft = self.draft(locale, env)
        if draft.rendered is None:
            reason = "template-error" if draft.template_error else "nothing-new"
            values = {"reason": reason, "detail": draft.template_error}
            status = 500 if draft.template_error else 404
            return page(request, env, self.config, locale, "error", values, status)
        greeting = escape(draft.rendered.greeting_anonymous)
        return email_page(anonymised(draft.rendered.html, greeting))

    def issues(self, request: Request) -> Response:
        locale = request_locale(request, self.config)
        pagination = Pagination.requested(request, self.page_size, self.archive.count())
        issues = self.archive.page(pagination.number, pagination.size)
        values = {
            "pagination": pagination,
            "issues": [self._summary(issue) for issue in issues],
            **_page_links(pagination, locale),
        }
        env = page_environment(self.config, locale)
        return page(request, env, self.config, locale, "issues", values)

    def issue(self, request: Request) -> Response:
        locale = request_locale(request, self.config)
        issue = self._issue(request)
        src = f"{_issue_href(issue.key)}/email.html"
        values = {
            "issue": self._summary(issue),
            "text": anonymised(issue.text, self._greeting()),
            "frame": _frame(request, src),
            "back_href": "/issues?" + urlencode({"locale": locale}),
        }
        env = page_environment(self.config, locale)
        return page(request, env, self.config, locale, "issue", values)

    def issue_email(self, request: Request) -> Response:
        issue = self._issue(request)
        return email_page(anonymised(issue.html, escape(self._greeting())))

    def error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        reason = {400: "bad-request", 404: "not-found", 405: "read-only"}.get(status, "other")
        locale = request_locale(request, self.config)
        env = page_environment(self.config, locale)
        values = {"reason": reason, "detail": None}
        response = page(request, env, self.config, locale, "error", values, status)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    def _issue(self, request: Request) -> ArchivedIssue:
        issue = self.archive.get(request.path_params["key"])
        if issue is None:
            raise HTTPException(404)
        return issue

    def _summary(self, issue: ArchivedIssue) -> dict[str, str]:
        created = issue.created.astimezone(self.config.site.tz).strftime("%Y-%m-%d %H:%M")
        return {
            "key": issue.key,
            "subject": issue.subject,
            "created": created,
            "href": _issue_href(issue.key),
        }

    def _greeting(self) -> str:
        return translate(self.config.site.locale, "Hi,")


def _issue_href(key: str) -> str:
    return f"/issues/{quote(key, safe='')}"


def _frame(request: Request, src: str) -> dict[str, Any]:
    """The email frame's source and width, and the links that switch the width."""
    raw = request.query_params.get("width", "")
    width = int(raw) if _WIDTH.fullmatch(raw) else DESKTOP_WIDTH
    width = width if MIN_WIDTH <= width <= MAX_WIDTH else DESKTOP_WIDTH
    links = {
        kind: "?" + urlencode({**request.query_params, "width": value})
        for kind, value in (("desktop", DESKTOP_WIDTH), ("phone", PHONE_WIDTH))
    }
    current = {DESKTOP_WIDTH: "desktop", PHONE_WIDTH: "phone"}.get(width)
    return {"src": src, "width": width, "links": links, "current": current}


def _page_links(pagination: Pagination, locale: str) -> dict[str, Any]:
    """Links to the other pages of the list of issues: numbers, previous and next."""

    def href(number: int | None) -> str | None:
        return (
            None if number is None else "/issues?" + urlencode({"page": number, "locale": locale})
        )

    return {
        "numbers": [
            None if n is None else {"number": n, "href": href(n), "current": n == pagination.number}
            for n in pagination.numbers
        ],
        "previous_href": href(pagination.previous),
        "next_href": href(pagination.next),
    }


def _describe(exc: TemplateError | RenderError) -> str:
    """A template failure as one line: where, then what."""
    if isinstance(exc, RenderError):
        return exc.message
    message = exc.message or type(exc).__name__
    if isinstance(exc, TemplateSyntaxError):
        return f"{exc.filename or exc.name}, line {exc.lineno}: {message}"
    return message


def database_preview(
    config: Config, database: Database, *, allowed_hosts: list[str] | None = None
) -> Starlette:
    """`digest preview`'s app: the next issue as the database says it would be (posts an
    issue already delivered are not new), and the past issues as they were stored."""
    return create_preview_app(
        config,
        DatabaseArchive(database, config),
        allowed_hosts=allowed_hosts,
        drafts=lambda now: next_issue(issue_settings(config), database, now=now, excerpts="new"),
    )


def create_preview_app(
    config: Config,
    archive: IssueArchive | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    page_size: int = PAGE_SIZE,
    allowed_hosts: list[str] | None = None,
    drafts: Callable[[datetime], Gathered] | None = None,
) -> Starlette:
    """The preview web app: GET (and HEAD) only; `clock` fixes "now" for tests; `drafts`
    reads the next issue at a given time (default: the sources alone, nothing sent yet —
    `digest preview` passes one that knows what the database says was sent).

    `allowed_hosts` checks the Host header: a preview bound to loopback answers only to
    loopback names, so a web page cannot reach it through DNS rebinding.
    """
    preview = Preview(
        config,
        archive if archive is not None else MemoryArchive(),
        clock or (lambda: datetime.now(UTC)),
        page_size,
        drafts or (lambda now: next_issue(issue_settings(config), None, now=now, excerpts="new")),
    )
    routes = [
        Route("/", preview.index, methods=["GET"]),
        Route("/email.html", preview.email, methods=["GET"]),
        Route("/issues", preview.issues, methods=["GET"]),
        Route("/issues/{key}", preview.issue, methods=["GET"]),
        Route("/issues/{key}/email.html", preview.issue_email, methods=["GET"]),
    ]
    middleware = (
        [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    )
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: preview.error}
    )
