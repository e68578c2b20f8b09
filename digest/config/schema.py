"""Load and validate config.yaml, with `DIGEST_<SECTION>__<KEY>` environment overrides.

Every problem becomes one `ConfigError` sentence naming the file, the line and the key (or the
environment variable), so a typo never shows a traceback or a pydantic dump.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import os
import re
import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from digest.config.safeyaml import YamlLimitError, load_with_node
from digest.config.templatecheck import check_templates
from digest.errors import ConfigError
from digest.excerpt.tex import MathMode
from digest.links import check_permalink, is_loopback

ENV_PREFIX = "DIGEST_"
ENV_RESERVED = frozenset({"DIGEST_CONFIG", "DIGEST_DEBUG"})
DEFAULT_TIMEZONES = {"zh": "Asia/Shanghai", "en": "UTC"}
# The documented demo config.yaml is 12 KB; nothing real comes near this.
MAX_CONFIG_BYTES = 1024 * 1024


# Any number without a bound of its own stays within this, so that no setting can overflow
# a time or a count later on (a million hours is 114 years; days get bounds of their own).
NUMBER_CEILING = 1_000_000


class _Section(BaseModel):
    """Every section: unknown keys refused, no float infinite or NaN, and every number
    bounded: by its own `le`, else by NUMBER_CEILING."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        field = cls.model_fields[info.field_name] if info.field_name else None
        if field is not None and any(getattr(m, "le", None) is not None for m in field.metadata):
            return value
        if abs(value) > NUMBER_CEILING:
            raise ValueError(f"must be at most {NUMBER_CEILING:,} (in size)")
        return value


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone (e.g. Asia/Shanghai)") from None
    return value


def _check_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} must start with http:// or https://")
    return value.rstrip("/")


def _check_web_link(value: str) -> str:
    """A link the digest shows as it is (no trailing slash removed): http(s) only."""
    _check_http_url(value)
    return value


class SiteConfig(_Section):
    title: str
    base_url: str
    locale: Literal["zh", "en"] = "zh"
    timezone: str | None = None
    # Optional for posts, render and preview; a real send requires it (Config.check_sendable).
    postal_address: str | None = None
    permalink: str = "/posts/{slug}/"
    posts_url: str | None = None

    _url = field_validator("base_url")(_check_http_url)
    _posts_url = field_validator("posts_url")(lambda v: v if v is None else _check_web_link(v))
    _tz = field_validator("timezone")(_check_timezone)
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


class MarkdownSourceConfig(_Section):
    type: Literal["markdown"]
    path: Path
    permalink: str | None = None
    # The blog's generator: its rules for slugs, dates, drafts and URL fields (docs/blogs.md).
    generator: Literal["hexo", "hugo", "jekyll"] | None = None
    # Hugo multilingual: the site's languages, default first (`post.zh.md` is in zh, `post.md`
    # in the default), and the one this source reads (default: the first).
    languages: list[str] = []
    language: str | None = None

    _permalink = field_validator("permalink")(lambda v: v if v is None else check_permalink(v))


class FeedSourceConfig(_Section):
    type: Literal["feed"]
    url: str
    timeout: float = Field(default=15.0, gt=0, le=600)


SourceConfig = Annotated[MarkdownSourceConfig | FeedSourceConfig, Field(discriminator="type")]


class ExcerptConfig(_Section):
    length: int = Field(default=350, ge=1, le=10_000)
    # The language of the posts, for the [代码]/[code] labels (default: site.locale).
    labels: Literal["zh", "en"] | None = None
    # Which math delimiters the blog renders (digest.excerpt.tex, docs/excerpts.md).
    math: MathMode = "auto"


# The placeholders `digest.subject` may use (digest.render.edition.subject_for fills them in).
SUBJECT_PLACEHOLDERS = ("title", "period", "date", "long_date", "count", "first_title")


# A format spec may pad (`{count:>3}`), not build a megabyte-wide subject.
_MAX_FORMAT_NUMBER = 200


