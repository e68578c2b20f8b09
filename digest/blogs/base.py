"""The parts every blog reader shares: the settings it fills, and reading a config's values.

A blog's configuration may hold anything (a key missing, a string where a table should be), so
every accessor here returns None or an empty table rather than failing; a file that does not
parse is one ConfigError sentence naming it.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from digest.config.safeyaml import safe_load
from digest.errors import ConfigError
from digest.excerpt.settings import MathMode
from digest.sources.permalinks import Translation
from digest.sources.settings import Generator


@dataclass(slots=True)
class BlogSettings:
    """A blog's settings as digest needs them; None where the blog's config does not say."""

    generator: Generator
    root: Path
    config_file: str
    posts: Path
    title: str | None = None
    base_url: str | None = None
    permalink: str = "/posts/{slug}/"
    blog_permalink: str = ""
    locale: str | None = None
    timezone: str | None = None
    math: MathMode | None = None
    math_source: str = ""
    languages: list[str] = field(default_factory=list)  # Hugo's, the one read first
    notes: list[str] = field(default_factory=list)  # what could not be carried over


def load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = safe_load(text)  # digest.config.safeyaml: no alias bomb
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the blog's configuration: {exc}.") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: the blog's configuration is not valid: nested too deeply."
        ) from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: the blog's configuration is not valid: {reason}.") from None
    return data if isinstance(data, dict) else {}


def lower_keys(value: Any) -> Any:
    """Hugo's configuration keys are case-insensitive."""
    if isinstance(value, dict):
        return {str(k).lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def text_value(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def locale_of(value: Any) -> str | None:
    code = text_value(value[0] if isinstance(value, list) and value else value)
    if code is None or code.lower() == "default":
        return None
    return "zh" if code.lower().startswith("zh") else "en"


def set_timezone(value: Any, settings: BlogSettings, key: str) -> None:
    zone = text_value(value)
    if zone is None:
        return
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        settings.notes.append(f"{key} {zone!r} is not a time zone digest knows; left out")
        return
    settings.timezone = zone


def set_base_url(value: str | None, settings: BlogSettings, key: str) -> None:
    if value is None:
        return
    if value.startswith("//"):
        value = "https:" + value
    if not value.startswith(("http://", "https://")):
        settings.notes.append(f"{key} {value!r} is not an absolute http(s) URL; left out")
        return
    settings.base_url = value.rstrip("/")


def set_permalink(settings: BlogSettings, translation: Translation, original: str) -> None:
    settings.permalink = translation.pattern
    settings.blog_permalink = original
    for token in translation.unsupported:
        settings.notes.append(f"the permalink token {token} has no digest field; it is left out")
    for token in translation.from_front_matter:
        settings.notes.append(f"the permalink token :{token} is read from each post's front matter")


def table(config: dict[str, Any], key: str) -> dict[str, Any]:
    """`config[key]` when it is a mapping, else an empty one (a blog config may hold anything)."""
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def truthy(value: Any) -> bool:
    if isinstance(value, dict):
        return truthy(value.get("enable", value.get("enabled", True)))
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "on"))
