"""`digest serve`: the public web app — unsubscribe, preferences, sign-up and the archive.

Routes:
  GET/POST /u/TOKEN        unsubscribe page / one-click unsubscribe (RFC 8058)
  GET/POST /p/TOKEN        a subscriber's preferences
  GET/POST /subscribe      sign-up form (double opt-in); GET / shows it too
  GET/POST /confirm/TOKEN  the confirmation link's page / the confirmation itself
  GET /subscribe/start     a stamp and (when asked) a challenge for the snippet's script
  GET /archive/            past issues, newest first, each post linking to the original
  GET /archive/KEY/        one issue as sent, without anyone's personal links
  GET /archive/feed.xml    Atom feed of finished issues
  GET/HEAD /c/TOKEN        a followed link, counted and redirected (`tracking.clicks` on)
  GET /static/altcha.min.js, /static/signup.js, /favicon.svg
                           the vendored ALTCHA widget; the snippet's script; the favicon
  /api/v1/...              the HTTP API (bearer tokens; digest.web.api), JSON only
  GET /healthz, /readyz    alive; ready (database reachable, migrations current)
  GET /metrics             Prometheus metrics: loopback, `metrics.allow` or the bearer token

No page loads an external asset; the only script is the vendored ALTCHA widget, on the sign-up
pages when a proof of work is asked. Every database access is one unit of work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from typing import Any
from urllib.parse import quote, urlencode

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from digest.config.credentials import keyring, metrics_token
from digest.config.schema import Config
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.delivery.mailer import Mailer, SmtpMailer
from digest.render.i18n import translate
from digest.store import clicks
from digest.store.database import Database
from digest.tokens import InvalidToken, read_click_token
from digest.web.api.app import create_api_app
from digest.web.api.limits import TokenLimiter
from digest.web.archive import DatabaseArchive, IssueArchive, Pagination
from digest.web.clicks import Clicks
from digest.web.feed import Feed
from digest.web.health import health_routes
from digest.web.hooks import Hooks
from digest.web.hosts import proxy_headers
from digest.web.metrics import metrics_routes
from digest.web.pages import email_page
from digest.web.preferences import Preferences
from digest.web.preview import anonymised
from digest.web.signup import Signup
from digest.web.site import BadToken, Site
from digest.web.unsubscribe import Unsubscribe

PAGE_SIZE = 20


class Archive:
    """The public archive: the list of issues and each issue's email, non-personalised."""

    def __init__(self, site: Site, archive: IssueArchive, page_size: int) -> None:
        self.site = site
        self.archive = archive
        self.page_size = page_size

    def index(self, request: Request) -> Response:
        locale = self.site.locale(request)
        pagination = Pagination.requested(request, self.page_size, self.archive.count())
        tz = self.site.config.site.tz

        def href(number: int | None) -> str | None:
            return None if number is None else "/archive/?" + urlencode({"page": number})

        values: dict[str, Any] = {
            "pagination": pagination,
            "issues": [
                {
                    "key": issue.key,
                    "subject": issue.subject,
                    "created": issue.created.astimezone(tz).strftime("%Y-%m-%d"),
                    "href": f"/archive/{quote(issue.key, safe='')}/",
                    "posts": [{"title": t, "url": u} for t, u in issue.posts],
                }
                for issue in self.archive.page(pagination.number, pagination.size)
            ],
            "numbers": [
                None
                if n is None
                else {"number": n, "href": href(n), "current": n == pagination.number}
                for n in pagination.numbers
            ],
            "previous_href": href(pagination.previous),
            "next_href": href(pagination.next),
        }
        return self.site.render(request, locale, "archive", values)

    def issue(self, request: Request) -> Response:
        issue = self.archive.get(request.path_params["key"])
        if issue is None:
            raise HTTPException(404)
        greeting = translate(self.site.config.site.locale, "Hi,")
        page = untracked(anonymised(issue.html, escape(greeting)), self.site, issue.posts)
        head = page.find("<head>")
        if head >= 0:
            links = (
                '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
                '<link rel="alternate" type="application/atom+xml" href="/archive/feed.xml">'
            )
            page = page[: head + 6] + links + page[head + 6 :]
        return email_page(page)


def untracked(html: str, site: Site, posts: tuple[tuple[str, str], ...]) -> str:
    """The archived email with its click links (`/c/TOKEN`) back to the original posts: a
    reader of the archive is not counted as a reader of the mail."""
    prefix = re.escape(site.config.web.base_url + "/c/")

    def original(match: re.Match[str]) -> str:
        try:
            data = read_click_token(site.keys, match.group(1))
        except InvalidToken:
            return match.group(0)
        with site.database.session() as session:
            url = clicks.target(session, data.issue_id, data.link)
        return escape(url) if url else match.group(0)

    return re.sub(prefix + r"([A-Za-z0-9._-]+)", original, html)