def _check_subject(value: str) -> str:
    try:
        parts = [
            (f, spec or "") for _, f, spec, _ in string.Formatter().parse(value) if f is not None
        ]
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid subject template: {exc}") from None
    for field, spec in parts:
        if field not in SUBJECT_PLACEHOLDERS:
            known = " ".join("{" + name + "}" for name in SUBJECT_PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{field}}}; the placeholders are {known}")
        if "{" in spec or any(int(n) > _MAX_FORMAT_NUMBER for n in re.findall(r"\d+", spec)):
            raise ValueError(
                f"{{{field}:{spec}}} is not a usable format (no nested fields, widths up to "
                f"{_MAX_FORMAT_NUMBER})"
            )
    sample: dict[str, Any] = {name: "x" for name in SUBJECT_PLACEHOLDERS} | {"count": 1}
    try:
        value.format(**sample)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"{value!r} is not a valid subject template: {exc}") from None
    return value


class DigestConfig(_Section):
    max_posts: int = Field(default=12, ge=1, le=1000)
    lookback_days: int = Field(default=30, ge=0, le=36_500)
    # Not the ISO week by default: "行路中 · 2026-W47" trips SpamAssassin's SUBJ_ALL_CAPS.
    subject: str = "{title} · {long_date}"

    _subject = field_validator("subject")(_check_subject)


class DatabaseConfig(_Section):
    url: str = "sqlite:///var/digest.sqlite3"
    # how long a sender, worker, scheduler or bounce reader waits out a database that went
    # away (a restart, a failover) before it stops; 0: stop at the first lost connection
    outage_seconds: float = Field(default=120.0, ge=0, le=86_400)


class SmtpConfig(_Section):
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


class DkimConfig(_Section):
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


class WebConfig(_Section):
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

    _url = field_validator("base_url")(_check_http_url)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network such as 10.0.0.0/8"
                ) from None
        return value

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


class PreviewConfig(_Section):
    """`digest preview`: Host names it answers to besides its bind address and localhost
    (a name in /etc/hosts, or the machine's name on a trusted network)."""

    allowed_hosts: list[str] = []


class SenderConfig(_Section):
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
        _, address = parseaddr(value)
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
    return parseaddr(header)[1]


# VERP: `local+TOKEN@domain` must keep its local part within 64 octets (RFC 5321 4.5.3.1.1);
# digest.inbound.verp's longest token (ids below 2**35) is 42 characters.
RETURN_PATH_LOCAL_MAX = 21


class ImapConfig(_Section):
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


class BouncesConfig(_Section):
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


Frequency = Literal["daily", "weekly", "monthly"]


class ScheduleConfig(_Section):
    frequency: Frequency = "weekly"
    cron: str = "0 9 * * mon"
    preset: str | None = None
    offer: list[Frequency] = Field(default_factory=lambda: list[Frequency](["monthly"]))
    timezone: str | None = None
    misfire_grace_hours: float = Field(default=6.0, ge=0, le=8760)
    retry_minutes: float = Field(default=10.0, gt=0, le=10_080)

    _tz = field_validator("timezone")(_check_timezone)

    @field_validator("cron")
    @classmethod
    def _cron_fires(cls, value: str) -> str:
        from digest.config.cron import check_cron

        check_cron(value)  # a syntax error, or a cron with no such date (31 February)
        return value

    @model_validator(mode="after")
    def _preset_sets_frequency(self) -> ScheduleConfig:
        if self.preset is not None:
            if "cron" in self.model_fields_set or "frequency" in self.model_fields_set:
                raise ValueError("give either preset or cron and frequency, not both")
            head = self.preset.split(":", 1)[0].strip().lower()
            if head not in ("daily", "weekly", "monthly"):
                raise ValueError(f"preset {self.preset!r} must start with daily, weekly or monthly")
            self.frequency = head  # type: ignore[assignment]
        return self

    @property
    def frequencies(self) -> list[str]:
        """The main frequency first, then the others subscribers may choose."""
        return [self.frequency, *(f for f in self.offer if f != self.frequency)]


