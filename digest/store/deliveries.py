"""The state machine of one delivery row: the guarantees of exactly-once sending live here.

A worker (`host:pid`) *claims* queued rows in a transaction (`claimed`, with an expiry it
renews from a heartbeat), marks a message `in_flight` when its commands are about to be
written (with the previous message's outcome, in one write), and records each outcome after
the server's final reply. So:

- a worker that stops on request records what it sent and puts back what it never began
  (`release`): nothing that may have gone out is ever queued again;
- a worker that dies leaves its `claimed` rows (never begun: back to `queued`) and at most
  one in-flight message per connection (`unknown`: it may have arrived) — `recover` sorts
  them, once the worker is known dead (its process is gone, or its claims expired);
- every write names the worker, so a worker presumed dead that wakes up cannot overwrite
  what its successor recorded.

On PostgreSQL claims lock rows with SKIP LOCKED, so parallel workers never claim the same
row; on SQLite the write transaction (BEGIN IMMEDIATE) serialises them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Boolean,
    Connection,
    Table,
    bindparam,
    delete,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from digest.models import Recipient
from digest.store.database import conflict_insert
from digest.store.lease import expiry_judge, is_running
from digest.store.subscribers import record as record_event
from digest.store.tables import (
    HELD,
    Delivery,
    DeliveryStatus,
    Status,
    Subscriber,
    UTCDateTime,
    Worker,
    utcnow,
)

_table = cast(Table, Delivery.__table__)
_c = _table.c

# what the send path needs of a delivery and its subscriber (a `Recipient`)
RECIPIENT_COLUMNS = (
    Delivery.id,
    Subscriber.id,
    Subscriber.email,
    Subscriber.name,
    Subscriber.locale,
    Subscriber.categories,
    Delivery.attempts,
    Delivery.deferred_since,
    Subscriber.token_key,
)


_STANDING = len(RECIPIENT_COLUMNS)  # where a claim's row has the subscriber's status, paused


def to_recipient(row: Any) -> Recipient:
    """A `Recipient` from a row of RECIPIENT_COLUMNS."""
    delivery_id, subscriber_id, email, name, locale, categories, attempts, since = row[:8]
    return Recipient(
        int(delivery_id),
        int(subscriber_id),
        email,
        name,
        locale,
        tuple(categories) if categories else None,
        int(attempts or 0),
        since,
        row[8],
    )


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one delivery as a worker reports it. `queued` means "never begun, or
    stopped before a retry": back to the queue. `attempts` counts this run's attempts."""

    recipient: Recipient
    status: DeliveryStatus
    attempts: int
    message_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


def _claimable(status: DeliveryStatus, due: bool) -> Any:
    query = (
        select(*RECIPIENT_COLUMNS, Subscriber.status, Subscriber.paused)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.issue_id == bindparam("issue"), Delivery.status == status)
    )
    if due:
        query = query.where(Delivery.next_attempt_at <= bindparam("due", type_=UTCDateTime()))
    return (
        query.order_by(Delivery.id)
        .limit(bindparam("limit"))
        .with_for_update(of=Delivery, skip_locked=True)
    )


