"""What a send, the scheduler and the public app check before they change anything.

Each check refuses, in one sentence naming the key (and the path), what would make a real send
impossible or unsafe (ConfigError, exit 2): a missing postal address, a file the configuration
names that cannot be read, unsubscribe links over plain http, an SMTP password in clear, a
`state_dir` that cannot be written.
`posts`, `render` and `preview` run none of them, so they work on a machine without secrets.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from digest.config.schema import Config
from digest.errors import ConfigError
from digest.links import is_loopback


def check_sendable(config: Config) -> None:
    """What a real send needs and a dry run does not: the sender's postal address, which
    anti-spam laws (CAN-SPAM and others) want in every newsletter. Raises ConfigError."""
    if not (config.site.postal_address or "").strip():
        raise ConfigError(
            f"{config.file}: site.postal_address is required to send a digest (anti-spam "
            "laws want the sender's postal address in every newsletter); set it, or use "
            "`digest send --dry-run`."
        )


def check_state_dir(config: Config) -> Path:
    """`state_dir`, made if missing, must be a folder this process can write: a real send
    keeps each SMTP reply there the moment it reads it (digest.delivery.journal), and finding
    out in the middle of a send would pause it. Returns the folder. Raises ConfigError."""
    folder = config.path(config.state_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(
            f"{config.file}: state_dir: cannot make the folder {folder} "
            f"({exc.strerror or 'refused'}); a send keeps the SMTP replies it reads there."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{config.file}: state_dir: {folder} is not writable by this user; a send keeps "
            "the SMTP replies it reads there."
        )
    return folder


def needed_files(config: Config) -> list[tuple[str, Path]]:
    """(key, path) of every file a send, the scheduler or the public app will read: the
    password files in use (none when the password comes from the environment), CA files
    and DKIM keys."""
    smtp, dkim, bounces = config.smtp, config.dkim, config.bounces
    imap = bounces.imap
    candidates: list[tuple[str, Path | None]] = [
        ("smtp.password_file", smtp.password_file if smtp.password is None else None),
        ("smtp.ca_file", smtp.ca_file),
        ("dkim.key_file", dkim.key_file if dkim else None),
        ("dkim.ed25519_key_file", dkim.ed25519_key_file if dkim else None),
        (
            "metrics.token_file",
            config.metrics.token_file if config.metrics.token is None else None,
        ),
        (
            "bounces.postmark_password_file",
            bounces.postmark_password_file if bounces.postmark_password is None else None,
        ),
    ]
    if imap is not None:
        candidates += [
            (
                "bounces.imap.password_file",
                imap.password_file if imap.password is None else None,
            ),
            ("bounces.imap.ca_file", imap.ca_file),
        ]
    return [(key, config.path(value)) for key, value in candidates if value is not None]


def check_files(config: Config) -> None:
    """Refuse, in one sentence naming the key and the path, a file the configuration names
    that does not exist or cannot be read (ConfigError, exit 2).

    `digest send`, `schedule` and `serve` call this before they change anything, so that a
    missing password file is not found after an issue was created; `posts`, `render` and
    `preview` do not, and work on a machine without the secrets.
    """
    for key, path in needed_files(config):
        if not path.exists():
            problem = "does not exist"
        elif not path.is_file():
            problem = "is not a file"
        else:
            try:
                with path.open("rb"):
                    continue
            except OSError as exc:
                problem = f"cannot be read ({exc.strerror})"
        raise ConfigError(f"{config.file}: {key}: {path} {problem}.")


def check_sending(config: Config, *, links: bool = True) -> None:
    """Refuse, in one sentence naming the key (ConfigError, exit 2), what would make a real
    send unsafe, before anything changes:

    - `links`: a `web.base_url` that is not https:// unless its host is loopback. Every
      message's unsubscribe link and List-Unsubscribe header is built on it: RFC 8058's
      one-click needs HTTPS, and an http:// link can be read and replayed on the way.
      A loopback host is the exception, for trying digest out on one machine.
    - SMTP AUTH over an unencrypted connection (`smtp.security: none`) to anything but a
      loopback `smtp.host`: the password would cross the network in clear.

    `digest send` (also `--to`) and `digest schedule` check both; `digest serve`, which
    only sends confirmation mails through the same server, checks the second.
    """
    web = urlsplit(config.web.base_url)
    if links and web.scheme != "https" and not is_loopback(web.hostname or ""):
        raise ConfigError(
            f"{config.file}: web.base_url: {config.web.base_url} is not https://, and every "
            "unsubscribe link of a real send is built on it (RFC 8058 needs HTTPS; only a "
            "loopback host may use http://)."
        )
    smtp = config.smtp
    has_login = bool(smtp.username) or smtp.password is not None or smtp.password_file
    if has_login and smtp.security == "none" and not is_loopback(smtp.host):
        raise ConfigError(
            f"{config.file}: smtp.security: none would send the SMTP password in clear to "
            f"smtp.host {smtp.host}; set smtp.security to starttls or tls (AUTH without "
            "encryption is allowed only to a loopback smtp.host)."
        )
