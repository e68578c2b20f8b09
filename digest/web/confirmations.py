"""What the sign-up form and the API share to send a confirmation mail: the settings of the
sign-up limits, and the mail itself, built and sent after the answer has gone out."""

from __future__ import annotations

import logging

from digest.audience.guard import GuardSettings
from digest.audience.settings import SignupSettings
from digest.audience.signup import Confirmation
from digest.config.schema import Config
from digest.config.sending import sender_settings
from digest.config.stages import render_settings
from digest.delivery.mailer import Mailer, MailError, confirmation_message
from digest.render.i18n import supported
from digest.tokens import make_token
from digest.web.site import Site

log = logging.getLogger("digest.web")


def signup_settings(config: Config) -> SignupSettings:
    return SignupSettings(
        per_address=config.web.confirm_limit_per_address,
        per_ip=config.web.confirm_limit_per_ip,
        frequencies=tuple(config.schedule.frequencies),
    )


def guard_settings(config: Config, secret: str) -> GuardSettings:
    signup = config.signup
    return GuardSettings(
        secret=secret,
        challenge=signup.challenge,
        challenge_after=signup.challenge_after,
        challenge_cost=signup.challenge_cost,
        min_fill_seconds=signup.min_fill_seconds,
        max_form_age_hours=signup.max_form_age_hours,
        blocked_domains=tuple(signup.blocked_domains),
        allowed_domains=tuple(signup.allowed_domains),
        block_disposable=signup.block_disposable,
    )


def deliver_confirmation(site: Site, mailer: Mailer, mail: Confirmation) -> None:
    """Build and send one confirmation mail; a failure is logged (the person may sign up
    again once the per-address window allows)."""
    token = make_token(site.keys, "confirm", mail.subscriber_id, binding=mail.binding)
    try:
        message = confirmation_message(
            render_settings(site.config),
            sender_settings(site.config),
            email=mail.email,
            name=mail.name,
            locale=supported(mail.locale or None, site.config.site.locale),
            confirm_url=f"{site.config.web.base_url}/confirm/{token}",
            now=mail.now,
        )
        mailer.send(message)
    except (MailError, OSError) as exc:
        log.warning("the confirmation mail could not be sent: %s", exc)