class Config(_Section):
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
    templates_dir: Path = Path("templates")
    outbox: Path = Path("outbox")
    cache_dir: Path = Path("var/cache")
    state_dir: Path = Path("var/state")

    _root: Path = PrivateAttr(default=Path("."))
    _file: Path = PrivateAttr(default=Path("config.yaml"))

    @property
    def root(self) -> Path:
        """The folder relative paths in the configuration are resolved against."""
        return self._root

    @property
    def file(self) -> Path:
        return self._file

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

    def check_sendable(self) -> None:
        """What a real send needs and a dry run does not: the sender's postal address, which
        anti-spam laws (CAN-SPAM and others) want in every newsletter. Raises ConfigError."""
        if not (self.site.postal_address or "").strip():
            raise ConfigError(
                f"{self._file}: site.postal_address is required to send a digest (anti-spam "
                "laws want the sender's postal address in every newsletter); set it, or use "
                "`digest send --dry-run`."
            )

    def needed_files(self) -> list[tuple[str, Path]]:
        """(key, path) of every file a send, the scheduler or the public app will read: the
        password files in use (none when the password comes from the environment), CA files
        and DKIM keys."""
        smtp, dkim, bounces = self.smtp, self.dkim, self.bounces
        imap = bounces.imap
        candidates: list[tuple[str, Path | None]] = [
            ("smtp.password_file", smtp.password_file if smtp.password is None else None),
            ("smtp.ca_file", smtp.ca_file),
            ("dkim.key_file", dkim.key_file if dkim else None),
            ("dkim.ed25519_key_file", dkim.ed25519_key_file if dkim else None),
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
        return [(key, self.path(value)) for key, value in candidates if value is not None]

    def check_files(self) -> None:
        """Refuse, in one sentence naming the key and the path, a file the configuration names
        that does not exist or cannot be read (ConfigError, exit 2).

        `digest send`, `schedule` and `serve` call this before they change anything, so that a
        missing password file is not found after an issue was created; `posts`, `render` and
        `preview` do not, and work on a machine without the secrets.
        """
        for key, path in self.needed_files():
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
            raise ConfigError(f"{self._file}: {key}: {path} {problem}.")

    def check_sending(self, *, links: bool = True) -> None:
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
        web = urlsplit(self.web.base_url)
        if links and web.scheme != "https" and not is_loopback(web.hostname or ""):
            raise ConfigError(
                f"{self._file}: web.base_url: {self.web.base_url} is not https://, and every "
                "unsubscribe link of a real send is built on it (RFC 8058 needs HTTPS; only a "
                "loopback host may use http://)."
            )
        smtp = self.smtp
        has_login = bool(smtp.username) or smtp.password is not None or smtp.password_file
        if has_login and smtp.security == "none" and not is_loopback(smtp.host):
            raise ConfigError(
                f"{self._file}: smtp.security: none would send the SMTP password in clear to "
                f"smtp.host {smtp.host}; set smtp.security to starttls or tls (AUTH without "
                "encryption is allowed only to a loopback smtp.host)."
            )

    def smtp_password(self) -> str | None:
        if self.smtp.password is not None:
            return self.smtp.password.get_secret_value()
        if self.smtp.password_file is not None:
            return _read_secret(self.path(self.smtp.password_file), "smtp.password_file")
        return None

    def web_secret(self) -> str:
        """The signing secret: from config/environment, else a file created on first use."""
        if self.web.secret is not None:
            return self.web.secret.get_secret_value()
        path = self.path(self.web.secret_file)
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(secrets.token_urlsafe(32) + "\n")
            except FileExistsError:
                pass  # another process created it first: use theirs
            except OSError as exc:
                raise ConfigError(
                    f"web.secret_file: cannot create {path}: {exc.strerror}."
                ) from None
        return _read_secret(path, "web.secret_file")

    def imap_password(self) -> str | None:
        imap = self.bounces.imap
        if imap is None:
            return None
        if imap.password is not None:
            return imap.password.get_secret_value()
        if imap.password_file is not None:
            return _read_secret(self.path(imap.password_file), "bounces.imap.password_file")
        return None

    def postmark_password(self) -> str | None:
        bounces = self.bounces
        if bounces.postmark_password is not None:
            return bounces.postmark_password.get_secret_value()
        if bounces.postmark_password_file is not None:
            return _read_secret(
                self.path(bounces.postmark_password_file), "bounces.postmark_password_file"
            )
        return None


def _read_secret(path: Path, key: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}.") from None


def find_config(explicit: str | os.PathLike[str] | None) -> Path:
    """`--config`, else ./config.yaml, else $DIGEST_CONFIG (DESIGN.md section 6)."""
    if explicit is not None:
        return Path(explicit)
    local = Path("config.yaml")
    from_env = os.environ.get("DIGEST_CONFIG", "")
    return local if local.exists() or not from_env else Path(from_env)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, override from the environment, and validate; every failure is a ConfigError."""
    file = find_config(path)
    environ = os.environ if environ is None else environ
    text = _read_config_text(file)
    try:
        data, node = load_with_node(text)  # digest.config.safeyaml: no alias bomb, bounded nesting
        lines = _key_lines(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        if isinstance(exc, YamlLimitError):
            problem = f"the YAML is refused: {problem}"
        raise ConfigError(f"{file}{where}: {problem}.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the configuration must be a mapping of sections.")
    _refuse_secrets_in_file(data, file, lines)
    from_env = _apply_environment(data, environ)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, lines, from_env)) from None
    config._root = file.resolve().parent
    config._file = file
    check_templates(config.path(config.templates_dir))
    return config


def _read_config_text(file: Path) -> str:
    """The file's text: at most MAX_CONFIG_BYTES, and UTF-8 (the line of a bad byte named)."""
    try:
        if file.exists() and not file.is_file():
            raise ConfigError(f"{file}: the configuration is not a regular file.")
        with file.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found.") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the configuration file: {exc.strerror}.") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{file}: the configuration file is larger than {MAX_CONFIG_BYTES // 1024} KB."
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{file}, line {line}: the configuration is not valid UTF-8 (byte "
            f"0x{data[exc.start]:02x}); save it as UTF-8."
        ) from None


SECRET_KEYS = {
    ("smtp", "password"): "DIGEST_SMTP__PASSWORD or smtp.password_file",
    ("web", "secret"): "DIGEST_WEB__SECRET or web.secret_file",
    ("web", "previous_secret"): "DIGEST_WEB__PREVIOUS_SECRET",
    ("bounces", "postmark_password"): (
        "DIGEST_BOUNCES__POSTMARK_PASSWORD or bounces.postmark_password_file"
    ),
    ("bounces", "imap", "password"): (
        "DIGEST_BOUNCES__IMAP__PASSWORD or bounces.imap.password_file"
    ),
}


def _refuse_secrets_in_file(
    data: dict[str, Any], file: Path, lines: dict[tuple[str, ...], int]
) -> None:
    """Secrets come from the environment or a file the config names, never config.yaml."""
    for keys, where in SECRET_KEYS.items():
        value: Any = data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, ""):
            line = lines.get(keys)
            at = f", line {line}" if line else ""
            raise ConfigError(
                f"{file}{at}: {'.'.join(keys)} is a secret: set it with {where}, "
                "not in the configuration file."
            )


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], str]:
    """Apply DIGEST_A__B=value overrides in place; return which key paths came from which var."""
    applied: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
        if not all(parts):
            raise ConfigError(f"environment variable {name} does not name a configuration key.")
        value: Any = environ[name]
        if value.lstrip().startswith(("[", "{")):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(f"environment variable {name} is not valid JSON.") from None
        target = data
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        target[parts[-1]] = value
        applied[parts] = name
    return applied


