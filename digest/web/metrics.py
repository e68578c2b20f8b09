"""`/metrics` of `digest serve`: the Prometheus exposition of digest.ops.metrics, answered
only to loopback, to `metrics.allow` and to a request bearing `metrics.token`.

The client address is the one digest.web.hosts settled on: behind a trusted proxy, the
address in its X-Forwarded-For, so a request from the internet relayed by the local HTTPS
proxy is not taken for a loopback one (the proxy must set the header; the README's does).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest.ops.metrics import allowed


def metrics_routes(
    registry: CollectorRegistry, allow: Sequence[str], token: str | None
) -> list[Route]:
    def metrics(request: Request) -> Response:
        client = request.client.host if request.client else None
        if not allowed(client, request.headers.get("authorization"), allow, token):
            return PlainTextResponse(
                "forbidden\n",
                403,
                headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"},
            )
        return Response(
            generate_latest(registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
        )

    return [Route("/metrics", metrics, methods=["GET"])]
