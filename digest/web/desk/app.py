"""The desk app that `digest serve` mounts at /admin: the route table, the guard in front of
all of it (digest.web.desk.guard), the static files of the package (its stylesheet, its
script and the vendored uPlot: nothing from another site), and error pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from digest.config.schema import Config
from digest.errors import DigestError
from digest.store.database import Database
from digest.web.desk.guard import Door, Guard
from digest.web.desk.issues import IssuesPage
from digest.web.desk.login import Login
from digest.web.desk.nextissue import NextIssue
from digest.web.desk.overview import OverviewPage
from digest.web.desk.pages import Desk
from digest.web.desk.returned import ReturnedPage
from digest.web.desk.settings import SettingsPage
from digest.web.desk.subscribers import SubscribersPage

MOUNT = "/admin"
STATIC = Path(str(resources.files("digest.web.desk").joinpath("static")))
log = logging.getLogger("digest.web.desk")


def routes(desk: Desk) -> list[BaseRoute]:
    login = Login(desk)
    overview = OverviewPage(desk)
    upcoming = NextIssue(desk)
    issues = IssuesPage(desk)
    people = SubscribersPage(desk)
    returned = ReturnedPage(desk)
    settings = SettingsPage(desk)
    return [
        Route("/login", login.form, methods=["GET"]),
        Route("/login", login.post, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/logout-everywhere", login.logout_everywhere, methods=["POST"]),
        Route("/", overview.show, methods=["GET"]),
        Route("/next", upcoming.show, methods=["GET"]),
        Route("/next/email.html", upcoming.email, methods=["GET"]),
        Route("/next/note", upcoming.note, methods=["POST"]),
        Route("/next/hold", upcoming.hold, methods=["POST"]),
        Route("/next/unhold", upcoming.unhold, methods=["POST"]),
        Route("/next/test", upcoming.test_copy, methods=["POST"]),
        Route("/next/send", upcoming.confirm, methods=["GET"]),
        Route("/next/send", upcoming.send, methods=["POST"]),
        Route("/next/progress", upcoming.progress_page, methods=["GET"]),
        Route("/next/progress.json", upcoming.progress_json, methods=["GET"]),
        Route("/issues", issues.index, methods=["GET"]),
        Route("/issues/{key}", issues.show, methods=["GET"]),
        Route("/issues/{key}/resend-unknown", issues.resend_unknown, methods=["POST"]),
        Route("/subscribers", people.index, methods=["GET"]),
        Route("/subscribers/add", people.add, methods=["POST"]),
        Route("/subscribers/import", people.import_form, methods=["GET"]),
        Route("/subscribers/import", people.import_file, methods=["POST"]),
        Route("/subscribers/export.csv", people.export, methods=["GET"]),
        Route("/subscribers/{id:int}", people.show, methods=["GET"]),
        Route("/subscribers/{id:int}/unsubscribe", people.unsubscribe, methods=["POST"]),
        Route("/subscribers/{id:int}/erase", people.erase, methods=["POST"]),
        Route("/subscribers/{id:int}/reactivate", people.reactivate, methods=["POST"]),
        Route("/returned", returned.index, methods=["GET"]),
        Route("/settings", settings.index, methods=["GET"]),
        Route("/settings/totp", settings.totp_start, methods=["POST"]),
        Route("/settings/totp/confirm", settings.totp_confirm, methods=["POST"]),
        Route("/settings/totp/off", settings.totp_off, methods=["POST"]),
        Route("/settings/tokens", settings.token_create, methods=["POST"]),
        Route("/settings/tokens/revoke", settings.token_revoke, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]


def create_desk_app(
    config: Config,
    database: Database,
    *,
    clock: Callable[[], datetime] | None = None,
    mount: str = MOUNT,
) -> Starlette:
    """The desk, to be mounted at `mount`; `clock` fixes "now" (sessions, throttling: tests)."""
    door = Door.of(config.web.base_url)
    if door.refused:
        log.warning("%s", door.refused)
    desk = Desk(
        config=config,
        database=database,
        door=door,
        clock=clock or (lambda: datetime.now(UTC)),
        mount=mount,
    )

    def failed(request: Request, exc: Exception) -> Response:
        if isinstance(exc, DigestError):
            values = {"status": 400, "error_message": exc.message}
            return desk.render(request, "error", values, status=400, title="Error")
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        values = {"status": status, "error_message": None}
        return desk.render(request, "error", values, status=status, title="Error")

    return Starlette(
        routes=routes(desk),
        middleware=[Middleware(Guard, database=database, door=door, clock=desk.clock, mount=mount)],
        exception_handlers={DigestError: failed, HTTPException: failed, 500: failed},
    )