def _key_lines(node: yaml.Node | None, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map every key path in the YAML document to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            if path in lines:
                raise yaml.constructor.ConstructorError(
                    problem=f"duplicate key {'.'.join(path)}", problem_mark=key.start_mark
                )
            lines[path] = key.start_mark.line + 1
            lines.update(_key_lines(value, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, str(index))
            lines[path] = item.start_mark.line + 1
            lines.update(_key_lines(item, path))
    return lines


def _describe(
    exc: ValidationError,
    file: Path,
    lines: dict[tuple[str, ...], int],
    from_env: dict[tuple[str, ...], str],
) -> str:
    # an unknown key usually explains the other errors (a typo makes a required key "missing")
    error = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    loc = tuple(str(p) for p in error["loc"] if not _is_union_tag(p))
    key = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        siblings = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], siblings, n=1)
        hint = f" (did you mean {'.'.join((*loc[:-1], close[0]))}?)" if close else ""
        message = f"unknown key {key}{hint}"
    elif kind == "missing":
        message = f"{key} is required but missing"
    else:
        reason = str(error["msg"]).removeprefix("Value error, ")
        message = f"{key}: {reason[0].lower()}{reason[1:]}" if reason else key
    env = next((v for k, v in from_env.items() if loc[: len(k)] == k), None)
    if env is not None:
        return f"{file}: {message} (set by environment variable {env})."
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
    where = f"{file}, line {line}" if line is not None else f"{file}"
    return f"{where}: {message}."


def _is_union_tag(part: object) -> bool:
    return part in ("markdown", "feed")


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] | None = Config
    for part in loc:
        if model is None:
            return []
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        if part == "sources":
            return [
                "type",
                "path",
                "url",
                "permalink",
                "timeout",
                "generator",
                "languages",
                "language",
            ]
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]
