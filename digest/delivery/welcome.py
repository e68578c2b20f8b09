"""Sending the welcome mails that are due: right after a confirmation's answer (the web app),
and again from `digest schedule` and every `digest send` for any that failed.

Each welcome is claimed in its own transaction before its mail is built (digest.store.welcomes:
`queued`/due `failed` -> `sending`), sent, then settled: `sent` (with a `welcome` event in the
reader's history) or `failed` (tried again later). Two processes never send the same welcome,
and one that dies mid-send leaves it `sending`, never sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from digest.delivery.mailer import Mailer, MailError, welcome_message
from digest.delivery.settings import WelcomeSettings
from digest.render.i18n import supported
from digest.store import welcomes
from digest.store.database import Database
from digest.store.ledger import latest_finished, unfiltered_variant
from digest.tokens import make_token

log = logging.getLogger("digest.delivery")


def send_due(
    database: Database,
    mailer: Mailer,
    settings: WelcomeSettings,
    clock: Callable[[], datetime],
    limit: int = 50,
) -> int:
    """Send every welcome due now (at most `limit`); how many went out."""
    with database.session() as session:
        due = welcomes.due(session, clock(), limit)
    sent = 0
    for welcome_id in due:
        with database.session() as session:
            mail = welcomes.claim(session, welcome_id, clock())
            latest = latest_finished(session) if mail is not None else None
            latest_link: tuple[str | None, str | None] = (None, None)
            if mail is not None and latest is not None:
                locale = supported(mail.locale, settings.render.site.locale)
                variant = unfiltered_variant(session, latest, locale)
                latest_link = (
                    f"{settings.web_base_url}/archive/{quote(latest.key, safe='')}/",
                    variant.subject if variant is not None else latest.key,
                )
        if mail is None:
            continue
        web, keys = settings.web_base_url, settings.keys
        who, bound = mail.subscriber_id, mail.binding
        links: dict[str, str | None] = {
            "latest_url": latest_link[0],
            "latest_subject": latest_link[1],
            "archive_url": f"{web}/archive/",
            "preferences_url": f"{web}/p/{make_token(keys, 'preferences', who, None, bound)}",
            "unsubscribe_url": f"{web}/u/{make_token(keys, 'unsubscribe', who, None, bound)}",
        }
        error: str | None = None
        message_id: str | None = None
        try:
            message = welcome_message(
                settings.render,
                settings.sender,
                email=mail.email,
                name=mail.name,
                locale=supported(mail.locale, settings.render.site.locale),
                links=links,
                now=clock(),
            )
            message_id = str(message["Message-ID"])
            mailer.send(message)
        except (MailError, OSError) as exc:
            error = str(exc) or type(exc).__name__
            log.warning("the welcome mail could not be sent (tried again later): %s", error)
        with database.session() as session:
            welcomes.settle(session, welcome_id, clock(), message_id=message_id, error=error)
        sent += error is None
    return sent
