"""The settings of digest.ops, built from the configuration: what `digest doctor` checks and
who the owner's alerts go to (each a small frozen object; the checks never see `Config`)."""

from __future__ import annotations

import socket

from digest.config.schema import Config
from digest.ops.settings import AlertSettings, DoctorSettings, KeyFile, SmtpProbe


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
