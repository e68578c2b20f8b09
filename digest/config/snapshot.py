"""What a validated configuration gave `digest posts`, kept so the next run need not validate.

Validating config.yaml means loading pydantic and building the schema's models: about 0.13 s
of CPU, more than the rest of a warm `digest posts` together. So when `digest posts` has
validated the configuration, it writes what it took from it (the `IssueSettings`, the
SQLite file of the database and the templates folder) to `<cache_dir>/config/<key>.json`,
and the next `digest posts` whose key matches uses that instead of validating again.

The key is a hash of everything validation depends on, so that a snapshot is only ever used
where validating would have given the same settings:
- the configuration file's path as it was resolved when it was read (symbolic links followed:
  a link switched while a command runs cannot file one folder's settings under another's
  key) and the SHA-256 of the very bytes validated (`Config.text_sha256`: a file edited
  during the validation gives another key, never settings of the old text under the new
  text's key);
- every `DIGEST_*` environment variable and its value (the overrides), and `HOME` (a `~` in a
  path is the home folder's);
- the code: digest.codestamp's stamp of digest's modules and of pydantic, pydantic-core,
  PyYAML, APScheduler and tzdata, and where the time-zone database is looked for.
What validation reads besides the file is checked again on every use: the user's templates
(digest.config.templatecheck, as `load_config` does), so a broken template is reported
whether or not a snapshot was used, and the time zones (a zone the system no longer knows is
a miss, and the validation words it). Validation that depends on the clock is never
snapshotted: a configuration with a cron expression not of the plain kind (whether it fires
within five years depends on the date) or with `web.rotated_at` (refused when in the future)
is validated every time. The limit is the code stamp's: a module edited with its size and
mtime put back is not seen (as with Python's own bytecode cache).

The file holds no secret of the secret keys (passwords, the web secret, tokens: they are not
part of what it keeps), the database only as a SQLite file's path (any other URL may carry a
password, and such a database needs the full configuration anyway), and a feed's URL as
configured; it is written 0600 in a folder of 0700, to a temporary name then renamed, so a
reader sees a whole file or none. A snapshot is used only when it and its folder belong to
the user running the command and no one else can write them (as ssh checks its files): in a
cache folder others can write, someone else's file is never trusted. Every value is
type-checked on load; anything unexpected (a damaged file, another format) is a miss and the
configuration is validated as usual. A folder that cannot be written only means no snapshot.

Where the cache folder is must be known before validating: it is read from the file's YAML
with the environment's overrides applied as validation applies them
(digest.config.files.apply_environment) and resolved as `Config.path` would; a value that is
not a plain string is no snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.codestamp import code_stamp
from digest.config.files import (
    ENV_PREFIX,
    ENV_RESERVED,
    MAX_CONFIG_BYTES,
    apply_environment,
    read_config_text,
    text_sha256,
)
from digest.config.issues import IssueSettings
from digest.errors import ConfigError
from digest.excerpt.settings import MATH_MODES, ExcerptSettings
from digest.sources.settings import FeedSource, FolderSource, SourceSettings

if TYPE_CHECKING:
    from digest.config.schema import Config

FORMAT = 1
DEFAULT_CACHE_DIR = "var/cache"
# What validation runs besides digest's own code.
VALIDATORS = ("pydantic", "pydantic_core", "yaml", "apscheduler", "tzdata")
GENERATORS = ("hexo", "hugo", "jekyll")


@dataclass(frozen=True, slots=True, kw_only=True)
class Known:
    """What `digest posts` takes from a validated configuration: the next issue's settings,
    the database's SQLite file (None: another database, opened with the full configuration),
    and the templates folder (checked on every use)."""

    issues: IssueSettings
    sqlite_url: str | None
    templates: Path


def known_from(config: Config) -> Known:
    """What `config` gives `digest posts` (digest.config.stages builds the settings)."""
    from digest.config.stages import issue_settings
    from digest.store.peek import sqlite_file

    url = config.database_url
    return Known(
        issues=issue_settings(config),
        sqlite_url=url if sqlite_file(url) is not None else None,
        templates=config.path(config.templates_dir),
    )


def write(config: Config, environ: Mapping[str, str] | None = None) -> Path | None:
    """Keep what `config` gives `digest posts` for the next run; the file written, or None
    when it cannot be (the key or the folder unknown, the folder not writable)."""
    environ = os.environ if environ is None else environ
    if not config.text_sha256 or config.resolved_file is None:
        return None  # not loaded from a file by load_config
    if not _timeless(config):
        return None
    cache_dir = config.path(config.cache_dir)
    target = _file(config.resolved_file, config.text_sha256, environ, cache_dir)
    text = json.dumps(_encode(known_from(config)), ensure_ascii=False, sort_keys=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            target.parent.mkdir(mode=0o700)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return None
    return target


def _timeless(config: Config) -> bool:
    """Whether validating `config` gives the same verdict whatever the date (see the module
    docstring): no cron expression but of the plain kind, no `web.rotated_at`."""
    from digest.config.cron import fires_surely

    return fires_surely(config.schedule.cron) and config.web.rotated_at is None


def read(file: Path, environ: Mapping[str, str] | None = None) -> Known | None:
    """The snapshot a validation of `file` as it is now, under `environ`, left; None when
    there is none to trust (then validate)."""
    environ = os.environ if environ is None else environ
    try:
        resolved = file.resolve()
        text = read_config_text(resolved)  # as validation reads it: a FIFO is not opened
    except (ConfigError, OSError, RuntimeError):  # RuntimeError: a symbolic link loop
        return None
    cache_dir = _cache_dir(text, resolved, environ)
    if cache_dir is None:
        return None
    target = _file(resolved, text_sha256(text), environ, cache_dir)
    try:
        with target.open("rb") as handle:
            if not (_ours(os.fstat(handle.fileno())) and _ours(target.parent.stat())):
                return None
            stored = json.loads(handle.read(MAX_CONFIG_BYTES))
        known = _decode(stored)
        if known is not None:
            _check_zones(known)
        return known
    except (OSError, ValueError, TypeError, KeyError, zoneinfo.ZoneInfoNotFoundError):
        return None


def _ours(status: os.stat_result) -> bool:
    """Owned by the user running the command, and writable by no one else."""
    return status.st_uid == os.geteuid() and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _check_zones(known: Known) -> None:
    """Every time zone the settings name is still known (ZoneInfoNotFoundError if not)."""
    issues = known.issues
    names = {issues.timezone, issues.schedule_timezone}
    names.update(s.timezone for s in issues.sources.sources if isinstance(s, FolderSource))
    for name in names:
        zoneinfo.ZoneInfo(name)


def _file(file: Path, text_sha256: str, environ: Mapping[str, str], cache_dir: Path) -> Path:
    described = {
        "format": FORMAT,
        "code": code_stamp(VALIDATORS),
        "file": str(file),  # resolved by the caller, when the file was read
        "text": text_sha256,
        "environment": sorted(
            (name, value)
            for name, value in environ.items()
            if name.startswith(ENV_PREFIX) and name not in ENV_RESERVED
        ),
        "home": os.path.expanduser("~"),
        "zones": list(zoneinfo.TZPATH),
    }
    key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]
    return cache_dir / "config" / f"{key}.json"


def _cache_dir(text: str, file: Path, environ: Mapping[str, str]) -> Path | None:
    """`cache_dir` as the validated configuration would resolve it (the file's YAML with the
    environment's overrides applied as `load_config` applies them); None if not plain."""
    import yaml

    from digest.sources.safeyaml import safe_load

    try:
        document = safe_load(text)
        if not isinstance(document, dict):
            return None
        apply_environment(document, environ)
    except (yaml.YAMLError, ConfigError):
        return None
    value = document.get("cache_dir", DEFAULT_CACHE_DIR)
    if not isinstance(value, str) or not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else file.parent / path


def _encode(known: Known) -> dict[str, Any]:
    issues = known.issues
    settings = issues.sources
    first = issues.first_issue
    return {
        "format": FORMAT,
        "sqlite_url": known.sqlite_url,
        "templates": str(known.templates),
        "issues": {
            "max_posts": issues.max_posts,
            "lookback_days": issues.lookback_days,
            "first_issue": first.isoformat() if isinstance(first, date) else first,
            "timezone": issues.timezone,
            "frequency": issues.frequency,
            "schedule_timezone": issues.schedule_timezone,
        },
        "sources": {
            "root": str(settings.root),
            "cache_dir": str(settings.cache_dir),
            "excerpt": {
                "length": settings.excerpt.length,
                "labels": settings.excerpt.labels,
                "math": settings.excerpt.math,
            },
            "list": [_encode_source(source) for source in settings.sources],
        },
    }


def _encode_source(source: FolderSource | FeedSource) -> dict[str, Any]:
    if isinstance(source, FeedSource):
        return {"type": "feed", "url": source.url, "timeout": source.timeout}
    return {
        "type": "folder",
        "folder": str(source.folder),
        "base_url": source.base_url,
        "permalink": source.permalink,
        "timezone": source.timezone,
        "generator": source.generator,
        "languages": list(source.languages),
        "language": source.language,
    }


def _decode(stored: Any) -> Known | None:
    """The snapshot's values, each checked for its type; None for anything unexpected."""
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        return None
    issues, sources = stored["issues"], stored["sources"]
    excerpt = sources["excerpt"]
    if excerpt["math"] not in MATH_MODES:
        return None
    first = issues["first_issue"]
    if isinstance(first, str):
        first = date.fromisoformat(first)
    elif first is not None and not _is_int(first):
        return None
    listed = sources["list"]
    if not isinstance(listed, list):
        return None
    settings = IssueSettings(
        sources=SourceSettings(
            sources=tuple(_decode_source(item) for item in listed),
            root=Path(_str(sources["root"])),
            cache_dir=Path(_str(sources["cache_dir"])),
            excerpt=ExcerptSettings(
                length=_int(excerpt["length"]),
                labels=_str(excerpt["labels"]),
                math=excerpt["math"],
            ),
        ),
        max_posts=_int(issues["max_posts"]),
        lookback_days=_int(issues["lookback_days"]),
        first_issue=first,
        timezone=_str(issues["timezone"]),
        frequency=_str(issues["frequency"]),
        schedule_timezone=_str(issues["schedule_timezone"]),
    )
    url = stored["sqlite_url"]
    return Known(
        issues=settings,
        sqlite_url=None if url is None else _str(url),
        templates=Path(_str(stored["templates"])),
    )


def _decode_source(item: Any) -> FolderSource | FeedSource:
    if item["type"] == "feed":
        timeout = item["timeout"]
        if not isinstance(timeout, int | float) or isinstance(timeout, bool):
            raise TypeError("timeout")
        return FeedSource(url=_str(item["url"]), timeout=timeout)
    if item["type"] != "folder":
        raise TypeError("type")
    generator = item["generator"]
    if generator is not None and generator not in GENERATORS:
        raise TypeError("generator")
    languages = item["languages"]
    if not isinstance(languages, list):
        raise TypeError("languages")
    language = item["language"]
    return FolderSource(
        folder=Path(_str(item["folder"])),
        base_url=_str(item["base_url"]),
        permalink=_str(item["permalink"]),
        timezone=_str(item["timezone"]),
        generator=generator,
        languages=tuple(_str(name) for name in languages),
        language=None if language is None else _str(language),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: object) -> int:
    if not _is_int(value):
        raise TypeError("not an integer")
    assert isinstance(value, int)
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value
