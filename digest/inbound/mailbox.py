"""Where returned mail is read from: a Maildir, an mbox file, or an IMAP mailbox.

All three behind one interface: iterate a `Mailbox` to get `Incoming` messages, classify
each, and call `mark_handled()` on those dealt with. What that does:

- Maildir: the file moves from `new/` (or stays in `cur/`) to `cur/NAME:2,<flags>S`, the
  seen flag; only unseen messages (in `new/`, or in `cur/` without `S`) are read.
- IMAP: the message gets `\\Seen` and, when `processed_folder` is set, moves there (the folder
  is created if missing); only unseen messages are read, and reading never marks one seen
  (`BODY.PEEK`), so a message not marked handled stays unseen.
- mbox: read-only; nothing is changed. Idempotence comes from the caller's Message-ID keys.

Memory stays bounded: messages are read one at a time, an mbox is streamed, never loaded,
and a message over `max_bytes` is skipped, left as it is and reported in `skipped` with a
sentence saying where and why.
"""

from __future__ import annotations

import contextlib
import email
import imaplib
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from imap_tools import AND, MailBox, MailBoxStartTls, MailBoxUnencrypted, MailMessageFlags
from imap_tools.errors import ImapToolsError
from imap_tools.mailbox import BaseMailBox

from digest.errors import DigestError
from digest.inbound.settings import ImapSettings

MAX_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024


class MailboxError(DigestError):
    """A mailbox that cannot be opened or read: one sentence naming it."""


@dataclass(slots=True)
class Incoming:
    """One message read from a mailbox; `where` names it for messages to the user."""

    where: str
    raw: bytes
    message: Message
    _handled: Callable[[], None] = field(repr=False)

    def mark_handled(self) -> None:
        """Record in the mailbox that this message was dealt with (see the module doc)."""
        self._handled()


@dataclass(frozen=True, slots=True)
class Skipped:
    where: str
    reason: str


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size} bytes"


class Mailbox:
    """Base of the three readers: iterate for messages; `skipped` lists what was left alone."""

    description = "mailbox"

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.skipped: list[Skipped] = []

    def __iter__(self) -> Iterator[Incoming]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file or connection; safe to call twice."""

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _too_big(self, where: str, size: int) -> None:
        self.skipped.append(
            Skipped(where, f"{_size(size)}, over the {_size(self.max_bytes)} limit; left unread")
        )


class Maildir(Mailbox):
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        super().__init__(max_bytes)
        self.path = path
        self.description = f"Maildir {path}"
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise MailboxError(f"{path} is not a Maildir (it needs new/ and cur/ folders).")

    def __iter__(self) -> Iterator[Incoming]:
        for sub in ("new", "cur"):
            try:
                names = sorted(os.listdir(self.path / sub))
            except OSError as exc:
                raise MailboxError(f"cannot read {self.path / sub}: {exc.strerror}.") from None
            for name in names:
                base, _, info = name.partition(":")
                flags = info[2:] if info.startswith("2,") else ""
                if name.startswith(".") or "S" in flags or "T" in flags:
                    continue
                incoming = self._read(sub, name, base, flags)
                if incoming is not None:
                    yield incoming

    def _read(self, sub: str, name: str, base: str, flags: str) -> Incoming | None:
        path = self.path / sub / name
        where = f"{sub}/{name}"
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                self._too_big(where, size)
                return None
            raw = path.read_bytes()
        except FileNotFoundError:
            return None  # another reader took it meanwhile
        except OSError as exc:
            self.skipped.append(Skipped(where, f"cannot be read: {exc.strerror}"))
            return None
        target = self.path / "cur" / f"{base}:2,{''.join(sorted(set(flags + 'S')))}"

        def handled() -> None:
            with contextlib.suppress(FileNotFoundError):  # moved by someone else already
                os.rename(path, target)

        return Incoming(where, raw, email.message_from_bytes(raw), handled)


class Mbox(Mailbox):
    """An mbox file, streamed in chunks; `>From ` escapes (mboxrd) are undone."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        super().__init__(max_bytes)
        self.path = path
        self.description = f"mbox {path}"
        try:
            self._file: BinaryIO | None = path.open("rb")
        except OSError as exc:
            raise MailboxError(f"cannot open the mbox {path}: {exc.strerror}.") from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[Incoming]:
        if self._file is None:
            return
        index, offset, size, start = 0, 0, 0, -1
        buffer: bytearray | None = bytearray()
        at_line_start = True
        while True:
            line = self._file.readline(_CHUNK)
            if not line or (at_line_start and line.startswith(b"From ")):
                if start >= 0:
                    item = self._finish(index, start, size, buffer)
                    if item is not None:
                        yield item
                if not line:
                    return
                index, start, size, buffer = index + 1, offset, 0, bytearray()
            elif start >= 0:
                size += len(line)
                if buffer is not None:
                    escaped = at_line_start and line.lstrip(b">").startswith(b"From ")
                    buffer += line[1:] if escaped and line.startswith(b">") else line
                    if len(buffer) > self.max_bytes:
                        buffer = None  # too big: count its size, keep none of it
            offset += len(line)
            at_line_start = line.endswith(b"\n")

    def _finish(
        self, index: int, start: int, size: int, buffer: bytearray | None
    ) -> Incoming | None:
        where = f"message {index} (byte {start})"
        if buffer is None:
            self._too_big(where, size)
            return None
        raw = bytes(buffer)
        return Incoming(where, raw, email.message_from_bytes(raw), lambda: None)


