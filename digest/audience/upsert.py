"""Add or update one subscriber by address, for the HTTP API (and the desk): never a conflict,
never a way around double opt-in, never bringing back someone who left.

- A new address becomes `pending` and gets one confirmation mail; only a caller allowed to
  vouch for consent (`may_confirm`, an API token made with `--allow-confirmed`) may add it as
  `active`, and that consent is recorded with the caller as its source.
- A pending address gets its confirmation mail again at most once in RESEND_AFTER, and within
  the sign-up form's limits (digest.audience.signup); asked again sooner, the answer says when.
- Someone who unsubscribed, bounced or complained stays so, whatever is asked: their name,
  locale, categories and frequency may change, their standing does not (the reason is read
  from the event log). An erased address is refused (`Erased`): only the person can come back,
  through the sign-up form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from digest.audience.addresses import LOCALES, clean_name, normalise_email, parse_categories
from digest.audience.settings import SignupSettings
from digest.audience.signup import (
    CONFIRM_MAIL,
    Confirmation,
    address_full,
    confirm,
    ip_wait,
    record_mail,
)
from digest.errors import DigestError, UsageError
from digest.store.events import latest
from digest.store.subscribers import SUPPRESSED, find, record, was_erased
from digest.store.tables import Status, Subscriber

RESEND_AFTER = timedelta(days=1)


class Erased(DigestError):
    """The address was erased at the person's request: nobody but them may add it again."""


class NotAllowed(DigestError):
    """The caller may not vouch for consent (`confirmed` without `--allow-confirmed`)."""


class Limited(DigestError):
    """The sign-up limit of the caller's IP address is reached; `wait` says for how long."""

    def __init__(self, message: str, wait: timedelta) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True, kw_only=True, slots=True)
class Wanted:
    """What the caller asks for; a field that is None was not given and is left as it is.
    `categories=[]` means every category; `frequency` one of the site's rhythms."""

    name: str | None = None
    locale: str | None = None
    categories: list[str] | None = None
    frequency: str | None = None
    confirmed: bool = False


@dataclass(slots=True)
class Upserted:
    subscriber: Subscriber
    created: bool
    changes: list[str] = field(default_factory=list)
    confirmation: Confirmation | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Caller:
    """Who asks: recorded as the events' actor and, for vouched consent, its source."""

    name: str  # e.g. `token:newsletter-form`
    may_confirm: bool
    ip: str | None
    agent: str | None


def upsert(
    session: Session,
    email: str,
    wanted: Wanted,
    *,
    caller: Caller,
    now: datetime,
    settings: SignupSettings,
) -> Upserted:
    """Add or update the subscriber with this address (see the module's docstring).

    Raises InvalidAddress, UsageError (a locale or frequency digest does not know),
    NotAllowed, Erased and Limited; nothing is written when it raises."""
    address = normalise_email(email)
    if wanted.confirmed and not caller.may_confirm:
        raise NotAllowed(
            "this token may not add confirmed subscribers (make one with --allow-confirmed)."
        )
    _check(wanted, settings)
    person = find(session, address)
    if person is None:
        if was_erased(session, address):
            raise Erased(
                f"{address} was erased at their request; only they can subscribe again, "
                "through the sign-up form."
            )
        return _create(session, address, wanted, caller=caller, now=now, settings=settings)
    result = Upserted(person, created=False, changes=_apply(person, wanted, settings))
    if result.changes:
        record(
            session,
            person,
            "preferences",
            "api",
            actor=caller.name,
            ip=caller.ip,
            user_agent=caller.agent,
            detail="; ".join(result.changes),
        )
    if person.status in SUPPRESSED:
        result.note = f"{person.status}: their choice stands; only they can subscribe again."
    elif person.status == Status.PENDING and wanted.confirmed:
        confirm(
            session,
            person,
            method="api",
            source=caller.name,
            ip=caller.ip,
            agent=caller.agent,
            now=now,
            actor=caller.name,
        )
        result.changes.append("confirmed")
    elif person.status == Status.PENDING:
        result.confirmation, result.note = _resend(session, person, caller, now, settings)
    return result


