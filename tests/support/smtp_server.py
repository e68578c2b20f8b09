"""Real SMTP servers for the tests, on 127.0.0.1: aiosmtpd (with STARTTLS, implicit TLS and
AUTH variants) and a scripted server that misbehaves on cue for fault injection."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class Mailbox:
    """Everything a test server accepted, thread-safe; `wait_for` waits for arrivals."""

    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def add(self, item: Received) -> None:
        with self.lock:
            self.messages.append(item)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        """The messages once at least `count` arrived (mail sent in the background arrives
        when it arrives); fails after `timeout` seconds, a hang guard, not a timing."""
        with self.lock:
            ok = self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            assert ok, f"{len(self.messages)} of {count} messages arrived within {timeout} s"
            return list(self.messages)

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for m in self.messages for r in m.rcpt_tos]


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mailbox.add(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
            )
        )
        return "250 2.0.0 OK queued"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, written to `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class SMTPServer:
    """aiosmtpd on a free port. `mode`: plain, starttls or tls; `auth`: (user, password)."""

    def __init__(
        self,
        *,
        mode: str = "plain",
        auth: tuple[str, str] | None = None,
        cert: tuple[Path, Path] | None = None,
    ) -> None:
        self.mailbox = Mailbox()
        kwargs: dict[str, Any] = {}
        context = None
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        if mode == "starttls":
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        if auth is not None:
            user, password = auth

            def check(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (
                    data.login.decode() == user and data.password.decode() == password
                )
                # handled=False: aiosmtpd answers a refusal (535) itself; with its default
                # (True) it answers nothing and a refused client waits for its timeout
                return AuthResult(success=ok, handled=False)

            kwargs["authenticator"] = check
            kwargs["auth_required"] = True
            # aiosmtpd only knows STARTTLS as "TLS"; with implicit TLS the session is encrypted
            kwargs["auth_require_tls"] = mode == "starttls"
        self.controller = Controller(
            _Handler(self.mailbox),
            hostname="127.0.0.1",
            port=free_port(),
            ssl_context=context if mode == "tls" else None,
            server_hostname="localhost",
            **kwargs,
        )

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a scripted server for faults ---------------------------------------------------------------

Script = Callable[[int, str], str | None]
"""(message number, recipient) -> a fault to play for that message, or None for normal."""


class LoopServer:
    """A TCP server on 127.0.0.1 (a free port) running an asyncio loop in a thread of its own,
    for the hand-written SMTP servers whose faults aiosmtpd cannot play. A subclass writes
    `_session` (one connection) and may set up loop-bound state in `_prepare`; leaving the
    `with` block closes the server and cancels every session still open."""

    backlog = 100

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None

    async def _prepare(self) -> None:
        """Runs in the loop before the server listens (asyncio objects bound to it)."""

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.thread.start()

        async def start() -> asyncio.base_events.Server:
            await self._prepare()
            return await asyncio.start_server(self._session, "127.0.0.1", 0, backlog=self.backlog)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self.server is not None
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port


class ScriptedServer(LoopServer):
    """A minimal SMTP server (PIPELINING, 8BITMIME) that plays faults on cue.

    Faults: "rcpt-4xx", "rcpt-5xx-user", "rcpt-550-policy" and "rcpt-550-unknown" (bare 550s
    without an enhanced code), "mail-5xx", "data-4xx", "drop-before-data",
    "drop-mid-body", "drop-after-dot", "421-after-dot", "hang". Accepted messages go to
    `mailbox`; every attempted recipient is appended to `attempts`.
    """

    def __init__(self, script: Script, *, pipelining: bool = True) -> None:
        self.script = script
        self.pipelining = pipelining
        self.mailbox = Mailbox()
        self.attempts: list[str] = []
        self.count = 0
        self.connections = 0
        super().__init__()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 scripted ESMTP")
        mail_from, rcpt, fault = "", "", None
        while True:
            line = (await reader.readline()).decode().rstrip("\r\n")
            if not line:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                extensions = ["250-scripted", "250-8BITMIME"]
                if self.pipelining:
                    extensions.append("250-PIPELINING")
                say("\r\n".join(extensions) + "\r\n250 SMTPUTF8")
            elif verb == "MAIL":
                self.count += 1
                mail_from = line[10:].split(">")[0].lstrip("<")
                fault = None
                say("250 OK")
            elif verb == "RCPT":
                rcpt = line[8:].split(">")[0].lstrip("<")
                self.attempts.append(rcpt)
                fault = self.script(self.count, rcpt)
                if fault == "hang":
                    await asyncio.sleep(3600)
                if fault == "drop-before-data":
                    return
                if fault == "rcpt-4xx":
                    say("450 4.2.1 mailbox busy, try later")
                elif fault == "rcpt-5xx-user":
                    say("550 5.1.1 no such user")
                elif fault == "rcpt-550-policy":
                    say("550 Rejected by local policy, see our website")
                elif fault == "rcpt-550-unknown":
                    say("550 User unknown in local recipient table")
                elif fault == "mail-5xx":
                    say("550 5.7.1 sender rejected")
                else:
                    say("250 OK")
            elif verb == "DATA":
                if fault in (
                    "rcpt-4xx",
                    "rcpt-5xx-user",
                    "rcpt-550-policy",
                    "rcpt-550-unknown",
                    "mail-5xx",
                ):
                    say("554 5.5.1 no valid recipients")
                    continue
                if fault == "data-4xx":
                    say("451 4.3.0 try again")
                    continue
                say("354 go ahead")
                body = bytearray()
                while True:
                    chunk = await reader.readline()
                    if not chunk:
                        return
                    if chunk == b".\r\n":
                        break
                    body += chunk[1:] if chunk.startswith(b"..") else chunk
                    if fault == "drop-mid-body" and len(body) > 2000:
                        return
                if fault == "drop-after-dot":
                    self.mailbox.add(Received(mail_from, [rcpt], bytes(body)))
                    return
                if fault == "421-after-dot":
                    say("421 4.3.2 shutting down")
                    await writer.drain()
                    return
                self.mailbox.add(Received(mail_from, [rcpt], bytes(body)))
                say("250 2.0.0 queued")
            elif verb == "RSET":
                say("250 OK")
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                return
            elif verb == "NOOP":
                say("250 OK")
            else:
                say("502 unknown command")
            await writer.drain()


# -- a counting server, slow and holdable, for interruption tests ------------------------------


class CountingServer:
    """aiosmtpd that counts what each recipient received, for comparing with the ledger.

    `delay` seconds pass before each DATA reply (a server slow enough to interrupt). While
    `hold()` is on, replies to DATA wait until `release()`: a test holds the server, waits
    until every connection is waiting for its reply (`waiting`), signals the sender at that
    observed moment, and counts what completes after. `refuse` (e.g. "554 5.7.1 ...") and
    `greylist` ("451 ..." to RCPT) make it refuse, until set back to None.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.refuse: str | None = None
        self.greylist: str | None = None
        self.received: Counter[str] = Counter()
        self.started = 0  # MAIL FROM commands seen
        self.began: list[float] = []  # when each MAIL FROM came (time.monotonic())
        self.arrived: list[float] = []  # when each message was accepted (time.monotonic())
        self.waiting = 0  # DATA replies held at the gate
        self.changed = threading.Condition()
        self.controller = Controller(
            _CountingHandler(self), hostname="127.0.0.1", port=free_port(), ready_timeout=30
        )
        self._gate: asyncio.Event | None = None

    def __enter__(self) -> CountingServer:
        self.controller.start()
        self._gate = asyncio.run_coroutine_threadsafe(_open_gate(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.controller.stop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = self.controller.loop
        return loop

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def hold(self) -> None:
        assert self._gate is not None
        self.loop.call_soon_threadsafe(self._gate.clear)

    def release(self) -> None:
        if self._gate is not None:
            self.loop.call_soon_threadsafe(self._gate.set)

    def accepted(self) -> int:
        with self.changed:
            return sum(self.received.values())

    def wait(self, predicate: Callable[[CountingServer], bool], timeout: float = 120) -> None:
        """Until `predicate(self)` holds (a hang guard after `timeout`, not a timing)."""
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self), timeout), "the server waited"

    def _update(self, change: Callable[[], None]) -> None:
        with self.changed:
            change()
            self.changed.notify_all()


async def _open_gate() -> asyncio.Event:
    gate = asyncio.Event()
    gate.set()
    return gate


class _CountingHandler:
    def __init__(self, server: CountingServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)

        def count() -> None:
            self.server.started += 1
            self.server.began.append(time.monotonic())

        self.server._update(count)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.server.greylist:
            return self.server.greylist
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        counting = self.server
        if counting.delay:
            await asyncio.sleep(counting.delay)
        gate = counting._gate
        if gate is not None and not gate.is_set():
            counting._update(lambda: setattr(counting, "waiting", counting.waiting + 1))
            await gate.wait()
            counting._update(lambda: setattr(counting, "waiting", counting.waiting - 1))
        if counting.refuse:
            return counting.refuse

        def count() -> None:
            for rcpt in envelope.rcpt_tos:
                counting.received[rcpt] += 1
            counting.arrived.append(time.monotonic())

        counting._update(count)
        return "250 2.0.0 OK queued"
