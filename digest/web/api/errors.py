"""Every failure of the API as JSON, `{"error": {"code": ..., "message": ...}}`, with the
status that fits: a client never gets an HTML page or a traceback from `/api/v1/`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("digest.web")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    410: "gone",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    500: "internal",
}


class ApiError(Exception):
    """An answer other than success: status, a stable code, one sentence."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (a path or method the API does not have)."""
    assert isinstance(exc, HTTPException)
    messages = {404: "no such resource.", 405: "this resource does not take that method."}
    message = messages.get(exc.status_code, exc.detail or "the request cannot be answered.")
    return error_response(
        exc.status_code, CODES.get(exc.status_code, "error"), message, exc.headers
    )


def handle_crash(request: Request, exc: Exception) -> Response:
    log.exception("the API failed on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "the server failed; the error is in its log.")
