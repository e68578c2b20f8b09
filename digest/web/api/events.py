"""`/api/v1/events`: the event log as a feed (digest.store.events.feed). A client keeps the
last `id` it saw and asks for `?after=ID`: it gets every event exactly once, in the order
they became visible, however writers interleave."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.store.events import feed
from digest.web.api import schemas
from digest.web.api.auth import require
from digest.web.api.spec import Operation, cursor, limit
from digest.web.api.subscribers import answer
from digest.web.site import Site

PAGE = (cursor("after", "Only events after this id (the last one you saw)."), limit(100, 1000))


class EventsApi:
    def __init__(self, site: Site) -> None:
        self.site = site

    def operations(self) -> list[Operation]:
        return [
            Operation(
                "GET",
                "/events",
                self.listing,
                "listEvents",
                "The event log after an id: subscribers' events and issues' events.",
                description=(
                    "Kinds: subscribe, confirm-mail, confirm, import, preferences, pause, "
                    "resume, unsubscribe, resubscribe, bounce, soft-bounce, complaint, "
                    "reactivate, erase, issue-created, issue-finished."
                ),
                query=PAGE,
                answers={
                    200: ("Events in order; empty when there is nothing new.", schemas.EventPage),
                    401: ("No valid token.", schemas.Error),
                    422: ("A parameter is not valid.", schemas.Error),
                },
            )
        ]

    async def listing(self, request: Request) -> Response:
        require(request, "read")
        after, count = (q.read(request) for q in PAGE)

        def read() -> schemas.EventPage:
            with self.site.database.session() as session:
                events = feed(session, after=after or 0, limit=count)
            return schemas.EventPage(
                data=[
                    schemas.Event(
                        id=e.position,
                        kind=e.kind,
                        method=e.method,
                        created_at=e.created_at,
                        subscriber_id=e.subscriber_id,
                        email=e.email,
                        issue=e.issue,
                        delivery_id=e.delivery_id,
                        actor=e.actor,
                        detail=e.detail,
                    )
                    for e in events
                ],
                next_after=events[-1].position if events else after or 0,
            )

        return answer(await run_in_threadpool(read))
