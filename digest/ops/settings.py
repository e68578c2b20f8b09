"""What the checks of `digest doctor` read, built from the configuration by the caller
(`digest doctor`, and the scheduler's daily run): the checks never see the whole `Config`."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from digest.config.schema import Config
from digest.ops.checks import Check


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


def doctor_settings(config: Config, *, smtp_password: str | None = None) -> DoctorSettings:
    """The settings of `config` the checks read (`smtp_password`: as read by the caller, who
    reports an unreadable password file as a configuration error)."""
    smtp, dkim = config.smtp, config.dkim
    keys: list[KeyFile] = []
    if dkim is not None:
        keys.append(
            KeyFile(selector=dkim.selector, path=config.path(dkim.key_file), key="dkim.key_file")
        )
        if dkim.ed25519_selector is not None and dkim.ed25519_key_file is not None:
            keys.append(
                KeyFile(
                    selector=dkim.ed25519_selector,
                    path=config.path(dkim.ed25519_key_file),
                    key="dkim.ed25519_key_file",
                )
            )
    return_path = config.bounces.return_path
    envelope = return_path or config.sender.address
    return DoctorSettings(
        nameservers=tuple(config.dns.nameservers),
        database_url=config.database_url,
        smtp=SmtpProbe(
            host=smtp.host,
            port=smtp.port,
            security=smtp.security,
            username=smtp.username,
            password=smtp_password,
            timeout=min(smtp.timeout, 30.0),
            ca_file=str(config.path(smtp.ca_file)) if smtp.ca_file else None,
            verify_tls=smtp.verify_tls,
        ),
        from_domain=config.sender.domain,
        envelope_domain=envelope.rpartition("@")[2].lower(),
        return_path=return_path,
        dkim_domain=dkim.domain.lower() if dkim is not None else None,
        dkim_keys=tuple(keys),
        base_url=config.web.base_url,
        this_host=socket.getfqdn(),
    )


def check_config(config: Config) -> Check:
    """The configuration as a send needs it: the files it names readable, no plain-http links
    or password in clear, the postal address set (the same checks `digest send` makes)."""
    from digest.errors import ConfigError
    from digest.ops.checks import failed, passed

    try:
        config.check_files()
        config.check_sending()
        config.check_sendable()
        config.smtp_password()
    except ConfigError as exc:
        return failed("config", exc.message, "correct the setting it names")
    return passed("config", f"{config.file} is valid")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    """Who is told and as whom (digest.ops.alerts)."""

    owner: str
    title: str  # site.title, so that an owner of several lists knows which one
    sender: str  # the From header: sender.from
    domain: str  # for the Message-ID: the From domain


def alert_settings(config: Config) -> AlertSettings | None:
    """None without `owner.email`: nobody to tell."""
    if not config.owner.email:
        return None
    return AlertSettings(
        owner=config.owner.email,
        title=config.site.title,
        sender=config.sender.from_,
        domain=config.sender.domain,
    )
