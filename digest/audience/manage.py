"""What an administrator does to one subscriber from the desk: add, unsubscribe, erase,
reactivate. The same rules as the command line (digest.store.subscribers and
digest.store.suppressed: nobody who left is re-activated by the operator, an erased address
is never added again); each change is the subscriber's event (method `desk`, the
administrator as actor) and an audit event (who, what, when, from where), in one
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from digest.errors import DigestError
from digest.store import admins
from digest.store import subscribers as people
from digest.store.suppressed import reactivate as restore
from digest.store.tables import Status, Subscriber


@dataclass(frozen=True, slots=True)
class Admin:
    """Who acts, from where, when."""

    name: str
    ip: str | None
    now: datetime


def get(session: Session, subscriber_id: int) -> Subscriber:
    found = session.get(Subscriber, subscriber_id)
    if found is None or found.status == Status.ERASED:
        raise DigestError(f"there is no subscriber {subscriber_id}.")
    return found


def add(
    session: Session, who: Admin, email: str, name: str = "", locale: str | None = None
) -> Subscriber:
    subscriber = people.add(session, email, name=name, locale=locale or None, method="desk")
    _audit(session, who, "subscriber-add", subscriber)
    return subscriber


def unsubscribe(session: Session, who: Admin, subscriber_id: int) -> bool:
    subscriber = get(session, subscriber_id)
    changed = people.unsubscribe(session, subscriber, "desk", ip=who.ip, actor=who.name)
    if changed:
        _audit(session, who, "subscriber-unsubscribe", subscriber)
    return changed


def erase(session: Session, who: Admin, subscriber_id: int) -> None:
    subscriber = get(session, subscriber_id)
    people.erase(session, subscriber, "desk", actor=who.name)
    _audit(session, who, "subscriber-erase", subscriber, detail=None)


def reactivate(session: Session, who: Admin, subscriber_id: int) -> None:
    subscriber = get(session, subscriber_id)
    was = subscriber.status
    if not restore(session, subscriber, method="desk", actor=who.name):
        if was == Status.UNSUBSCRIBED:
            raise DigestError(
                f"{subscriber.email} unsubscribed; only they can subscribe again "
                "(through a preferences link or the sign-up form)."
            )
        raise DigestError(f"{subscriber.email} is {was}, not bounced or complained.")
    _audit(session, who, "subscriber-reactivate", subscriber)


def _audit(
    session: Session,
    who: Admin,
    action: str,
    subscriber: Subscriber,
    detail: str | None = "",
) -> None:
    admins.audit(
        session,
        who.name,
        action,
        now=who.now,
        ip=who.ip,
        subscriber_id=subscriber.id,
        detail=subscriber.email if detail == "" else detail,
    )
