"""What a validated configuration gave `digest posts`, kept so the next run need not validate.

Validating config.yaml means loading pydantic and building the schema's models: about 0.13 s
of CPU, more than the rest of a warm `digest posts` together. So when `digest posts` has
validated the configuration, it writes what it took from it (the `IssueSettings`, the
SQLite file of the database and the templates folder) to `<cache_dir>/config/<key>.json`,
and the next `digest posts` whose key matches uses that instead of validating again.

The key is a hash of everything validation depends on, so that a snapshot is only ever used
where validating would have given the same settings:
- the configuration file's resolved path and the SHA-256 of the very bytes validated
  (`Config.text_sha256`, taken as they were read: a file edited during the validation gives
  another key, never settings of the old text under the new text's key);
- every `DIGEST_*` environment variable and its value (the overrides);
- the code (digest.codestamp: digest's modules, pydantic, pydantic-core and PyYAML).
What validation reads besides the file, the user's templates, is checked again on every use
(digest.config.templatecheck, as `load_config` does), so a broken template is reported
whether or not a snapshot was used. Anything else a snapshot could go stale on is not read
by validation (secret files are read when used).

The file holds no secret (the settings are paths, the site's URL and time zones, feed URLs,
numbers; the database only as a SQLite file's path: any other URL may carry a password, and
such a database needs the full configuration anyway) and is written 0600, to a temporary
name then renamed, so a reader sees a whole file or none. Every value is type-checked on
load; anything unexpected (a damaged file, another format) is a miss and the configuration
is validated as usual. A folder that cannot be written only means no snapshot.

Where the cache folder is must be known before validating: it is read from the file's YAML
(and `DIGEST_CACHE_DIR`) as `Config.path` would resolve it; a value that is not a plain
string is no snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.codestamp import code_stamp
from digest.config.files import ENV_PREFIX, ENV_RESERVED, MAX_CONFIG_BYTES
from digest.config.issues import IssueSettings
from digest.excerpt.settings import MATH_MODES, ExcerptSettings
from digest.sources.settings import FeedSource, FolderSource, SourceSettings

if TYPE_CHECKING:
    from digest.config.schema import Config

FORMAT = 1
DEFAULT_CACHE_DIR = "var/cache"
# What validation runs besides digest's own code.
VALIDATORS = ("pydantic", "pydantic_core", "yaml")
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
    if not config.text_sha256:
        return None  # not loaded from a file by load_config
    target = _file(config.file, config.text_sha256, environ, config.path(config.cache_dir))
    text = json.dumps(_encode(known_from(config)), ensure_ascii=False, sort_keys=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return None
    return target


def read(file: Path, environ: Mapping[str, str] | None = None) -> Known | None:
    """The snapshot a validation of `file` as it is now, under `environ`, left; None when
    there is none to trust (then validate)."""
    environ = os.environ if environ is None else environ
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_CONFIG_BYTES:
        return None
    cache_dir = _cache_dir(data, file, environ)
    if cache_dir is None:
        return None
    target = _file(file, hashlib.sha256(data).hexdigest(), environ, cache_dir)
    try:
        with target.open("rb") as handle:
            stored = json.loads(handle.read(MAX_CONFIG_BYTES))
        return _decode(stored)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _file(file: Path, text_sha256: str, environ: Mapping[str, str], cache_dir: Path) -> Path:
    described = {
        "format": FORMAT,
        "code": code_stamp(VALIDATORS),
        "file": str(file.resolve()),
        "text": text_sha256,
        "environment": sorted(
            (name, value)
            for name, value in environ.items()
            if name.startswith(ENV_PREFIX) and name not in ENV_RESERVED
        ),
    }
    key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]
    return cache_dir / "config" / f"{key}.json"


def _cache_dir(data: bytes, file: Path, environ: Mapping[str, str]) -> Path | None:
    """`cache_dir` as the validated configuration would resolve it; None if not plain."""
    value: object = environ.get(f"{ENV_PREFIX}CACHE_DIR")
    if value is None:
        import yaml

        from digest.sources.safeyaml import safe_load

        try:
            document = safe_load(data.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError):
            return None
        if not isinstance(document, dict):
            return None
        value = document.get("cache_dir", DEFAULT_CACHE_DIR)
    if not isinstance(value, str) or not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else file.resolve().parent / path


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