class Imap(Mailbox):
    def __init__(
        self,
        settings: ImapSettings,
        *,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        super().__init__(max_bytes)
        self.settings = settings
        where = f"{settings.host}:{settings.port}"
        self.description = f"IMAP {settings.username}@{where}/{settings.folder}"
        try:
            self.box: BaseMailBox = _connect(settings)
            self.box.login(
                settings.username, settings.password or "", initial_folder=settings.folder
            )
            if settings.processed_folder and not self.box.folder.exists(settings.processed_folder):
                self.box.folder.create(settings.processed_folder)
        except (OSError, ssl.SSLError) as exc:
            raise MailboxError(f"bounces.imap: cannot connect to {where}: {exc}.") from None
        except (ImapToolsError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"bounces.imap: {where} refused us: {_imap_reason(exc)}.") from None

    def close(self) -> None:
        box: BaseMailBox | None = getattr(self, "box", None)
        if box is not None:
            with contextlib.suppress(OSError, ImapToolsError, imaplib.IMAP4.error):
                box.logout()
            del self.box

    def __iter__(self) -> Iterator[Incoming]:
        try:
            for uid in self.box.uids(AND(seen=False, size_gt=self.max_bytes)):
                self.skipped.append(
                    Skipped(f"UID {uid}", f"over the {_size(self.max_bytes)} limit; left unread")
                )
            for uid in self.box.uids(AND(seen=False, size_lt=self.max_bytes + 1)):
                for fetched in self.box.fetch(uid_list=[uid], mark_seen=False, bulk=False):
                    raw = fetched.obj.as_bytes()
                    yield Incoming(f"UID {uid}", raw, fetched.obj, self._handler(uid))
        except (OSError, ImapToolsError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"bounces.imap: reading {self.description} failed: {exc}.") from None

    def _handler(self, uid: str) -> Callable[[], None]:
        def handled() -> None:
            try:
                self.box.flag(uid, MailMessageFlags.SEEN, True)
                if self.settings.processed_folder:
                    self.box.move(uid, self.settings.processed_folder)
            except (OSError, ImapToolsError, imaplib.IMAP4.error) as exc:
                raise MailboxError(f"bounces.imap: cannot mark UID {uid} handled: {exc}.") from None

        return handled


def _imap_reason(exc: Exception) -> str:
    data = getattr(exc, "command_result", None)
    if isinstance(data, tuple) and len(data) > 1 and isinstance(data[1], list) and data[1]:
        first = data[1][0]
        return first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    return str(exc) or type(exc).__name__


def _connect(settings: ImapSettings) -> BaseMailBox:
    port, timeout = settings.port, settings.timeout
    if settings.security == "none":
        return MailBoxUnencrypted(settings.host, port, timeout=timeout)
    ca = str(settings.ca_file) if settings.ca_file else None
    context = ssl.create_default_context(cafile=ca)
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.security == "starttls":
        return MailBoxStartTls(settings.host, port, timeout=timeout, ssl_context=context)
    return MailBox(settings.host, port, timeout=timeout, ssl_context=context)