# The statements of the send path, built once: a send runs them a few times per group of
# messages, and building them each time cost more than SQLite's own work.
_CLAIMABLE = _claimable(DeliveryStatus.QUEUED, due=False)
_CLAIMABLE_DUE = _claimable(DeliveryStatus.DEFERRED, due=True)
_IDS: BindParameter[Any] = bindparam("b_ids", expanding=True)
_SKIP = (
    update(_table)
    .where(_c.id.in_(_IDS))
    .values(
        status=DeliveryStatus.SKIPPED,
        updated_at=bindparam("b_now"),
        error="the subscriber left before this issue reached them",
    )
)
_CLAIM = (
    update(_table)
    .where(_c.id.in_(_IDS))
    .values(
        status=bindparam("b_status"), worker=bindparam("b_worker"), updated_at=bindparam("b_now")
    )
)
_START = (
    update(_table)
    .where(_c.id.in_(_IDS), _c.worker == bindparam("b_worker"), _c.status == DeliveryStatus.CLAIMED)
    .values(status=DeliveryStatus.IN_FLIGHT, updated_at=bindparam("b_now"))
)
_HOLD = (
    update(_table)
    .where(
        _c.id.in_(_IDS), _c.worker == bindparam("b_worker"), _c.status == DeliveryStatus.IN_FLIGHT
    )
    .values(status=DeliveryStatus.CLAIMED, updated_at=bindparam("b_now"))
)
_OURS = select(_c.id).where(
    _c.id.in_(_IDS), _c.worker == bindparam("b_worker"), _c.status == DeliveryStatus.IN_FLIGHT
)
_RELEASE = (
    update(_table)
    .where(_c.id.in_(_IDS), _c.worker == bindparam("b_worker"), _c.status.in_(HELD))
    .values(
        status=DeliveryStatus.QUEUED,
        worker=None,
        updated_at=bindparam("b_now"),
    )
)
_RECORD = (
    update(_table)
    .where(
        _c.id == bindparam("b_id"),
        _c.worker == bindparam("b_worker"),
        # "not begun, queue it again" holds only for a row still held: one a successor found
        # in flight and marked unknown stays unknown (its issue may be finished: queued there,
        # nobody would ever send it), while a sent, failed or bounced outcome is truer and kept
        # (no IN: an executemany cannot expand one)
        or_(not_(bindparam("b_requeue", type_=Boolean)), *(_c.status == held for held in HELD)),
    )
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        message_id=bindparam("b_message_id"),
        error=bindparam("b_error"),
        updated_at=bindparam("b_now"),
        sent_at=bindparam("b_sent_at"),
        worker=bindparam("b_new_worker"),
        next_attempt_at=bindparam("b_next"),
        deferred_since=bindparam("b_since"),
    )
)
_workers = cast(Table, Worker.__table__)
_RENEW = (
    update(_workers)
    .where(_workers.c.name == bindparam("b_name"))
    .values(expires_at=bindparam("b_expires"))
)


def claim(
    connection: Connection,
    issue_id: int,
    worker: str,
    limit: int,
    *,
    due: datetime | None = None,
) -> list[Recipient]:
    """Claim up to `limit` queued rows (with `due`: deferred rows due by then) in id order for
    `worker`, none in flight yet (`start` does that once a connection is open). Rows of
    subscribers who left meanwhile become `skipped` instead."""
    query, params = _CLAIMABLE, dict[str, Any](issue=issue_id, limit=limit)
    if due is not None:
        query, params = _CLAIMABLE_DUE, {**params, "due": due}
    claimed: list[Recipient] = []
    gone: list[int] = []
    for row in connection.execute(query, params):
        if row[_STANDING] != Status.ACTIVE or row[_STANDING + 1]:
            gone.append(row[0])
        else:
            claimed.append(to_recipient(row))
    now = utcnow()
    if gone:
        connection.execute(_SKIP, {"b_ids": gone, "b_now": now})
    if claimed:
        ids = [r.delivery_id for r in claimed]
        values = {"b_status": DeliveryStatus.CLAIMED, "b_worker": worker, "b_now": now}
        connection.execute(_CLAIM, {"b_ids": ids, **values})
    return claimed


def start(connection: Connection, recipients: Sequence[Recipient], worker: str) -> set[int]:
    """Mark messages `in_flight` before their MAIL FROM; returns the ids still ours (a worker
    presumed dead may have lost some to recovery: it must not send those). Made again after
    a commit that went unanswered, it returns the same ids (they are in flight already)."""
    if not recipients:
        return set()
    ids = [r.delivery_id for r in recipients]
    result = connection.execute(_START, {"b_ids": ids, "b_worker": worker, "b_now": utcnow()})
    if _count(result) == len(ids):
        return set(ids)
    return set(connection.execute(_OURS, {"b_ids": ids, "b_worker": worker}).scalars())


def hold(connection: Connection, recipients: Sequence[Recipient], worker: str) -> None:
    """A group in flight that has not reached the server yet goes back to `claimed` while its
    worker waits (a retry's backoff, a reconnection): a worker killed while waiting leaves
    them to the queue, not to `unknown`."""
    ids = [r.delivery_id for r in recipients]
    if ids:
        connection.execute(_HOLD, {"b_ids": ids, "b_worker": worker, "b_now": utcnow()})


