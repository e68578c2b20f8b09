"""What the send stage reads from the configuration, as frozen values it can carry anywhere.

Built by the entry points from `Config` (digest.config.sending); the delivery stage never
sees the `Config` itself. A `DeliverySettings` is what a sending process receives (it is
pickled into spawned ones): secrets already read (the SMTP password, the signing keys),
paths already resolved, defaults already applied. Standard library only (the keyring's type
is named for the type checker alone), so holding one loads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from digest.render.settings import RenderSettings

if TYPE_CHECKING:
    from digest.tokens import Keyring

CHUNK = 20  # recipients claimed at a time per connection
# messages of a connection marked in flight in one write (`smtp.pipeline`'s default): at most
# this many `unknown` per connection when a sender is killed (measured in CHANGELOG.md, issue 20)
GROUP = 5

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSettings:
    """How to reach the SMTP server (`smtp.*`; the send policy is `Policy`): the password
    read, the CA file resolved."""

    host: str
    port: int
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ca_file: str | None = None
    verify_tls: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How a run sends (`smtp.*`): connections, the rate limits, retries within the run and
    deferral after it (digest.delivery.retry), how long a stop may take, the recipients
    claimed at a time per connection (`chunk`) and marked in flight in one write (`group`,
    `smtp.pipeline`)."""

    connections: int = 2
    messages_per_connection: int = 1000
    rate_per_second: float | None = None
    rate_per_hour: int | None = None
    retries: int = 3
    retry_delay: float = 5.0
    max_consecutive_failures: int = 5
    retry_hours: float = 48.0
    stop_grace: float = 35.0
    chunk: int = CHUNK
    group: int = GROUP


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimSettings:
    """The DKIM keys (`dkim.*`, files resolved; read when a signer is made): RSA, and an
    Ed25519 key as a second signature."""

    domain: str
    selector: str
    key_file: Path
    ed25519_selector: str | None = None
    ed25519_key_file: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderSettings:
    """Who a message is from (`sender.*`): the From `header` and its bare `address` and
    `domain`, the List-Id (configured, else derived from the site), Reply-To, the
    List-Unsubscribe mailto, and `bounces.return_path` for VERP envelope senders."""

    header: str
    address: str
    domain: str
    list_id: str
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None
    return_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ComposeSettings:
    """Everything one recipient's message is built from: the sender, the web app's base URL
    (the personal links), the keys that sign them, the rendering (its site's locale is the
    default variant) and DKIM."""

    sender: SenderSettings
    web_base_url: str
    keys: Keyring
    render: RenderSettings
    dkim: DkimSettings | None = None
    clicks: Literal["off", "aggregate", "personal"] = "off"  # `tracking.clicks`


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverySettings:
    """One issue's send, as every sending process needs it: composing, the SMTP server, the
    policy, the database to claim from, the number of processes (`smtp.processes`; None:
    chosen by the queue's size), claims and heartbeats (`smtp.lease_timeout`,
    `smtp.heartbeat`), `bounces.soft_limit`, the schedule's time zone (for the times an
    issue's status names), the folder of this machine's outcome journals (`state_dir`,
    resolved; digest.delivery.journal) and how long a database away is waited out
    (`database.outage_seconds`)."""

    compose: ComposeSettings
    smtp: SmtpSettings
    policy: Policy
    database_url: str
    processes: int | None = None
    claim_seconds: float = 60.0
    heartbeat: float = 10.0
    soft_limit: int = 3
    timezone: str = "UTC"
    state_dir: Path = Path("var/state")
    outage_seconds: float = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WelcomeSettings:
    """What a welcome mail is built from (digest.delivery.welcome): rendering (templates,
    site), the sender, the public app's URL and the keys its links are signed with."""

    render: RenderSettings
    sender: SenderSettings
    web_base_url: str
    keys: Keyring


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    """One receiver of outgoing webhooks (`webhooks[]`): its URL, the event types it gets
    (every type when empty) and its Standard Webhooks secret, already read."""

    url: str
    events: tuple[str, ...]
    secret: str
