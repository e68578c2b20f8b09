"""Where messages go: the transport interface, and the SMTP transport over our client.

A transport opens *channels* (an SMTP session; a folder for the outbox); a channel sends one
message and says what became of it as an `Attempt` — the engine decides from that alone
whether to retry, defer, fail or count it, so a dry run and a real send differ only here.

The SMTP classification: a 4xx reply is temporary; a session lost before the final dot is
temporary too (nothing can have been accepted) and counts as a server failure; lost after
the final dot it is `maybe` (the server may have the message: never sent again blindly); a
5xx refusal of the recipient is a bounce only when `inbound.classify_refusal` reads it as a
dead address (a hard enhanced code such as 5.1.1, or a bare 550 whose text says the user is
unknown: a bare 550 is often a policy refusal); any other 5xx fails the message. A login
refused is fatal: every other message would fail the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from digest.delivery.settings import SmtpSettings
from digest.delivery.smtp import SMTPConnection, SMTPError, Stage, tls_context
from digest.inbound.severity import classify_refusal
from digest.models import Recipient


class Kind(StrEnum):
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"  # try again (4xx, or the session was lost before the final dot)
    PERMANENT = "permanent"  # this message fails (5xx)
    BOUNCE = "bounce"  # the address does not exist (5.1.x at RCPT)
    MAYBE = "maybe"  # lost after the final dot: the server may have it


@dataclass(frozen=True, slots=True)
class Attempt:
    """What became of one attempt. `server`: a failure of the server or the session rather
    than of this recipient; such failures in a row pause the issue."""

    kind: Kind
    detail: str = ""
    server: bool = False


class TransportError(Exception):
    """A channel could not be opened; `fatal` when retrying cannot help (login refused)."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class Channel(Protocol):
    """One open session. `eight_bit`: the server takes 8bit bodies; `wire`: messages are
    handed over dot-stuffed, as SMTP's DATA carries them."""

    eight_bit: bool
    wire: bool

    def usable(self) -> bool: ...

    async def send(self, sender: str, recipient: Recipient, message: bytes) -> Attempt: ...

    async def close(self) -> None: ...

    def abort(self) -> None: ...


class Transport(Protocol):
    async def open(self) -> Channel:
        """A new channel; raises TransportError."""
        ...


class SmtpTransport:
    """Channels are SMTP sessions (plain, STARTTLS or TLS, with AUTH when configured)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.tls = tls_context(settings.ca_file, settings.verify_tls)

    async def open(self) -> Channel:
        s = self.settings
        connection = SMTPConnection(
            s.host,
            s.port,
            security=s.security,
            timeout=s.timeout,
            tls=self.tls,
        )
        try:
            await connection.open(s.username, s.password)
        except SMTPError as exc:
            connection.abort()
            refused = exc.stage in (Stage.AUTH, Stage.STARTTLS) and (
                exc.reply is None or not exc.reply.transient
            )
            if refused:
                reason = exc.reply if exc.reply is not None else exc
                raise TransportError(
                    f"the SMTP server refused the login: {reason}", fatal=True
                ) from None
            raise TransportError(f"cannot open an SMTP session: {exc}") from None
        except asyncio.CancelledError:  # a stop cut the opening short: no socket left open
            connection.abort()
            raise
        return SmtpChannel(connection)


class SmtpChannel:
    wire = True

    def __init__(self, connection: SMTPConnection) -> None:
        self.connection = connection
        self.eight_bit = connection.capabilities.has("8BITMIME")

    def usable(self) -> bool:
        return self.connection.connected

    async def close(self) -> None:
        await self.connection.close()

    def abort(self) -> None:
        self.connection.abort()

    async def send(self, sender: str, recipient: Recipient, message: bytes) -> Attempt:
        try:
            outcome = await self.connection.send(sender, recipient.email, message, stuffed=True)
        except SMTPError as exc:
            self.connection.abort()
            if exc.after_final_dot:
                return Attempt(Kind.MAYBE, f"connection lost after the message was sent: {exc}")
            return Attempt(Kind.TEMPORARY, str(exc), server=True)
        if outcome.accepted:
            return Attempt(Kind.ACCEPTED)
        reply = outcome.reply
        detail = f"{outcome.stage}: {reply}"
        if reply.transient:
            return Attempt(Kind.TEMPORARY, detail)
        if (
            outcome.stage == Stage.RCPT
            and classify_refusal(reply.code, reply.text, reply.enhanced or None).outcome
            == "bounced"
        ):
            return Attempt(Kind.BOUNCE, detail)
        return Attempt(Kind.PERMANENT, detail, server=True)
