"""The public app's side of the welcome mail: sending the due ones after a confirmation's
answer has gone out (digest.delivery.welcome does the sending and its guarantees)."""

from __future__ import annotations

import logging

from digest.config.sending import welcome_settings
from digest.delivery.mailer import Mailer
from digest.delivery.welcome import send_due
from digest.web.site import Site

log = logging.getLogger("digest.web")


def send_welcomes(site: Site, mailer: Mailer) -> None:
    """Send the welcomes due now; a failure stays queued for `schedule` or the next `send`."""
    try:
        send_due(site.database, mailer, welcome_settings(site.config), site.clock)
    except Exception:  # a background task: log, never crash the server
        log.exception("sending welcome mails failed")
