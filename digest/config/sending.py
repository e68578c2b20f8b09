"""Config -> the settings of the stages that send and read what comes back: delivery, inbound.

This module is where every such settings object is built from a `Config` (the reading side
is digest.config.stages); the entry points (cli, web, issues) call it and hand the result
down, so no stage below them holds the `Config`, and a sending process receives a
`DeliverySettings` instead of a pickled `Config`. Secrets are read here, when a builder that
needs one is called (digest.config.credentials), never by the stages: `smtp_settings` reads
the SMTP password, `compose_settings` and `inbound_settings` the web secret, `mailbox_settings`
the IMAP password only when IMAP is the mailbox to read.
"""

from __future__ import annotations

from pathlib import Path

from digest.config.credentials import imap_password, keyring, smtp_password
from digest.config.schema import Config
from digest.config.stages import render_settings
from digest.delivery.settings import (
    ComposeSettings,
    DeliverySettings,
    DkimSettings,
    Policy,
    SenderSettings,
    SmtpSettings,
    WebhookSettings,
    WelcomeSettings,
)
from digest.inbound.settings import ImapSettings, InboundSettings, MailboxSettings


def smtp_settings(config: Config) -> SmtpSettings:
    """How to reach the SMTP server (a send, a test copy, the confirmation mails)."""
    smtp = config.smtp
    return SmtpSettings(
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username,
        password=smtp_password(config),
        timeout=smtp.timeout,
        ca_file=str(config.path(smtp.ca_file)) if smtp.ca_file else None,
        verify_tls=smtp.verify_tls,
    )


def policy(config: Config) -> Policy:
    """The send policy of `smtp.*`; a stop waits for one SMTP timeout and 5 s more."""
    smtp = config.smtp
    return Policy(
        connections=smtp.connections,
        messages_per_connection=smtp.messages_per_connection,
        rate_per_second=smtp.rate_per_second,
        rate_per_hour=smtp.rate_per_hour,
        retries=smtp.retries,
        retry_delay=smtp.retry_delay,
        max_consecutive_failures=smtp.max_consecutive_failures,
        retry_hours=smtp.retry_hours,
        stop_grace=smtp.timeout + 5,
        group=smtp.pipeline,
    )


def dkim_settings(config: Config) -> DkimSettings | None:
    """The DKIM keys' files (resolved) and names, or None when `dkim` is not set."""
    dkim = config.dkim
    if dkim is None:
        return None
    return DkimSettings(
        domain=dkim.domain,
        selector=dkim.selector,
        key_file=config.path(dkim.key_file),
        ed25519_selector=dkim.ed25519_selector,
        ed25519_key_file=config.path(dkim.ed25519_key_file) if dkim.ed25519_key_file else None,
    )


def sender_settings(config: Config) -> SenderSettings:
    """`sender.*` and `bounces.return_path`; the List-Id defaults to the site's title and
    host (`My Blog <digest.example.com>`)."""
    sender, site = config.sender, config.site
    host = site.base_url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    return SenderSettings(
        header=sender.from_,
        address=sender.address,
        domain=sender.domain,
        list_id=sender.list_id or f"{site.title} <digest.{host}>",
        reply_to=sender.reply_to,
        unsubscribe_mailto=sender.unsubscribe_mailto,
        return_path=config.bounces.return_path,
    )


def compose_settings(config: Config) -> ComposeSettings:
    """What each recipient's message is built from (reads the web secret)."""
    return ComposeSettings(
        sender=sender_settings(config),
        web_base_url=config.web.base_url,
        keys=keyring(config),
        render=render_settings(config),
        dkim=dkim_settings(config),
        clicks=config.tracking.clicks,
    )


def delivery_settings(config: Config) -> DeliverySettings:
    """One issue's send as every sending process needs it (reads the SMTP password and the
    web secret)."""
    smtp = config.smtp
    return DeliverySettings(
        compose=compose_settings(config),
        smtp=smtp_settings(config),
        policy=policy(config),
        database_url=config.database_url,
        processes=smtp.processes,
        claim_seconds=smtp.lease_timeout,
        heartbeat=smtp.heartbeat,
        soft_limit=config.bounces.soft_limit,
        timezone=config.schedule_timezone,
        state_dir=config.path(config.state_dir),
        outage_seconds=config.database.outage_seconds,
    )


def inbound_settings(config: Config) -> InboundSettings:
    """The keys and return path bounces are recognised by, and the soft-bounce limit."""
    return InboundSettings(
        keys=keyring(config),
        return_path=config.bounces.return_path,
        soft_limit=config.bounces.soft_limit,
    )


def mailbox_settings(
    config: Config, maildir: Path | None = None, mbox: Path | None = None
) -> MailboxSettings:
    """The mailbox `digest bounces` and the scheduler's poll read: the one the options name,
    else `bounces.maildir`, else `bounces.imap` (its password read only then). Nothing set:
    no mailbox (digest.inbound.process.open_mailbox says what to set)."""
    if maildir is not None or mbox is not None:
        return MailboxSettings(maildir=maildir, mbox=mbox)
    bounces = config.bounces
    if bounces.maildir is not None:
        return MailboxSettings(maildir=config.path(bounces.maildir))
    imap = bounces.imap
    if imap is None:
        return MailboxSettings()
    return MailboxSettings(
        imap=ImapSettings(
            host=imap.host,
            port=imap.effective_port,
            security=imap.security,
            username=imap.username,
            password=imap_password(config),
            folder=imap.folder,
            processed_folder=imap.processed_folder,
            timeout=imap.timeout,
            ca_file=config.path(imap.ca_file) if imap.ca_file else None,
            verify_tls=imap.verify_tls,
        )
    )


def welcome_settings(config: Config) -> WelcomeSettings:
    """What a welcome mail is built from (reads the web secret)."""
    return WelcomeSettings(
        render=render_settings(config),
        sender=sender_settings(config),
        web_base_url=config.web.base_url,
        keys=keyring(config),
    )


def webhook_settings(config: Config) -> list[WebhookSettings]:
    """The configured webhook receivers, secrets read (from DIGEST_WEBHOOKS__N__SECRET or
    `secret_file`)."""
    from digest.config.credentials import webhook_secret

    return [
        WebhookSettings(url=hook.url, events=tuple(hook.events), secret=webhook_secret(config, n))
        for n, hook in enumerate(config.webhooks)
    ]
