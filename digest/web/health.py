"""`/healthz` and `/readyz` of `digest serve`, for systemd, a container orchestrator or a
load balancer: unauthenticated, cheap, and telling nothing but yes or no.

- `/healthz`: the process answers (200 `ok`). No database access: a slow database must not
  get a live process restarted.
- `/readyz`: the database answers and is at the newest migration (200 `ready`, else 503 and
  one line why): a process that cannot serve sign-ups and unsubscribes should get no traffic.
  One read of the `alembic_version` row, no more.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest.store.database import Database, current_revision, head_revision

HEADERS = {"Cache-Control": "no-store"}


def health_routes(database: Database) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok", headers=HEADERS)

    def readyz(request: Request) -> Response:
        try:
            current = current_revision(database)
        except SQLAlchemyError:
            return PlainTextResponse("database unreachable", 503, headers=HEADERS)
        if current != head_revision():
            return PlainTextResponse("database migrations pending", 503, headers=HEADERS)
        return PlainTextResponse("ready", headers=HEADERS)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
    ]
