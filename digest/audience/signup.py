"""Double opt-in, for the sign-up form and the HTTP API alike: when a confirmation mail may go
out, recording it, and the confirmation itself.

A confirmation mail is recorded as a `confirm-mail` event (with the IP address it was asked
from) before it is sent, and the limits count those events: at most `per_address` to one
address in ADDRESS_WINDOW, and at most `per_ip` asked from one IP address in IP_WINDOW, so
neither the form nor the API can be used to bomb an inbox. The mail itself is built and sent
by the caller (digest.delivery.mailer) once its answer has gone out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from digest.audience.addresses import mask
from digest.audience.settings import SignupSettings
from digest.store.events import append, count_since, earliest_since
from digest.store.subscribers import Method, consented_again, find, record
from digest.store.tables import Status, Subscriber

log = logging.getLogger("digest.audience")

CONFIRM_MAIL = "confirm-mail"
ADDRESS_WINDOW = timedelta(hours=24)
IP_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A confirmation mail to build (the link binds `subscriber_id` and `binding`) and send."""

    subscriber_id: int
    binding: str | None
    email: str
    name: str
    locale: str
    now: datetime


def ip_wait(
    session: Session, ip: str | None, now: datetime, settings: SignupSettings
) -> timedelta | None:
    """None when `ip` may ask for another confirmation mail now; else how long until it may."""
    if ip is None:
        return None
    since = now - IP_WINDOW
    if count_since(session, CONFIRM_MAIL, since, ip=ip) < settings.per_ip:
        return None
    first = earliest_since(session, CONFIRM_MAIL, since, ip=ip) or now
    return max(first + IP_WINDOW - now, timedelta(seconds=1))


def address_full(
    session: Session, subscriber_id: int, now: datetime, settings: SignupSettings
) -> bool:
    """True when this address had its `per_address` confirmation mails in the window."""
    sent = count_since(session, CONFIRM_MAIL, now - ADDRESS_WINDOW, subscriber_id=subscriber_id)
    return sent >= settings.per_address


def record_mail(
    session: Session,
    person: Subscriber,
    *,
    locale: str,
    method: Method,
    ip: str | None,
    agent: str | None,
    now: datetime,
    actor: str | None = None,
) -> Confirmation:
    """Record the confirmation mail about to go to `person`, and what it needs."""
    append(
        session,
        CONFIRM_MAIL,
        method,
        subscriber_id=person.id,
        actor=actor,
        ip=ip,
        user_agent=agent,
        created_at=now,
    )
    return Confirmation(person.id, person.token_key, person.email, person.name, locale, now)


def request(
    session: Session,
    address: str,
    *,
    name: str,
    locale: str,
    ip: str | None,
    agent: str | None,
    now: datetime,
    settings: SignupSettings,
    categories: list[str] | None = None,
) -> Confirmation | None:
    """The sign-up form: a pending row for a new address (or the same row again), and the
    confirmation mail to send, or None when none may go out (already active, a limit).

    Someone who unsubscribed, bounced or complained gets a mail too: only they can confirm it,
    and their confirmation is fresh consent. So does an erased address (the tombstone is no
    one): confirming makes a new row.
    """
    if ip_wait(session, ip, now, settings) is not None:
        log.info("sign-up from %s: the per-IP limit is reached; nothing sent", ip)
        return None
    person = find(session, address)
    if person is None:
        person = Subscriber(
            email=address,
            name=name,
            status=Status.PENDING,
            locale=locale,
            categories=categories or None,
            created_at=now,
        )
        session.add(person)
        session.flush()
    elif person.status == Status.ACTIVE:
        return None  # already subscribed: nothing to confirm, and nothing is revealed
    elif person.status == Status.PENDING:
        person.name = name or person.name
        person.locale = locale
        person.categories = categories or None
    if address_full(session, person.id, now, settings):
        log.info("sign-up for %s: the per-address limit is reached", mask(address))
        return None
    return record_mail(session, person, locale=locale, method="web", ip=ip, agent=agent, now=now)


def confirm(
    session: Session,
    person: Subscriber,
    *,
    method: Method,
    source: str,
    ip: str | None,
    agent: str | None,
    now: datetime,
    actor: str | None = None,
) -> bool:
    """Make `person` active with fresh consent (time, IP, user agent, source); False when they
    already were. An erased address's kept hash goes: they chose to come back."""
    if person.status == Status.ACTIVE:
        return False
    person.status = Status.ACTIVE
    person.paused = False
    person.unsubscribed_at = None
    person.consent_at = now
    person.consent_ip = ip
    person.consent_user_agent = (agent or "")[:500] or None
    person.consent_source = source[:40]
    consented_again(session, person.email)
    record(session, person, "confirm", method, ip=ip, user_agent=agent, actor=actor)
    return True
