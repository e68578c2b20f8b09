"""What the inbound stage reads from the configuration: the keys and return path bounces are
checked against, the soft-bounce limit, and the mailbox to read.

Built by the entry points from `Config` (digest.config.sending: the `digest bounces` command,
the scheduler's poll, the web hooks); the stage never sees the `Config` itself. Standard
library only (the keyring's type is named for the type checker alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from digest.tokens import Keyring

# VERP: `local+TOKEN@domain` must keep its local part within 64 octets (RFC 5321 4.5.3.1.1);
# digest.inbound.verp's longest token (ids below 2**35) is 42 characters. The configuration
# refuses a longer `bounces.return_path` local part.
RETURN_PATH_LOCAL_MAX = 21


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundSettings:
    """Recognising and recording what comes back: the keys VERP tokens are signed with, our
    return path (`bounces.return_path`), and `bounces.soft_limit`."""

    keys: Keyring
    return_path: str | None = None
    soft_limit: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapSettings:
    """The IMAP mailbox (`bounces.imap`): the port resolved (993 for tls, else 143), the CA
    file resolved against the configuration's folder, the password read."""

    host: str
    port: int
    security: Literal["none", "starttls", "tls"] = "tls"
    username: str
    password: str | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    timeout: float = 30.0
    ca_file: Path | None = None
    verify_tls: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxSettings:
    """Which mailbox to read: at most one of a Maildir, an mbox file or IMAP is used, in that
    order (digest.inbound.process.open_mailbox)."""

    maildir: Path | None = None
    mbox: Path | None = None
    imap: ImapSettings | None = None
