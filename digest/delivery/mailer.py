"""Transactional one-off mail: the double-opt-in confirmation and the welcome messages, and
sending them.

The message is built with `email.message.EmailMessage` from `templates/email/confirm.*.j2`
(users may override them) and sent through our own SMTP client with the configured server and
sender: the same `SmtpSettings` (digest.config.sending.smtp_settings) a send uses. The web app
takes any `Mailer`, so tests and other transports can stand in.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

from digest.audience.addresses import clean_name
from digest.delivery.dkim import dkim_signer
from digest.delivery.settings import DkimSettings, SenderSettings, SmtpSettings
from digest.delivery.smtp import SMTPConnection, SMTPError, tls_context
from digest.errors import DigestError
from digest.render.edition import environment
from digest.render.i18n import html_lang, translate, translations
from digest.render.settings import RenderSettings


class MailError(DigestError):
    """A transactional message could not be handed to the SMTP server."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver `message` to its `To` address; raise MailError when that fails."""
        ...


def _one_line(value: str) -> str:
    return " ".join(value.split())


def confirmation_message(
    render: RenderSettings,
    sender: SenderSettings,
    *,
    email: str,
    name: str,
    locale: str,
    confirm_url: str,
    now: datetime | None = None,
) -> EmailMessage:
    """The "please confirm your subscription" message, in `locale`, text and HTML."""
    subject = translate(locale, "Confirm your subscription to %(title)s") % {
        "title": render.site.title
    }
    values = {"confirm_url": confirm_url}
    return _message(
        render, sender, "confirm", subject, values, email=email, name=name, locale=locale, now=now
    )


def welcome_message(
    render: RenderSettings,
    sender: SenderSettings,
    *,
    email: str,
    name: str,
    locale: str,
    links: dict[str, str | None],
    now: datetime | None = None,
) -> EmailMessage:
    """The welcome, in `locale`, from `templates/email/welcome.*.j2`: `links` holds
    `latest_url` and `latest_subject` (None before the first issue), `archive_url`,
    `preferences_url` and `unsubscribe_url` (in the body: a transactional message, it carries
    no List-Unsubscribe header, which Python's email policy could RFC 2047 encode)."""
    subject = translate(locale, "Welcome to %(title)s") % {"title": render.site.title}
    return _message(
        render,
        sender,
        "welcome",
        subject,
        dict(links),
        email=email,
        name=name,
        locale=locale,
        now=now,
    )


def _message(
    render: RenderSettings,
    sender: SenderSettings,
    template: str,
    subject: str,
    extra: dict[str, Any],
    *,
    email: str,
    name: str,
    locale: str,
    now: datetime | None,
) -> EmailMessage:
    env: Any = environment(render.templates)  # the i18n extension adds install_gettext_translations
    env.install_gettext_translations(translations(locale), newstyle=True)
    name = clean_name(name)
    greeting = (
        translate(locale, "Hi %(name)s,") % {"name": name} if name else translate(locale, "Hi,")
    )
    values = {
        "site": render.site,
        "html_lang": html_lang(locale),
        "greeting": greeting,
        **extra,
    }
    text = env.get_template(f"email/{template}.txt.j2").render(values).strip() + "\n"
    html = env.get_template(f"email/{template}.html.j2").render(values)
    message = EmailMessage()
    message["From"] = sender.header
    try:
        message["To"] = Address(display_name=name, addr_spec=email)
    except (ValueError, IndexError):
        message["To"] = email
    message["Subject"] = _one_line(subject)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = f"<{template}.{secrets.token_hex(12)}@{sender.domain}>"
    if sender.reply_to:
        message["Reply-To"] = sender.reply_to
    # 7bit when the text is ASCII, else base64: never 8bit, which a server may not take
    for part, subtype in ((text, "plain"), (html, "html")):
        cte = "7bit" if part.isascii() else "base64"
        if subtype == "plain":
            message.set_content(part, subtype=subtype, charset="utf-8", cte=cte)
        else:
            message.add_alternative(part, subtype=subtype, charset="utf-8", cte=cte)
    return message


class SmtpMailer:
    """Sends each message over a fresh connection to the configured SMTP server."""

    def __init__(
        self, smtp: SmtpSettings, sender: SenderSettings, dkim: DkimSettings | None = None
    ) -> None:
        self.smtp = smtp
        self.sender = sender.address
        self.signer = dkim_signer(dkim)

    def send(self, message: EmailMessage) -> None:
        recipient = message["To"].addresses[0].addr_spec
        utf8 = not (recipient.isascii() and self.sender.isascii())
        data = message.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
        if self.signer is not None:
            data = self.signer.sign(data)
        asyncio.run(self._send(recipient, data))

    async def _send(self, recipient: str, data: bytes) -> None:
        s = self.smtp
        connection = SMTPConnection(
            s.host,
            s.port,
            security=s.security,
            timeout=s.timeout,
            tls=tls_context(s.ca_file, s.verify_tls),
        )
        try:
            await connection.open(s.username, s.password)
            outcome = await connection.send(self.sender, recipient, data)
        except SMTPError as exc:
            raise MailError(f"SMTP {s.host}:{s.port}: {exc}.") from None
        finally:
            await connection.close()
        if not outcome.accepted:
            raise MailError(f"SMTP {s.host}:{s.port} refused the message: {outcome.reply}.")