def record(connection: Connection, issue_id: int, worker: str, results: Iterable[Result]) -> None:
    """Write outcomes in one statement; a 5.1.x bounce also suppresses the subscriber."""
    now = utcnow()
    rows = []
    bounced = []
    for result in results:
        recipient = result.recipient
        deferred = result.status == DeliveryStatus.DEFERRED
        queued = result.status == DeliveryStatus.QUEUED
        failed = result.status == DeliveryStatus.FAILED
        rows.append(
            {
                "b_id": recipient.delivery_id,
                "b_worker": worker,
                "b_status": result.status.value,
                "b_attempts": recipient.attempts + result.attempts,
                "b_message_id": result.message_id,
                "b_error": result.error,
                "b_now": now,
                "b_sent_at": now if result.status == DeliveryStatus.SENT else None,
                "b_new_worker": None if queued else worker,
                "b_requeue": queued,
                "b_next": result.next_attempt_at if deferred else None,
                # a failure after deferral keeps since when: it counts as a soft bounce
                "b_since": (recipient.deferred_since or now)
                if deferred
                else (recipient.deferred_since if failed else None),
            }
        )
        if result.status == DeliveryStatus.BOUNCED:
            bounced.append(result)
    if rows:  # one row: a plain execute (an executemany of one costs a pipeline on psycopg)
        connection.execute(_RECORD, rows if len(rows) > 1 else rows[0])
    if bounced:
        with Session(bind=connection) as session:
            for result in bounced:
                subscriber = session.get(Subscriber, result.recipient.subscriber_id)
                if subscriber is not None and subscriber.status == Status.ACTIVE:
                    subscriber.status = Status.BOUNCED
                    record_event(
                        session,
                        subscriber,
                        "bounce",
                        "smtp",
                        issue_id=issue_id,
                        detail=result.error,
                        delivery_id=result.recipient.delivery_id,
                    )
            session.flush()


def unrecorded(connection: Connection, worker: str, results: Sequence[Result]) -> list[Result]:
    """The outcomes among `results` that the database does not hold yet: their row is still
    `worker`'s and still held (claimed or in flight), or was made `unknown` by a successor (a
    real outcome, not a "queue it again", replaces that). A journal replays only these, so a
    replay counts what it truly added and never rewrites an outcome already recorded."""
    ids = list({r.recipient.delivery_id for r in results})
    if not ids:
        return []
    statuses = dict(
        connection.execute(
            select(_c.id, _c.status).where(
                _c.id.in_(ids),
                _c.worker == worker,
                _c.status.in_((*HELD, DeliveryStatus.UNKNOWN)),
            )
        ).all()
    )
    return [
        r
        for r in results
        if (status := statuses.get(r.recipient.delivery_id)) in HELD
        or (status == DeliveryStatus.UNKNOWN and r.status != DeliveryStatus.QUEUED)
    ]


def changes(
    connection: Connection, ids: Sequence[int]
) -> dict[int, tuple[DeliveryStatus, datetime]]:
    """Each of these rows' status and when it last changed (a claim, a start, an outcome, a
    recovery)."""
    rows = connection.execute(select(_c.id, _c.status, _c.updated_at).where(_c.id.in_(ids)))
    return {int(row_id): (DeliveryStatus(status), moment) for row_id, status, moment in rows}


def release(connection: Connection, recipients: Iterable[Recipient], worker: str) -> None:
    """Rows this worker claimed but never began go back to the queue (a stop, a pause)."""
    ids = [r.delivery_id for r in recipients]
    if ids:
        connection.execute(_RELEASE, {"b_ids": ids, "b_worker": worker, "b_now": utcnow()})


def release_claimed(connection: Connection, issue_id: int, worker: str) -> None:
    """Every row of the issue still only claimed by `worker` back to the queue: for a worker
    that ended (nothing of it can be on the wire), whose claim may have committed unanswered
    (the connection lost with the commit) and been made again."""
    connection.execute(
        update(_table)
        .where(
            _c.issue_id == issue_id,
            _c.worker == worker,
            _c.status == DeliveryStatus.CLAIMED,
        )
        .values(status=DeliveryStatus.QUEUED, worker=None, updated_at=utcnow())
    )


