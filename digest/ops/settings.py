"""What digest.ops reads: the settings of `digest doctor`'s checks and of the owner's alerts
(built by digest.config.ops), and of backups (built by the CLI); the operations never see the
whole `Config`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpProbe:
    """The SMTP relay as `digest send` reaches it (digest.delivery.transport.SmtpSettings)."""

    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    timeout: float
    ca_file: str | None
    verify_tls: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyFile:
    """A DKIM private key: its selector, file, and the configuration key naming the file."""

    selector: str
    path: Path
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DoctorSettings:
    nameservers: tuple[str, ...]
    database_url: str
    smtp: SmtpProbe
    from_domain: str
    envelope_domain: str  # the MAIL FROM domain: bounces.return_path's, else sender.from's
    return_path: str | None
    dkim_domain: str | None
    dkim_keys: tuple[KeyFile, ...]
    base_url: str
    this_host: str  # this machine's name: whose address SPF must permit with a local relay
    clock_skew: float = 60.0  # seconds of difference with the web server's Date tolerated


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    """Who is told and as whom (digest.ops.alerts)."""

    owner: str
    title: str  # site.title, so that an owner of several lists knows which one
    sender: str  # the From header: sender.from
    domain: str  # for the Message-ID: the From domain


@dataclass(frozen=True, slots=True, kw_only=True)
class Secret:
    """A secret a backup does not hold: its setting, where it is kept, and what is lost
    without it."""

    key: str
    where: str
    why: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupSettings:
    database_url: str
    secrets: tuple[Secret, ...] = ()
