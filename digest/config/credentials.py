"""Secrets, read where the configuration says they are: the environment or a file it names.

config.yaml never holds a secret (digest.config.load refuses one); each is read only when a
command needs it, so `digest posts` runs on a machine without them. A file that cannot be read
is a ConfigError naming the key and the path. The web signing secret is created on first use
(readable by its owner only). `keyring` turns the web secrets into the `digest.tokens.Keyring`
the stages are given, so that no stage reads a secret or a `Config` itself.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, timedelta
from pathlib import Path

from digest.config.schema import Config
from digest.errors import ConfigError
from digest.tokens import Keyring


def smtp_password(config: Config) -> str | None:
    if config.smtp.password is not None:
        return config.smtp.password.get_secret_value()
    if config.smtp.password_file is not None:
        return _read_secret(config.path(config.smtp.password_file), "smtp.password_file")
    return None


def web_secret(config: Config) -> str:
    """The signing secret: from config/environment, else a file created on first use."""
    if config.web.secret is not None:
        return config.web.secret.get_secret_value()
    path = config.path(config.web.secret_file)
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
        except FileExistsError:
            pass  # another process created it first: use theirs
        except OSError as exc:
            raise ConfigError(f"web.secret_file: cannot create {path}: {exc.strerror}.") from None
    return _read_secret(path, "web.secret_file")


def metrics_token(config: Config) -> str | None:
    """The bearer token that opens `/metrics` to any address (None: no token)."""
    if config.metrics.token is not None:
        return config.metrics.token.get_secret_value() or None
    if config.metrics.token_file is not None:
        return _read_secret(config.path(config.metrics.token_file), "metrics.token_file") or None
    return None


def webhook_secret(config: Config, number: int) -> str:
    """The Standard Webhooks secret of `webhooks[number]` (`whsec_…`, or any base64 key)."""
    hook = config.webhooks[number]
    if hook.secret is not None:
        return hook.secret.get_secret_value()
    assert hook.secret_file is not None  # the schema asks for one of the two
    return _read_secret(config.path(hook.secret_file), f"webhooks[{number}].secret_file")


def imap_password(config: Config) -> str | None:
    imap = config.bounces.imap
    if imap is None:
        return None
    if imap.password is not None:
        return imap.password.get_secret_value()
    if imap.password_file is not None:
        return _read_secret(config.path(imap.password_file), "bounces.imap.password_file")
    return None


def postmark_password(config: Config) -> str | None:
    bounces = config.bounces
    if bounces.postmark_password is not None:
        return bounces.postmark_password.get_secret_value()
    if bounces.postmark_password_file is not None:
        return _read_secret(
            config.path(bounces.postmark_password_file), "bounces.postmark_password_file"
        )
    return None


def _read_secret(path: Path, key: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}.") from None


def keyring(config: Config) -> Keyring:
    """The configured secrets; the previous one is honoured for the rotation overlap only,
    from `web.rotated_at` for `web.rotation_overlap_days` (never without `rotated_at`)."""
    web = config.web
    previous = web.previous_secret.get_secret_value() if web.previous_secret else None
    since = until = None
    if previous and web.rotated_at is not None:
        since = web.rotated_at if web.rotated_at.tzinfo else web.rotated_at.replace(tzinfo=UTC)
        until = since + timedelta(days=web.rotation_overlap_days)
    return Keyring(
        secret=web_secret(config), previous=previous, previous_until=until, previous_from=since
    )
