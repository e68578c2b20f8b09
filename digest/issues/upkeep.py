"""What every long-lived or sending process does on the side, whichever runs (`serve`,
`schedule`, any `send`, cron users included): pending sign-ups past `signup.pending_days`
removed, welcome mails that are due sent (`welcome`), and outgoing webhooks posted.

Webhooks are posted in a daemon thread (digest.delivery.webhooks.start_background): a receiver
that hangs or fails holds up nothing; what one round does not finish, the next round of any
process does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from digest.config.schema import Config
from digest.config.sending import (
    dkim_settings,
    sender_settings,
    smtp_settings,
    webhook_settings,
    welcome_settings,
)
from digest.delivery.mailer import Mailer, SmtpMailer
from digest.delivery.webhooks import start_background
from digest.delivery.welcome import send_due
from digest.store import pending
from digest.store.database import Database, log_failure

log = logging.getLogger("digest.issues")


@dataclass(slots=True)
class Upkept:
    purged: int = 0
    welcomed: int = 0
    webhooks: threading.Thread | None = None


def upkeep(
    config: Config,
    database: Database,
    *,
    clock: Callable[[], datetime] | None = None,
    mailer: Mailer | None = None,
) -> Upkept:
    """One round; never raises (each part logs its own failure and is tried next round)."""
    now = clock or (lambda: datetime.now(UTC))
    done = Upkept()
    try:  # a database away is waited out (database.outage_seconds), as on the send path
        cutoff = now() - timedelta(days=config.signup.pending_days)
        done.purged = database.run_session(lambda session: pending.purge(session, cutoff))
    except Exception as exc:
        _failed("removing stale pending sign-ups", exc)
    if config.welcome:
        try:
            if mailer is None:
                mailer = SmtpMailer(
                    smtp_settings(config), sender_settings(config), dkim_settings(config)
                )
            done.welcomed = send_due(database, mailer, welcome_settings(config), now)
        except Exception as exc:
            _failed("sending welcome mails", exc)
    try:
        done.webhooks = start_background(database, webhook_settings(config), now)
    except Exception as exc:
        _failed("starting outgoing webhooks", exc)
    return done


def _failed(what: str, exc: Exception) -> None:
    log_failure(log, what, exc, "tried again next round")


def serve_upkeep(config: Config, database: Database, every: float = 30.0) -> Callable[[], None]:
    """Run `upkeep` every `every` seconds in a daemon thread (for `digest serve`); returns
    the function that stops it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every if done_once.is_set() else 1.0):
            done_once.set()
            upkeep(config, database)

    done_once = threading.Event()
    threading.Thread(target=loop, name="digest-upkeep", daemon=True).start()
    return stop.set
