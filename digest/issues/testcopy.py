"""A test copy of the next issue to one address, outside the ledger: `digest send --to` and
the desk's "send a test copy" both come here. It is a real message through the configured
SMTP server, personalised for the address when it is a subscriber's."""

from __future__ import annotations

from digest.audience.addresses import InvalidAddress, normalise_email
from digest.config.schema import Config
from digest.errors import DigestError
from digest.issues.plan import NothingToSend, Plan, plan_send
from digest.issues.send import send_issue
from digest.models import Recipient
from digest.store.database import Database
from digest.store.subscribers import find


def send_test_copy(
    config: Config, database: Database, plan: Plan | None, address: str
) -> tuple[str, str]:
    """Send it (planning the next issue when `plan` is None); (address, issue key). Raises
    DigestError with the reason when the address is bad, nothing is new, or the server did
    not accept the message."""
    try:
        email = normalise_email(address)
    except InvalidAddress as exc:
        raise DigestError(f"{address!r} is not a valid address: {exc}.") from None
    plan = plan or plan_send(config, database)
    if plan.edition is None:
        raise NothingToSend(plan.note or "Nothing to send.")
    with database.session() as session:
        person = find(session, email)
        recipient = Recipient(
            0,
            person.id if person else 0,
            email,
            person.name if person else "",
            person.locale if person else None,
            None,
            token_key=person.token_key if person else None,
        )
    sent = send_issue(config, database, plan, to=recipient)
    summary = sent.outcomes[0].summary
    if summary.sent != 1:
        why = summary.last_error or summary.paused or "see the server log"
        raise DigestError(f"the test copy to {email} was not accepted: {why}.")
    return email, plan.edition.key
