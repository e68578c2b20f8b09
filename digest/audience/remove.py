"""Take one subscriber off the list by address, for the HTTP API (and the desk): unsubscribe
(kept on the suppression list, recorded with the method and the caller) or erase.

Someone bounced or complained stays so (their standing says more than `unsubscribed`); an
unknown address is `NotFound`, an erased one `Erased` (digest.audience.upsert).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from digest.audience.addresses import normalise_email
from digest.audience.upsert import Caller, Erased
from digest.errors import DigestError
from digest.store.subscribers import SUPPRESSED, erase, find, unsubscribe, was_erased
from digest.store.tables import Subscriber


class NotFound(DigestError):
    """No subscriber has this address."""


@dataclass(slots=True)
class Removed:
    subscriber: Subscriber
    changed: bool
    erased: bool


def remove(session: Session, email: str, *, forget: bool, caller: Caller) -> Removed:
    """Unsubscribe (or with `forget`, erase) the subscriber with this address."""
    address = normalise_email(email)
    person = find(session, address)
    if person is None:
        if was_erased(session, address):
            raise Erased(f"{address} was erased at their request.")
        raise NotFound(f"{address} is not a subscriber.")
    if forget:
        erase(session, person, "api", actor=caller.name)
        return Removed(person, changed=True, erased=True)
    if person.status in SUPPRESSED:
        return Removed(person, changed=False, erased=False)
    changed = unsubscribe(
        session, person, "api", ip=caller.ip, user_agent=caller.agent, actor=caller.name
    )
    return Removed(person, changed=changed, erased=False)