def register(connection: Connection, worker: str, expires: datetime) -> None:
    """A worker begins: its claims stay its own until `expires` (renewed by `renew`).

    One statement (an upsert), not "update, else insert": a worker's connections claim from
    threads of their own, and when their first claims waited out a database restart together
    they register at the same moment; two inserts of one name would stop the worker with a
    unique violation. Made again after a commit that went unanswered, it only renews."""
    statement = conflict_insert(connection, _workers).values(
        name=worker, started_at=utcnow(), expires_at=expires
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[_workers.c.name],
            set_={"expires_at": statement.excluded.expires_at},
        )
    )


def renew(connection: Connection, worker: str, expires: datetime) -> bool:
    """The worker's heartbeat; False once its registration is gone (it was presumed dead)."""
    return bool(_count(connection.execute(_RENEW, {"b_name": worker, "b_expires": expires})))


def unregister(connection: Connection, worker: str) -> None:
    """A worker that ended holds nothing any more."""
    connection.execute(delete(_workers).where(_workers.c.name == worker))


def holders(session: Session, issue_id: int) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Worker -> (its expiry, when it started) (None: not registered), for the workers
    holding rows of this issue (claimed or in flight)."""
    held = (
        select(Delivery.worker)
        .where(Delivery.issue_id == issue_id, Delivery.status.in_(HELD))
        .distinct()
        .subquery()
    )
    rows = session.execute(
        select(held.c.worker, Worker.expires_at, Worker.started_at).outerjoin(
            Worker, Worker.name == held.c.worker
        )
    )
    return {str(worker): (expires, started) for worker, expires, started in rows}


def dead_workers(session: Session, issue_id: int, ttl: float | None = None) -> list[str]:
    """Workers holding rows of this issue that are known dead: their claims expired (the
    heartbeat stopped), or their process of this host is gone. With `ttl` (the claims' lease
    timeout) an expiry counts from the database's return from an outage
    (lease.expiry_judge): a worker that waited it out gets the time to renew."""
    now = utcnow()

    def expired(expires: datetime, started: datetime | None) -> bool:
        return expires <= now

    passed: Callable[[datetime, datetime | None], bool] = (
        expired if ttl is None else expiry_judge(session, timedelta(seconds=ttl))
    )
    return [
        worker
        for worker, (expires, started) in holders(session, issue_id).items()
        if expires is None or passed(expires, started) or not is_running(worker)
    ]


def held_rows(
    session: Session, issue_id: int, workers: Sequence[str]
) -> list[tuple[int, str, DeliveryStatus]]:
    """The rows these workers hold (claimed or in flight), as (id, worker, status): what
    `recover` would move."""
    if not workers:
        return []
    result = session.execute(
        select(Delivery.id, Delivery.worker, Delivery.status).where(
            Delivery.issue_id == issue_id,
            Delivery.worker.in_(workers),
            Delivery.status.in_(HELD),
        )
    )
    return [(int(id_), str(worker), DeliveryStatus(status)) for id_, worker, status in result]


def recover(session: Session, issue_id: int, workers: Sequence[str]) -> tuple[int, int]:
    """The rows of workers known dead: claimed -> queued, in flight -> unknown; the workers
    are struck off."""
    if not workers:
        return 0, 0
    now = utcnow()
    theirs = (Delivery.issue_id == issue_id, Delivery.worker.in_(workers))
    requeued = session.execute(
        update(Delivery)
        .where(*theirs, Delivery.status == DeliveryStatus.CLAIMED)
        .values(status=DeliveryStatus.QUEUED, worker=None, updated_at=now)
    )
    unknown = session.execute(
        update(Delivery)
        .where(*theirs, Delivery.status == DeliveryStatus.IN_FLIGHT)
        .values(
            status=DeliveryStatus.UNKNOWN,
            updated_at=now,
            error="in flight when its sender stopped unexpectedly; it may have arrived",
        )
    )
    # a worker presumed dead that wakes up finds itself unregistered, and stops
    session.execute(delete(Worker).where(Worker.name.in_(workers)))
    return _count(requeued), _count(unknown)


def requeue(session: Session, issue_id: int, status: DeliveryStatus) -> int:
    """Every `status` row of the issue back to the queue (failed ones of an issue that
    delivered nothing; unknown ones when the operator asks)."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.issue_id == issue_id, Delivery.status == status)
        .values(
            status=DeliveryStatus.QUEUED,
            worker=None,
            next_attempt_at=None,
            deferred_since=None,
            updated_at=utcnow(),
        )
    )
    return _count(result)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
