"""The configuration's schema: one pydantic model per section of config.yaml, and `Config`.

Only the shape and the rules of each value live here (the checks they share are in
digest.config.validators). Reading the file is digest.config.load, secrets are read by
digest.config.credentials, the checks before a send by digest.config.presend, and each
stage's narrow settings are built from a `Config` by digest.config.stages and
digest.config.sending. Only the entry points (cli, web, issues) hold a `Config`.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator

from digest.config.validators import (
    Section,
    check_http_url,
    check_nameserver,
    check_networks,
    check_origin,
    check_subject,
    check_timezone,
    check_web_link,
)
from digest.excerpt.settings import MathMode
from digest.inbound.settings import RETURN_PATH_LOCAL_MAX
from digest.links import check_permalink

DEFAULT_TIMEZONES = {"zh": "Asia/Shanghai", "en": "UTC"}


class SiteConfig(Section):
    title: str
    base_url: str
    locale: Literal["zh", "en"] = "zh"
    timezone: str | None = None
    # Optional for posts, render and preview; a real send requires it (Config.check_sendable).
    postal_address: str | None = None
    permalink: str = "/posts/{slug}/"
    posts_url: str | None = None

    _url = field_validator("base_url")(check_http_url)
    _posts_url = field_validator("posts_url")(lambda v: v if v is None else check_web_link(v))
    _tz = field_validator("timezone")(check_timezone)
    _permalink = field_validator("permalink")(check_permalink)

    @model_validator(mode="after")
    def _defaults(self) -> SiteConfig:
        if self.timezone is None:
            self.timezone = DEFAULT_TIMEZONES[self.locale]
        if self.posts_url is None:
            self.posts_url = f"{self.base_url}/archives/"
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")


class MarkdownSourceConfig(Section):
    type: Literal["markdown"]
    path: Path
    permalink: str | None = None
    # The blog's generator: its rules for slugs, dates, drafts and URL fields (docs/blogs.md).
    generator: Literal["hexo", "hugo", "jekyll"] | None = None
    # Hugo multilingual: the site's languages, default first (`post.zh.md` is in zh, `post.md`
    # in the default), and the one this source reads (default: the first).
    languages: list[str] = Field(default_factory=list)
    language: str | None = None

    _permalink = field_validator("permalink")(lambda v: v if v is None else check_permalink(v))


class FeedSourceConfig(Section):
    type: Literal["feed"]
    url: str
    timeout: float = Field(default=15.0, gt=0, le=600)


SourceConfig = Annotated[MarkdownSourceConfig | FeedSourceConfig, Field(discriminator="type")]


class ExcerptConfig(Section):
    length: int = Field(default=350, ge=1, le=10_000)
    # The language of the posts, for the [代码]/[code] labels (default: site.locale).
    labels: Literal["zh", "en"] | None = None
    # Which math delimiters the blog renders (digest.excerpt.tex, docs/excerpts.md).
    math: MathMode = "auto"


class DigestConfig(Section):
    max_posts: int = Field(default=12, ge=1, le=1000)
    lookback_days: int = Field(default=30, ge=0, le=36_500)
    # Where the first issue starts (digest.issues.select.FirstIssue): a date (the posts since
    # that day, however old; nothing dated before it is ever new) or a number N (the newest N
    # posts too, however old). None: lookback_days alone, as for every later issue.
    first_issue: date | int | None = None
    # Not the ISO week by default: "行路中 · 2026-W47" trips SpamAssassin's SUBJ_ALL_CAPS.
    subject: str = "{title} · {long_date}"

    _subject = field_validator("subject")(check_subject)

    @field_validator("first_issue", mode="before")
    @classmethod
    def _first_issue(cls, value: Any) -> date | int | None:
        if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
            return value
        text = str(value).strip()
        if isinstance(value, int | str) and not isinstance(value, bool) and text.isdigit():
            if not 1 <= int(text) <= MAX_FIRST_POSTS:
                raise ValueError(f"a number of posts must be 1 to {MAX_FIRST_POSTS}, not {text}")
            return int(text)
        if isinstance(value, str):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        raise ValueError(
            f"{value!r} is neither a date such as 2026-01-15 nor a number of posts such as 5"
        )


MAX_FIRST_POSTS = 1000


class DatabaseConfig(Section):
    url: str = "sqlite:///var/digest.sqlite3"
    # how long a sender, worker, scheduler or bounce reader waits out a database that went
    # away (a restart, a failover) before it stops; 0: stop at the first lost connection
    outage_seconds: float = Field(default=120.0, ge=0, le=86_400)


class SmtpConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    timeout: float = Field(default=30.0, gt=0, le=3600)
    connections: int = Field(default=4, ge=1, le=64)
    processes: int | None = Field(default=None, ge=1, le=16)
    messages_per_connection: int = Field(default=1000, ge=1, le=1_000_000)
    # messages of one connection marked in flight in one database write: the most a killed
    # sender can leave `unknown` per connection (digest.delivery.engine; README "Sending")
    pipeline: int = Field(default=5, ge=1, le=100)
    rate_per_second: float | None = Field(default=None, gt=0, le=1_000_000)
    rate_per_hour: int | None = Field(default=None, gt=0, le=1_000_000_000)
    retries: int = Field(default=3, ge=0, le=100)
    retry_delay: float = Field(default=5.0, ge=0, le=86_400)
    max_consecutive_failures: int = Field(default=10, ge=1, le=1_000_000)
    retry_hours: float = Field(default=48.0, gt=0, le=8760)
    heartbeat: float = Field(default=10.0, gt=0, le=3600)
    lease_timeout: float = Field(default=60.0, gt=0, le=86_400)
    ca_file: Path | None = None
    verify_tls: bool = True

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> SmtpConfig:
        if self.heartbeat >= self.lease_timeout:
            raise ValueError("heartbeat must be shorter than lease_timeout")
        return self


class DkimConfig(Section):
    domain: str
    selector: str
    key_file: Path
    ed25519_selector: str | None = None
    ed25519_key_file: Path | None = None

    @model_validator(mode="after")
    def _pairs(self) -> DkimConfig:
        if (self.ed25519_selector is None) != (self.ed25519_key_file is None):
            raise ValueError("ed25519_selector and ed25519_key_file go together")
        return self


class WebConfig(Section):
    # bounded: every personal link and the List-Unsubscribe header line are built on it
    base_url: str = Field(default="http://127.0.0.1:8080", max_length=400)
    secret: SecretStr | None = None
    secret_file: Path = Path("var/web-secret")
    previous_secret: SecretStr | None = None
    rotated_at: datetime | None = None
    rotation_overlap_days: int = Field(default=90, ge=0, le=3650)
    confirm_limit_per_address: int = Field(default=3, ge=1, le=1000)
    confirm_limit_per_ip: int = Field(default=10, ge=1, le=1_000_000)
    # Whose X-Forwarded-For/-Proto `digest serve` believes (digest.web.hosts): addresses or
    # networks; the default is a proxy on the same machine, [] when nothing is in front.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    # Exact origins (scheme://host[:port]) a sign-up may return to, and whose pages may post
    # the form with `fetch` (CORS): the blog's own origin. Nothing else is ever redirected to.
    return_to: list[str] = Field(default_factory=list)
    # The privacy notice the sign-up form links to.
    privacy_url: str | None = None

    _url = field_validator("base_url")(check_http_url)
    _privacy = field_validator("privacy_url")(lambda v: v if v is None else check_web_link(v))

    @field_validator("return_to")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [check_origin(entry) for entry in value]

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @model_validator(mode="after")
    def _rotation(self) -> WebConfig:
        """A previous secret is honoured only for the overlap after a stated rotation: without
        `rotated_at` it would verify links for ever (digest.tokens.Keyring)."""
        if self.previous_secret is not None and self.rotated_at is None:
            raise ValueError(
                "previous_secret (DIGEST_WEB__PREVIOUS_SECRET) needs rotated_at, the date the "
                "secret was changed, so that the old secret stops working after "
                "rotation_overlap_days"
            )
        if self.rotated_at is not None:
            rotated = self.rotated_at
            rotated = rotated if rotated.tzinfo else rotated.replace(tzinfo=UTC)
            if rotated > datetime.now(UTC) + timedelta(days=1):
                raise ValueError(f"rotated_at {self.rotated_at.isoformat()} is in the future")
        return self


class PreviewConfig(Section):
    """`digest preview`: Host names it answers to besides its bind address and localhost
    (a name in /etc/hosts, or the machine's name on a trusted network)."""

    allowed_hosts: list[str] = Field(default_factory=list)


class SenderConfig(Section):
    from_: str = Field(alias="from")
    reply_to: str | None = None
    list_id: str | None = None
    unsubscribe_mailto: str | None = None

    @field_validator("from_", "reply_to", "unsubscribe_mailto")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if any(c in value for c in "\r\n"):
            raise ValueError("must be on one line")
        _, address = _parse_address(value)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValueError(f"{value!r} is not an email address such as Name <me@example.com>")
        return value

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if any(c in value for c in "\r\n") or not re.fullmatch(
            r"[^<>]*<[^<>\s]+\.[^<>\s]+>\s*", value
        ):
            raise ValueError(
                f"{value!r} is not a list id such as My Blog <digest.example.com> (RFC 2919)"
            )
        return value

    @property
    def address(self) -> str:
        """The bare From address (parsed once: every message asks, twice)."""
        return _bare_address(self.from_)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@functools.lru_cache(maxsize=64)
def _bare_address(header: str) -> str:
    return _parse_address(header)[1]


def _parse_address(header: str) -> tuple[str, str]:
    from email.utils import parseaddr  # loaded when a sender is configured, not by every read

    return parseaddr(header)


class ImapConfig(Section):
    """The mailbox `digest bounces` reads over IMAP; the password only from env or a file."""

    host: str
    port: int | None = Field(default=None, ge=1, le=65535)  # default: 993 for tls, else 143
    security: Literal["none", "starttls", "tls"] = "tls"
    username: str
    password: SecretStr | None = None
    password_file: Path | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    timeout: float = Field(default=30.0, gt=0, le=3600)
    ca_file: Path | None = None
    verify_tls: bool = True

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


class BouncesConfig(Section):
    """What comes back: the VERP return path and where bounces are read (DESIGN.md 6, 8)."""

    return_path: str | None = None
    soft_limit: int = Field(default=3, ge=1, le=1000)
    poll_minutes: float | None = Field(default=None, gt=0, le=10_080)
    maildir: Path | None = None
    imap: ImapConfig | None = None
    postmark_user: str | None = None
    postmark_password: SecretStr | None = None
    postmark_password_file: Path | None = None
    ses_topic_arns: list[str] = Field(default_factory=list)

    @field_validator("return_path")
    @classmethod
    def _return_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local, at, domain = value.rpartition("@")
        if not at or not local or not domain or any(c in value for c in ' \t\r\n<>"(),;:[]'):
            raise ValueError(f"{value!r} is not a bare address such as bounces@example.com")
        if "+" in local:
            raise ValueError(f"{value!r}: the local part may not contain '+' (VERP adds it)")
        if len(local.encode()) > RETURN_PATH_LOCAL_MAX:
            raise ValueError(
                f"{value!r}: the local part may be at most {RETURN_PATH_LOCAL_MAX} characters, "
                "so that the VERP token fits in 64"
            )
        return value


class DnsConfig(Section):
    """The resolver `digest doctor` asks for every name (SPF, DKIM, DMARC, MX, and the SMTP
    and web hosts): `host:port` addresses; empty, the system's resolver."""

    nameservers: list[str] = Field(default_factory=list)

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        return [check_nameserver(entry) for entry in value]


class OwnerConfig(Section):
    """Who is told when something goes wrong (digest.ops.alerts): a bare address."""

    email: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local, at, domain = value.rpartition("@")
        if not at or not local or not domain or any(c in value for c in ' \t\r\n<>"(),;:[]'):
            raise ValueError(f"{value!r} is not a bare address such as me@example.com")
        return value


class MetricsConfig(Section):
    """Who may read `/metrics` of `digest serve`: loopback, the `allow` networks, and any
    client presenting the bearer token (from DIGEST_METRICS__TOKEN or `token_file`)."""

    allow: list[str] = Field(default_factory=list)
    token: SecretStr | None = None
    token_file: Path | None = None

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return check_networks(value)


class SignupConfig(Section):
    """What the sign-up form asks of a stranger (digest.audience.guard, docs/signup.md).

    `challenge`: when the ALTCHA proof of work is required: `auto` once `challenge_after`
    sign-ups came from one address (or its /24, /48 network) within the hour, `always`, or
    `never`. `min_fill_seconds`: a form sent back sooner than this after it was served is a
    script's. `blocked_domains`: domains (and their subdomains) refused; `block_disposable`
    also refuses the disposable-address services listed by `disposable-email-domains`, except
    those in `allowed_domains`. Unconfirmed sign-ups go after `pending_days`.
    """

    challenge: Literal["auto", "always", "never"] = "auto"
    challenge_after: int = Field(default=3, ge=0, le=1_000_000)
    challenge_cost: int = Field(default=5_000, ge=100, le=1_000_000)
    min_fill_seconds: float = Field(default=2.0, ge=0, le=3600)
    max_form_age_hours: float = Field(default=24.0, gt=0, le=720)
    blocked_domains: list[str] = Field(default_factory=list)
    allowed_domains: list[str] = Field(default_factory=list)
    block_disposable: bool = True
    pending_days: int = Field(default=7, ge=1, le=365)

    @field_validator("blocked_domains", "allowed_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            domain = entry.strip().lower().lstrip("@").rstrip(".")
            if not domain or any(c in domain for c in " \t/@:") or "." not in domain:
                raise ValueError(f"{entry!r} is not a domain such as example.com")
            out.append(domain)
        return out


class TrackingConfig(Section):
    """Click counting (digest.web.clicks): `off` (no link is changed), `aggregate` (the issue
    and the link, nobody named) or `personal` (the delivery too; the sign-up page says so).
    A click within `scanner_seconds` of delivery from a user agent that looks like a mail
    scanner is counted apart, as are HEAD requests and prefetches. No open pixel, ever."""

    clicks: Literal["off", "aggregate", "personal"] = "off"
    scanner_seconds: float = Field(default=60.0, ge=0, le=86_400)

    @field_validator("clicks", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML reads a bare `off` as false


WebhookEvent = Literal[
    "subscribed", "confirmed", "unsubscribed", "bounced", "complained", "issue.finished"
]


class WebhookConfig(Section):
    """One receiver of outgoing webhooks (digest.webhooks): its URL, the events it gets (all
    when empty) and its Standard Webhooks secret (`whsec_…`), from `secret_file` or the
    environment (DIGEST_WEBHOOKS__<N>__SECRET), never the file itself."""

    url: str
    events: list[WebhookEvent] = Field(default_factory=list)
    secret: SecretStr | None = None
    secret_file: Path | None = None

    _url = field_validator("url")(check_web_link)

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookConfig:
        if self.secret is None and self.secret_file is None:
            raise ValueError("a webhook needs secret_file (or DIGEST_WEBHOOKS__N__SECRET)")
        return self


Frequency = Literal["daily", "weekly", "monthly"]


class ScheduleConfig(Section):
    frequency: Frequency = "weekly"
    cron: str = "0 9 * * mon"
    preset: str | None = None
    offer: list[Frequency] = Field(default_factory=lambda: list[Frequency](["monthly"]))
    timezone: str | None = None
    misfire_grace_hours: float = Field(default=6.0, ge=0, le=8760)
    retry_minutes: float = Field(default=10.0, gt=0, le=10_080)

    _tz = field_validator("timezone")(check_timezone)

    @field_validator("cron")
    @classmethod
    def _cron_fires(cls, value: str) -> str:
        from digest.config.cron import check_cron, fires_surely

        if not fires_surely(value):  # the plain kind, as the default, needs no scheduler
            check_cron(value)  # a syntax error, or a cron with no such date (31 February)
        return value

    @model_validator(mode="after")
    def _preset_sets_frequency(self) -> ScheduleConfig:
        if self.preset is not None:
            if "cron" in self.model_fields_set or "frequency" in self.model_fields_set:
                raise ValueError("give either preset or cron and frequency, not both")
            from digest.config.cron import preset_frequency

            self.frequency = preset_frequency(self.preset)  # type: ignore[assignment]
        return self

    @property
    def frequencies(self) -> list[str]:
        """The main frequency first, then the others subscribers may choose."""
        return [self.frequency, *(f for f in self.offer if f != self.frequency)]


class Config(Section):
    site: SiteConfig
    sources: list[SourceConfig] = Field(min_length=1)
    excerpt: ExcerptConfig = ExcerptConfig()
    digest: DigestConfig = DigestConfig()
    database: DatabaseConfig = DatabaseConfig()
    smtp: SmtpConfig = SmtpConfig()
    sender: SenderConfig = SenderConfig.model_validate({"from": "digest@localhost"})
    dkim: DkimConfig | None = None
    bounces: BouncesConfig = BouncesConfig()
    web: WebConfig = WebConfig()
    preview: PreviewConfig = PreviewConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    dns: DnsConfig = DnsConfig()
    owner: OwnerConfig = OwnerConfig()
    metrics: MetricsConfig = MetricsConfig()
    signup: SignupConfig = SignupConfig()
    tracking: TrackingConfig = TrackingConfig()
    welcome: bool = True
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    templates_dir: Path = Path("templates")
    outbox: Path = Path("outbox")
    cache_dir: Path = Path("var/cache")
    state_dir: Path = Path("var/state")

    _root: Path = PrivateAttr(default=Path("."))
    _file: Path = PrivateAttr(default=Path("config.yaml"))
    # where values came from (digest.config.effective): key paths written in the file, and
    # those the environment set (with the variable's name)
    _in_file: frozenset[tuple[str, ...]] = PrivateAttr(default=frozenset())
    _from_env: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)
    # the SHA-256 of the file's bytes that were validated and the file's path resolved when
    # it was read (digest.config.snapshot keys on both)
    _text_sha256: str = PrivateAttr(default="")
    _resolved: Path | None = PrivateAttr(default=None)

    @property
    def root(self) -> Path:
        """The folder relative paths in the configuration are resolved against."""
        return self._root

    @property
    def file(self) -> Path:
        return self._file

    @property
    def text_sha256(self) -> str:
        return self._text_sha256

    @property
    def resolved_file(self) -> Path | None:
        """The file's path with every symbolic link resolved, as it was when it was read."""
        return self._resolved

    def path(self, value: Path | str) -> Path:
        """Resolve a path from the configuration relative to the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._root / path

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite file made relative to the config file."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(url[len(prefix) :]))
        return url

    @property
    def schedule_timezone(self) -> str:
        return self.schedule.timezone or self.site.timezone or "UTC"

    @property
    def schedule_tz(self) -> ZoneInfo:
        return ZoneInfo(self.schedule_timezone)
