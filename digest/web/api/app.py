"""The API app: the operations of `subscribers`, `issues` and `events`, their OpenAPI
document at `/openapi.json`, bearer tokens in front of all of it (`auth`), JSON errors."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from digest import __version__
from digest.delivery.mailer import Mailer
from digest.web.api.auth import BearerAuth
from digest.web.api.errors import (
    ApiError,
    handle_api_error,
    handle_crash,
    handle_http_exception,
)
from digest.web.api.events import EventsApi
from digest.web.api.issues import IssuesApi
from digest.web.api.limits import TokenLimiter
from digest.web.api.openapi import document
from digest.web.api.spec import Operation
from digest.web.api.subscribers import SubscribersApi
from digest.web.site import Site


def operations(site: Site, mailer: Mailer) -> list[Operation]:
    """Every operation of the API but the document itself."""
    return [
        *SubscribersApi(site, mailer).operations(),
        *IssuesApi(site).operations(),
        *EventsApi(site).operations(),
    ]


def create_api_app(site: Site, mailer: Mailer, *, limiter: TokenLimiter | None = None) -> Starlette:
    """The app `digest serve` mounts at /api/v1; `limiter` replaces the per-token limiter
    (tests give it a clock of their own)."""
    listed = operations(site, mailer)
    served: dict[str, Any] = {}

    async def openapi(request: Request) -> Response:
        if not served:
            served.update(document(listed, title=site.config.site.title, version=__version__))
        return JSONResponse(served)

    own = Operation(
        "GET",
        "/openapi.json",
        openapi,
        "getOpenApi",
        "This document (no token needed).",
        scope="public",
        answers={200: ("The OpenAPI 3.1 document.", None)},
    )
    listed.insert(0, own)
    return Starlette(
        routes=[Route(op.path, op.handler, methods=[op.method]) for op in listed],
        middleware=[
            Middleware(BearerAuth, database=site.database, limiter=limiter or TokenLimiter())
        ],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
            Exception: handle_crash,
        },
    )