STATIC = files("digest.web") / "static"


def _static(name: str, media_type: str, cache: str) -> Callable[[Request], Response]:
    body = (STATIC / name).read_bytes()

    def serve(request: Request) -> Response:
        headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type=media_type, headers=headers)

    return serve


def _error_page(site: Site) -> Callable[[Request, Exception], Response]:
    def handle(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        reason = {400: "bad-request", 404: "not-found", 405: "method"}.get(status, "other")
        if isinstance(exc, BadToken):
            reason = "bad-request"  # the same page for every bad link, and for any bad request
        locale = site.locale(request)
        values = {"reason": reason}
        response = site.render(request, locale, "error", values, status, switch=False)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    return handle


def _registry(config: Config, database: Database) -> CollectorRegistry:
    from digest.ops.metrics import registry

    def next_runs() -> dict[str, datetime]:
        from digest.issues.schedule import next_runs as scheduled

        return scheduled(config, database)

    return registry(database, next_runs)


def create_public_app(
    config: Config,
    database: Database,
    *,
    clock: Callable[[], datetime] | None = None,
    mailer: Mailer | None = None,
    archive: IssueArchive | None = None,
    page_size: int = PAGE_SIZE,
    hooks: Hooks | None = None,
    api_limiter: TokenLimiter | None = None,
    metrics: CollectorRegistry | None = None,
) -> Starlette:
    """The public app. `clock` fixes "now" (rate limits, consent time) and `mailer` replaces
    the configured SMTP server (tests); `archive` defaults to the database's issues; `hooks`
    are the provider webhooks (tests give them a certificate fetcher of their own);
    `api_limiter` the HTTP API's per-token limiter (tests give it a clock); `metrics` the
    registry `/metrics` shows (default: the database's state and the next runs)."""
    site = Site(
        config=config,
        database=database,
        keys=keyring(config),
        clock=clock or (lambda: datetime.now(UTC)),
    )
    unsubscribe = Unsubscribe(site)
    preferences = Preferences(site)
    if mailer is None:
        mailer = SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config))
    signup = Signup(site, mailer)
    issues = Archive(site, archive or DatabaseArchive(database, config), page_size)
    routes = [
        Route("/u/{token}", unsubscribe.show, methods=["GET"]),
        Route("/u/{token}", unsubscribe.post, methods=["POST"]),
        Route("/p/{token}", preferences.show, methods=["GET"]),
        Route("/p/{token}", preferences.post, methods=["POST"]),
        Route("/", signup.form, methods=["GET"]),
        Route("/subscribe", signup.form, methods=["GET"]),
        Route("/subscribe", signup.post, methods=["POST"]),
        Route("/subscribe", signup.preflight, methods=["OPTIONS"]),
        Route("/subscribe/start", signup.start, methods=["GET"]),
        Route("/subscribe/start", signup.preflight, methods=["OPTIONS"]),
        Route("/confirm/{token}", signup.show, methods=["GET"]),
        Route("/confirm/{token}", signup.confirm, methods=["POST"]),
        Route("/archive/", issues.index, methods=["GET"]),
        Route("/archive/feed.xml", Feed(site).atom, methods=["GET"]),
        Route("/archive/{key}/", issues.issue, methods=["GET"]),
        *(
            [Route("/c/{token}", Clicks(site).follow, methods=["GET", "HEAD"])]
            if config.tracking.clicks != "off"
            else []
        ),
        Route(
            "/static/altcha.min.js",
            _static("altcha.min.js", "text/javascript", "public, max-age=86400"),
            methods=["GET"],
        ),
        Route(
            "/static/signup.js",
            _static("signup.js", "text/javascript", "public, max-age=3600"),
            methods=["GET"],
        ),
        Route(
            "/favicon.svg",
            _static("favicon.svg", "image/svg+xml", "public, max-age=86400"),
            methods=["GET"],
        ),
        *(hooks or Hooks(config, database)).routes(),
        Mount("/api/v1", app=create_api_app(site, mailer, limiter=api_limiter)),
        *health_routes(database),
        *metrics_routes(
            metrics or _registry(config, database), config.metrics.allow, metrics_token(config)
        ),
    ]
    handler = _error_page(site)
    return Starlette(
        routes=routes,
        middleware=proxy_headers(config.web.trusted_proxies),
        exception_handlers={HTTPException: handler, 500: handler},
    )