def _check(wanted: Wanted, settings: SignupSettings) -> None:
    if wanted.locale is not None and wanted.locale not in LOCALES:
        raise UsageError(f"locale {wanted.locale[:20]!r} is not one of {', '.join(LOCALES)}.")
    if wanted.frequency is not None and wanted.frequency not in settings.frequencies:
        raise UsageError(
            f"frequency {wanted.frequency[:20]!r} is not one of {', '.join(settings.frequencies)}."
        )


def _create(
    session: Session,
    address: str,
    wanted: Wanted,
    *,
    caller: Caller,
    now: datetime,
    settings: SignupSettings,
) -> Upserted:
    if not wanted.confirmed:
        wait = ip_wait(session, caller.ip, now, settings)
        if wait is not None:
            raise Limited(
                f"the sign-up limit of {caller.ip} is reached "
                f"({settings.per_ip} confirmation mails an hour).",
                wait,
            )
    person = Subscriber(
        email=address,
        name=clean_name(wanted.name),
        status=Status.PENDING,
        locale=wanted.locale,
        categories=parse_categories(wanted.categories),
        frequency=_frequency(wanted.frequency, settings),
    )
    session.add(person)
    session.flush()
    result = Upserted(person, created=True)
    if wanted.confirmed:
        person.status = Status.ACTIVE
        person.consent_at = now
        person.consent_ip = caller.ip
        person.consent_user_agent = (caller.agent or "")[:500] or None
        person.consent_source = caller.name[:40]
        record(
            session,
            person,
            "subscribe",
            "api",
            actor=caller.name,
            ip=caller.ip,
            user_agent=caller.agent,
            detail="consent vouched for by the caller",
        )
        return result
    result.confirmation = record_mail(
        session,
        person,
        locale=wanted.locale or "",
        method="api",
        ip=caller.ip,
        agent=caller.agent,
        now=now,
        actor=caller.name,
    )
    return result


def _resend(
    session: Session, person: Subscriber, caller: Caller, now: datetime, settings: SignupSettings
) -> tuple[Confirmation | None, str]:
    last = latest(session, CONFIRM_MAIL, person.id)
    if last is not None and last > now - RESEND_AFTER:
        again = (last + RESEND_AFTER).isoformat(timespec="seconds")
        sent = last.isoformat(timespec="seconds")
        return None, f"pending: a confirmation mail went out at {sent}; not again before {again}."
    if address_full(session, person.id, now, settings):
        return None, "pending: this address had its confirmation mails for today."
    wait = ip_wait(session, caller.ip, now, settings)
    if wait is not None:
        raise Limited(
            f"the sign-up limit of {caller.ip} is reached "
            f"({settings.per_ip} confirmation mails an hour).",
            wait,
        )
    mail = record_mail(
        session,
        person,
        locale=person.locale or "",
        method="api",
        ip=caller.ip,
        agent=caller.agent,
        now=now,
        actor=caller.name,
    )
    return mail, "pending: the confirmation mail was sent again."


def _apply(person: Subscriber, wanted: Wanted, settings: SignupSettings) -> list[str]:
    """Set the fields given; what changed, as `field: old -> new`."""
    changes = []
    if wanted.name is not None and clean_name(wanted.name) != person.name:
        changes.append("name")
        person.name = clean_name(wanted.name)
    if wanted.locale is not None and wanted.locale != person.locale:
        changes.append(f"locale: {person.locale or '(site)'} -> {wanted.locale}")
        person.locale = wanted.locale
    if wanted.categories is not None:
        chosen = parse_categories(wanted.categories)
        if set(chosen or ()) != set(person.categories or ()):
            changes.append(f"categories: {_listed(person.categories)} -> {_listed(chosen)}")
            person.categories = chosen
    if wanted.frequency is not None:
        stored = _frequency(wanted.frequency, settings)
        if stored != person.frequency:
            current = person.frequency or settings.frequencies[0]
            changes.append(f"frequency: {current} -> {wanted.frequency}")
            person.frequency = stored
    return changes


def _frequency(value: str | None, settings: SignupSettings) -> str | None:
    """The site's own rhythm is stored as "no preference", so it follows the site."""
    return None if value is None or value == settings.frequencies[0] else value


def _listed(categories: list[str] | None) -> str:
    return ";".join(categories) if categories else "(all)"
