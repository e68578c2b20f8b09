"""A small asyncio SMTP client that knows exactly where a transaction failed.

Why not aiosmtplib: a send must tell "the connection dropped before the final dot" (safe to
retry) from "it dropped after the final dot, before the reply" (the server may have the
message: record `unknown`, never re-send blindly), and it must pipeline MAIL/RCPT/DATA
(RFC 2920) to reach the throughput DESIGN.md section 9 asks for. Both need control of the
conversation that a high-level client does not give. Plain, STARTTLS and implicit TLS, AUTH
PLAIN/LOGIN, and a timeout on every read and write.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from digest.links import is_loopback

Security = Literal["none", "starttls", "tls"]
MAX_LINE = 8192


class Stage(StrEnum):
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    BODY = "body"  # the message was being written: nothing can have been accepted yet
    FINAL = "final"  # the final "." was written: the server may have the message


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    @property
    def enhanced(self) -> str:
        """The RFC 3463 enhanced status code (e.g. `5.1.1`), or ''."""
        first = self.text.split(" ", 1)[0]
        parts = first.split(".")
        return first if len(parts) == 3 and all(p.isdigit() for p in parts) else ""

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class SMTPError(Exception):
    """A failure at a known stage, with the server's reply when there was one."""

    def __init__(self, stage: Stage, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.reply = reply

    @property
    def after_final_dot(self) -> bool:
        """True when the server may have accepted the message despite the error."""
        return self.stage == Stage.FINAL and self.reply is None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one message: accepted, or refused with the reply that refused it."""

    accepted: bool
    reply: Reply
    stage: Stage


@dataclass(slots=True)
class Capabilities:
    extensions: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name.upper() in self.extensions

    @property
    def auth_methods(self) -> set[str]:
        return set(self.extensions.get("AUTH", "").upper().split())


class SMTPConnection:
    """One SMTP session. Use `open()`; every step is bounded by `timeout` seconds.

    `address`: where to connect when the caller resolved `host` itself (`digest doctor`
    resolves through `dns.nameservers`); the TLS certificate is still checked for `host`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "none",
        timeout: float = 30,
        tls: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        address: str | None = None,
    ) -> None:
        self.host = host
        self.address = address or host
        self.port = port
        self.security = security
        self.timeout = timeout
        self.tls = tls or ssl.create_default_context()
        self.local_hostname = local_hostname or socket.getfqdn() or "localhost"
        self.capabilities = Capabilities()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    # -- session ------------------------------------------------------------------------------

    async def open(self, username: str | None = None, password: str | None = None) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.address,
                    self.port,
                    ssl=self.tls if self.security == "tls" else None,
                    server_hostname=self.host if self.security == "tls" else None,
                ),
                self.timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise SMTPError(
                Stage.CONNECT, f"cannot connect to {self.host}:{self.port}: {_describe(exc)}"
            ) from None
        await self._expect(Stage.GREETING, 220)
        await self.ehlo()
        if self.security == "starttls":
            if not self.capabilities.has("STARTTLS"):
                raise SMTPError(Stage.STARTTLS, f"{self.host} does not offer STARTTLS")
            await self._command(Stage.STARTTLS, "STARTTLS", 220)
            assert self._writer is not None
            try:
                await asyncio.wait_for(
                    self._writer.start_tls(self.tls, server_hostname=self.host), self.timeout
                )
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                raise SMTPError(Stage.STARTTLS, f"TLS failed: {_describe(exc)}") from None
            await self.ehlo()
        if username:
            await self.login(username, password or "")

    async def ehlo(self) -> None:
        reply = await self._command(Stage.EHLO, f"EHLO {self.local_hostname}", None)
        if reply.code != 250:
            reply = await self._command(Stage.EHLO, f"HELO {self.local_hostname}", 250)
            self.capabilities = Capabilities()
            return
        extensions: dict[str, str] = {}
        for line in reply.text.split("\n")[1:]:
            keyword, _, params = line.strip().partition(" ")
            if keyword:
                extensions[keyword.upper()] = params
        self.capabilities = Capabilities(extensions)

    async def login(self, username: str, password: str) -> None:
        """AUTH PLAIN or LOGIN; never over an unencrypted connection to anything but loopback
        (the password would cross the network in clear; digest.config.presend.check_sending
        says so first)."""
        if self.security == "none" and not is_loopback(self.host):
            raise SMTPError(
                Stage.AUTH,
                f"refusing to send the password in clear to {self.host} "
                "(smtp.security is none; use starttls or tls)",
            )
        methods = self.capabilities.auth_methods
        if "PLAIN" in methods:
            secret = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
            await self._command(Stage.AUTH, f"AUTH PLAIN {secret}", 235)
        elif "LOGIN" in methods:
            await self._command(Stage.AUTH, "AUTH LOGIN", 334)
            await self._command(Stage.AUTH, base64.b64encode(username.encode()).decode(), 334)
            await self._command(Stage.AUTH, base64.b64encode(password.encode()).decode(), 235)
        else:
            raise SMTPError(
                Stage.AUTH,
                f"{self.host} offers no AUTH method we know "
                f"({', '.join(sorted(methods)) or 'none'})",
            )

    async def close(self) -> None:
        """QUIT politely when possible; always close the socket."""
        writer = self._writer
        if writer is None:
            return
        try:
            if not writer.is_closing():
                writer.write(b"QUIT\r\n")
                await asyncio.wait_for(writer.drain(), 2)
                await asyncio.wait_for(self._read_reply(Stage.DATA), 2)
        except (OSError, TimeoutError, SMTPError, ssl.SSLError):
            pass
        self.abort()

    def abort(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    # -- one message --------------------------------------------------------------------------

    async def send(
        self, sender: str, recipient: str, message: bytes, *, stuffed: bool = False
    ) -> Outcome:
        """Send one message to one recipient; raises SMTPError only when the session is lost.

        Refusals (4xx/5xx) come back as an `Outcome` and leave the session usable (RSET).
        """
        utf8 = not (sender.isascii() and recipient.isascii())
        params = ""
        if self.capabilities.has("8BITMIME"):
            params += " BODY=8BITMIME"
        if utf8:
            if not self.capabilities.has("SMTPUTF8"):
                return Outcome(
                    False,
                    Reply(
                        553, "5.6.7 the server does not accept non-ASCII addresses (no SMTPUTF8)"
                    ),
                    Stage.RCPT,
                )
            params += " SMTPUTF8"
        mail = f"MAIL FROM:<{sender}>{params}\r\n".encode()
        rcpt = f"RCPT TO:<{recipient}>\r\n".encode()
        if self.capabilities.has("PIPELINING"):
            self._write(mail + rcpt + b"DATA\r\n")
            await self._drain(Stage.MAIL)
            replies = [
                await self._read_reply(stage) for stage in (Stage.MAIL, Stage.RCPT, Stage.DATA)
            ]
        else:
            replies = []
            for stage, line in ((Stage.MAIL, mail), (Stage.RCPT, rcpt), (Stage.DATA, b"DATA\r\n")):
                self._write(line)
                await self._drain(stage)
                reply = await self._read_reply(stage)
                replies.append(reply)
                if reply.code >= 400:
                    break
        for stage, reply, ok in zip(
            (Stage.MAIL, Stage.RCPT, Stage.DATA), replies, (250, 250, 354), strict=False
        ):
            if reply.code != ok:
                if stage != Stage.DATA and len(replies) == 3 and replies[2].code == 354:
                    await self._abandon_data()
                await self._reset()
                return Outcome(False, reply, stage)
        # The body and the final dot are flushed separately: a drop while the body is being
        # written is safe to retry, while once the dot may have left, only `unknown` is honest.
        self._write(message if stuffed else _dot_stuff(message))
        await self._drain(Stage.BODY)
        self._write(b".\r\n")
        await self._drain(Stage.FINAL)
        final = await self._read_reply(Stage.FINAL)
        return Outcome(final.code == 250, final, Stage.FINAL)

    async def _abandon_data(self) -> None:
        """DATA was accepted although RCPT was refused (pipelining): send an empty message
        that the server must discard, as RFC 2920 section 3.1 allows."""
        self._write(b".\r\n")
        await self._drain(Stage.BODY)
        await self._read_reply(Stage.FINAL)

    async def _reset(self) -> None:
        await self._command(Stage.MAIL, "RSET", None)

    # -- plumbing -----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._writer is None:
            raise SMTPError(Stage.MAIL, "not connected")
        self._writer.write(data)

    async def _drain(self, stage: Stage) -> None:
        assert self._writer is not None
        writer = self._writer
        if not writer.transport.is_closing() and writer.transport.get_write_buffer_size() == 0:
            # the kernel took every byte: drain() would return at once (it waits only while
            # the buffer is over its limit, and a lost connection closes the transport), so no
            # timer is armed for it; this runs three times per message
            return
        try:
            # asyncio.timeout, not wait_for: wait_for costs a task per call, and this runs
            # several times per message
            async with asyncio.timeout(self.timeout):
                await self._writer.drain()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.abort()
            raise SMTPError(stage, f"connection lost while writing: {_describe(exc)}") from None

    async def _command(self, stage: Stage, line: str, expect: int | None) -> Reply:
        self._write(line.encode() + b"\r\n")
        await self._drain(stage)
        reply = await self._read_reply(stage)
        if expect is not None and reply.code != expect:
            raise SMTPError(stage, f"{stage} refused: {reply}", reply)
        return reply

    async def _expect(self, stage: Stage, code: int) -> Reply:
        reply = await self._read_reply(stage)
        if reply.code != code:
            raise SMTPError(stage, f"unexpected {stage} reply: {reply}", reply)
        return reply

    async def _read_reply(self, stage: Stage) -> Reply:
        if self._reader is None:
            raise SMTPError(stage, "not connected")
        lines: list[str] = []
        code = 0
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    raw = await self._reader.readline()
            except (OSError, TimeoutError, ssl.SSLError, ValueError) as exc:
                self.abort()
                raise SMTPError(stage, f"no reply ({_describe(exc)})") from None
            if not raw.endswith(b"\n"):
                self.abort()
                raise SMTPError(stage, "the server closed the connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(line) < 3 or not line[:3].isdigit():
                self.abort()
                raise SMTPError(stage, f"malformed reply {line[:80]!r}")
            code = int(line[:3])
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                break
        reply = Reply(code, "\n".join(lines))
        if code == 421:
            self.abort()
            raise SMTPError(stage, f"the server is closing the connection: {reply}", reply)
        return reply


def _dot_stuff(message: bytes) -> bytes:
    """RFC 5321 section 4.5.2: a line starting with "." gets another; end with CRLF."""
    if message.startswith(b"."):
        message = b"." + message
    message = message.replace(b"\r\n.", b"\r\n..")
    return message if message.endswith(b"\r\n") else message + b"\r\n"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc)
    return text or type(exc).__name__


def tls_context(ca_file: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """TLS for SMTP: system CAs (or `ca_file`); `verify=False` only for a known test server."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
