"""`/api/v1/subscribers`: list with filters and a cursor, get one, upsert (PUT), remove
(DELETE). The rules live in digest.audience.upsert and digest.audience.remove; this module
turns requests into their calls and their answers into JSON."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from digest.audience.addresses import InvalidAddress, normalise_email
from digest.audience.remove import NotFound, remove
from digest.audience.signup import Confirmation
from digest.audience.upsert import Caller, Erased, Limited, NotAllowed, Wanted, upsert
from digest.delivery.mailer import Mailer
from digest.errors import UsageError
from digest.store import subscribers as people
from digest.store.suppressed import reasons
from digest.store.tables import Status
from digest.store.tables import Subscriber as Row
from digest.web.api import schemas
from digest.web.api.auth import require
from digest.web.api.errors import ApiError
from digest.web.api.spec import Operation, Query, cursor, limit
from digest.web.confirmations import deliver_confirmation, signup_settings
from digest.web.site import Site, client_ip, user_agent

MAX_BODY = 16 * 1024
STATUSES = tuple(s.value for s in Status if s != Status.ERASED)
EMAIL = {
    "type": "string",
    "format": "email",
    "maxLength": 320,
    "description": "The address (any case).",
}
FILTERS = (
    cursor(
        "after",
        "Only subscribers with an id above this (the previous page's next_after).",
        schemas.ROW_ID,
    ),
    limit(100, 500),
    Query("status", "Only this status.", choices=STATUSES),
    Query("locale", "Only this locale.", choices=("zh", "en")),
    Query("category", "Only those who receive this category (chose it, or chose none)."),
    Query("q", "A piece of the address or the name, matched literally, in any case."),
)
ERASE = Query("erase", "true: erase them instead of unsubscribing.", choices=("true", "false"))


def out(row: Row, reason: schemas.Reason | None) -> schemas.Subscriber:
    return schemas.Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        status=row.status,  # type: ignore[arg-type]  # never erased here
        locale=row.locale,
        categories=list(row.categories or []),
        frequency=row.frequency,
        paused=row.paused,
        created_at=row.created_at,
        consent_at=row.consent_at,
        consent_source=row.consent_source,
        reason=reason,
    )


def described(session: Session, rows: list[Row]) -> list[schemas.Subscriber]:
    """Each subscriber with the reason they receive nothing, when they do not."""
    why = reasons(session, rows)
    return [
        out(row, schemas.Reason(**why[row.id].as_json()) if row.id in why else None) for row in rows
    ]


def answer(model: BaseModel, status: int = 200, **options: Any) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status, **options)


def address_of(request: Request) -> str:
    raw = str(request.path_params["email"])
    try:
        return normalise_email(raw[:320])
    except InvalidAddress as exc:
        raise ApiError(422, f"{raw[:100]!r} is not a valid address: {exc}.") from None


async def json_body(request: Request, model: type[BaseModel]) -> Any:
    """The body validated by `model` (an empty body is `{}`); 413 over MAX_BODY."""
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"the body is larger than {MAX_BODY // 1024} KB.")
        chunks.append(chunk)
    raw = b"".join(chunks).strip() or b"{}"
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(400, "the body is not JSON.") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, f"{where}: {first['msg']}.") from None


class SubscribersApi:
    def __init__(self, site: Site, mailer: Mailer) -> None:
        self.site = site
        self.mailer = mailer

    def operations(self) -> list[Operation]:
        read_errors = {401: ("No valid token.", schemas.Error)}
        one = {"email": EMAIL}
        return [
            Operation(
                "GET",
                "/subscribers",
                self.listing,
                "listSubscribers",
                "Subscribers in id order, filtered, a page at a time.",
                query=FILTERS,
                answers={
                    200: ("A page of subscribers.", schemas.SubscriberPage),
                    **read_errors,
                    422: ("A parameter is not valid.", schemas.Error),
                },
            ),
            Operation(
                "GET",
                "/subscribers/{email}",
                self.get,
                "getSubscriber",
                "One subscriber, with the reason they receive nothing if they do not.",
                path_params=one,
                answers={
                    200: ("The subscriber.", schemas.Subscriber),
                    **read_errors,
                    404: ("No subscriber has this address.", schemas.Error),
                    410: ("The address was erased at the person's request.", schemas.Error),
                    422: ("Not a valid address.", schemas.Error),
                },
            ),
            Operation(
                "PUT",
                "/subscribers/{email}",
                self.put,
                "upsertSubscriber",
                "Add or update a subscriber: 201 added, 200 updated; never a conflict.",
                scope="write",
                description=(
                    "A new address is pending and gets one confirmation mail (double opt-in); "
                    "a pending one gets it again at most once a day. Someone who unsubscribed, "
                    "bounced or complained keeps that status (the answer says why); an erased "
                    "address is 410. The sign-up form's limits per address and per IP apply."
                ),
                path_params=one,
                body=schemas.SubscriberChange,
                answers={
                    200: ("Updated (or unchanged: see note).", schemas.Upserted),
                    201: ("Added.", schemas.Upserted),
                    400: ("The body is not JSON.", schemas.Error),
                    **read_errors,
                    403: ("A read token, or confirmed without --allow-confirmed.", schemas.Error),
                    410: ("The address was erased at the person's request.", schemas.Error),
                    413: ("The body is too large.", schemas.Error),
                    422: ("Not a valid address or body.", schemas.Error),
                    429: ("The sign-up limit of this IP address is reached.", schemas.Error),
                },
                headers={429: {"Retry-After": {"schema": {"type": "integer"}}}},
            ),
            Operation(
                "DELETE",
                "/subscribers/{email}",
                self.delete,
                "removeSubscriber",
                "Unsubscribe a subscriber (method api), or erase them with erase=true.",
                scope="write",
                path_params=one,
                query=(ERASE,),
                answers={
                    200: ("Done (changed says whether anything changed).", schemas.Removed),
                    **read_errors,
                    403: ("A read token.", schemas.Error),
                    404: ("No subscriber has this address.", schemas.Error),
                    410: ("The address was erased already.", schemas.Error),
                    422: ("Not a valid address.", schemas.Error),
                },
            ),
        ]

    async def listing(self, request: Request) -> Response:
        require(request, "read")
        after, count, status, locale, category, search = (q.read(request) for q in FILTERS)

        def read() -> schemas.SubscriberPage:
            with self.site.database.session() as session:
                rows = people.page(
                    session,
                    after=after or 0,
                    limit=count,
                    status=status,
                    locale=locale,
                    category=category,
                    search=search,
                )
                return schemas.SubscriberPage(
                    data=described(session, rows),
                    next_after=rows[-1].id if len(rows) == count else None,
                )

        return answer(await run_in_threadpool(read))

    async def get(self, request: Request) -> Response:
        require(request, "read")
        address = address_of(request)

        def read() -> schemas.Subscriber:
            with self.site.database.session() as session:
                row = people.find(session, address)
                if row is None:
                    if people.was_erased(session, address):
                        raise ApiError(410, f"{address} was erased at their request.")
                    raise ApiError(404, f"{address} is not a subscriber.")
                return described(session, [row])[0]

        return answer(await run_in_threadpool(read))

    async def put(self, request: Request) -> Response:
        grant = require(request, "write")
        address = address_of(request)
        change = await json_body(request, schemas.SubscriberChange)
        wanted = Wanted(
            name=change.name,
            locale=change.locale,
            categories=change.categories,
            frequency=change.frequency,
            confirmed=change.confirmed,
        )
        caller = self._caller(request, grant.name, grant.allow_confirmed)

        def apply() -> tuple[schemas.Upserted, Confirmation | None]:
            for attempt in (1, 2):
                try:
                    return self._upsert(address, wanted, caller)
                except IntegrityError:  # the same address added twice at once (PostgreSQL)
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

        result, mail = await run_in_threadpool(apply)
        task = BackgroundTask(deliver_confirmation, self.site, self.mailer, mail) if mail else None
        return answer(result, 201 if result.created else 200, background=task)

    def _upsert(
        self, address: str, wanted: Wanted, caller: Caller
    ) -> tuple[schemas.Upserted, Confirmation | None]:
        try:
            with self.site.database.session() as session:
                done = upsert(
                    session,
                    address,
                    wanted,
                    caller=caller,
                    now=self.site.clock(),
                    settings=signup_settings(self.site.config),
                )
                session.flush()
                body = schemas.Upserted(
                    subscriber=described(session, [done.subscriber])[0],
                    created=done.created,
                    changes=done.changes,
                    confirmation_sent=done.confirmation is not None,
                    note=done.note,
                )
                return body, done.confirmation
        except (InvalidAddress, UsageError) as exc:
            raise ApiError(422, str(exc)) from None
        except NotAllowed as exc:
            raise ApiError(403, str(exc)) from None
        except Erased as exc:
            raise ApiError(410, str(exc)) from None
        except Limited as exc:
            seconds = str(max(1, int(exc.wait.total_seconds())))
            headers = {"Retry-After": seconds}
            raise ApiError(429, str(exc), code="signup_limited", headers=headers) from None

    async def delete(self, request: Request) -> Response:
        grant = require(request, "write")
        address = address_of(request)
        forget = ERASE.read(request) == "true"
        caller = self._caller(request, grant.name, grant.allow_confirmed)

        def apply() -> schemas.Removed:
            try:
                with self.site.database.session() as session:
                    done = remove(session, address, forget=forget, caller=caller)
                    session.flush()
                    shown = None if done.erased else described(session, [done.subscriber])[0]
                    return schemas.Removed(
                        subscriber=shown, changed=done.changed, erased=done.erased
                    )
            except NotFound as exc:
                raise ApiError(404, str(exc)) from None
            except Erased as exc:
                raise ApiError(410, str(exc)) from None

        return answer(await run_in_threadpool(apply))

    def _caller(self, request: Request, token: str, may_confirm: bool) -> Caller:
        return Caller(
            name=f"token:{token}",
            may_confirm=may_confirm,
            ip=client_ip(request),
            agent=user_agent(request),
        )
