"""Each operation of the API described once: its route, who may call it, its parameters and
its answers. `app` makes the route table from these, `openapi` the document, so a route
cannot exist undocumented, nor a documented one be missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from digest.web.api.errors import ApiError
from digest.web.api.schemas import BIG

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Query:
    """A query parameter: an integer in [low, high] or a string of at most `high` characters
    (or one of `choices`)."""

    name: str
    description: str
    kind: Literal["integer", "string"] = "string"
    low: int = 0
    high: int = 100
    choices: tuple[str, ...] = ()
    default: int | None = None

    def schema(self) -> dict[str, Any]:
        if self.kind == "integer":
            found: dict[str, Any] = {"type": "integer", "minimum": self.low, "maximum": self.high}
            if self.default is not None:
                found["default"] = self.default
            return found
        if self.choices:
            return {"type": "string", "enum": list(self.choices)}
        return {"type": "string", "maxLength": self.high, "pattern": r"^[^\x00-\x1f\x7f]*$"}

    def read(self, request: Request) -> Any:
        """The parameter's value (None when absent); a 422 naming it when it is not valid."""
        raw = request.query_params.get(self.name)
        if raw is None or raw == "":
            return self.default
        if self.kind == "integer":
            if not (raw.isascii() and raw.isdigit()) or not self.low <= int(raw) <= self.high:
                raise ApiError(
                    422, f"{self.name} must be a whole number from {self.low} to {self.high}."
                )
            return int(raw)
        if self.choices and raw not in self.choices:
            raise ApiError(422, f"{self.name} must be one of {', '.join(self.choices)}.")
        if len(raw) > self.high or any(ord(c) < 32 or ord(c) == 127 for c in raw):
            raise ApiError(
                422, f"{self.name} must be at most {self.high} characters, without controls."
            )
        return raw


def cursor(name: str, description: str, high: int = BIG) -> Query:
    return Query(name, description, "integer", 0, high)


def limit(default: int, high: int) -> Query:
    return Query("limit", "How many at most.", "integer", 1, high, default=default)


@dataclass(frozen=True, slots=True)
class Operation:
    method: Literal["GET", "PUT", "DELETE"]
    path: str  # under /api/v1, Starlette's syntax: /subscribers/{email}
    handler: Handler
    operation_id: str
    summary: str
    scope: Literal["public", "read", "write"] = "read"
    description: str = ""
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> schema
    query: tuple[Query, ...] = ()
    body: type[BaseModel] | None = None
    answers: dict[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    headers: dict[int, dict[str, Any]] = field(default_factory=dict)  # status -> headers
