"""The parts every blog reader shares: the settings it fills, and reading a config's values.

A blog's configuration may hold anything (a key missing, a string where a table should be), so
every accessor here returns None or an empty table rather than failing; a file that does not
parse is one ConfigError sentence naming it.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from digest.errors import ConfigError
from digest.excerpt.settings import MathMode
from digest.sources.permalinks import Translation
from digest.sources.safeyaml import safe_load
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
    posts_path: str = "/"  # the blog's list of posts, under the base URL
    posts_path_source: str = ""  # which of the generator's rules gave it
    posts_path_guessed: bool = True  # the site root, for want of a rule that applies
    notes: list[str] = field(default_factory=list)  # what could not be carried over


def load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = safe_load(text)  # digest.sources.safeyaml: no alias bomb
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


def set_posts_url(settings: BlogSettings, path: str, source: str, *, guessed: bool = False) -> None:
    """The blog's list of posts at `path` under the base URL ("/" the site root), and why."""
    path = "/" + path.strip("/")
    if "." not in path.rsplit("/", 1)[-1]:  # a folder, not archives.html
        path = path.rstrip("/") + "/"
    settings.posts_path = path
    settings.posts_path_source = source
    settings.posts_path_guessed = guessed


# A theme's files that load math are small; a theme folder is read only this far.
_THEME_FILES = 2000
_THEME_FILE_BYTES = 256 * 1024
_MATH_CODE = re.compile(r"math-code(?:\.min)?\.js")
_DOLLAR_INLINE = re.compile(
    r"""inlineMath\s*[:=]\s*\[\s*\[\s*['"]\$['"]|"""
    r"""left\s*:\s*['"]\$['"]\s*,\s*right\s*:\s*['"]\$['"]"""
)
_LOADS_MATH = re.compile(r"mathjax|katex", re.IGNORECASE)
_SCRIPT_MATH = re.compile(r"<script[^>]*(?:mathjax|katex)", re.IGNORECASE)
_PER_PAGE = re.compile(
    r"""\b(?:page|Params|post)\.(?:math|mathjax|katex)\b|\.Param\s+"(?:math|mathjax|katex)\"""",
    re.IGNORECASE,
)
# Themes that render math written in code spans with math-code.js, when they come as a Hugo
# module or a gem (their files are not in the blog's folder).
MATH_CODE_THEMES = frozenset({"hugo-lithium", "hugo-xmin", "hugo-prose", "hugo-ivy"})


@dataclass(frozen=True, slots=True)
class ThemeMath:
    """What a blog's own layouts and theme files say about math, read from their text."""

    math_code: str | None = None  # a file that loads math-code.js
    dollars: str | None = None  # a template that loads MathJax/KaTeX on every page, with `$`
    per_page: str | None = None  # one that loads it only when a page asks (`page.math`)


def theme_math(root: Path, folders: list[Path]) -> ThemeMath:
    """Scan the layouts, includes and scripts in `folders` (relative names reported to `root`)
    for math-code.js and for MathJax or KaTeX configured with `$…$` inline.

    A script file (`.js`) only says which delimiters; a template says when the engine loads:
    inside a page-level condition (`{% if page.math %}`, `.Params.math`) only for the pages
    that ask, else on every page. Every page counts only when no template loads it per page
    (a theme that does both is read as per page: nothing is labelled math that may be prose).
    """
    math_code = every_page = per_page = None
    delimiters = False
    for path in _theme_files(folders):
        name = Path(os.path.relpath(path, root)).as_posix()
        if _MATH_CODE.search(path.name):
            math_code = math_code or name
            continue
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                text = handle.read(_THEME_FILE_BYTES)
        except OSError:
            continue
        if _MATH_CODE.search(text):
            math_code = math_code or name
        delimiters = delimiters or bool(_DOLLAR_INLINE.search(text))
        if path.suffix.lower() == ".js" or not _LOADS_MATH.search(text):
            continue
        if _PER_PAGE.search(text):
            per_page = per_page or name
        elif _DOLLAR_INLINE.search(text) or _SCRIPT_MATH.search(text):
            every_page = every_page or name
    dollars = every_page if delimiters and per_page is None else None
    return ThemeMath(math_code, dollars, per_page if delimiters else None)


def _theme_files(folders: list[Path]) -> Iterator[Path]:
    """Template and script files under `folders`, in name order, at most _THEME_FILES, skipping
    hidden folders and node_modules."""
    seen = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for directory, subfolders, files in os.walk(folder):
            subfolders[:] = sorted(
                d for d in subfolders if not d.startswith(".") and d != "node_modules"
            )
            for name in sorted(files):
                if Path(name).suffix.lower() in _TEMPLATE_SUFFIXES:
                    seen += 1
                    if seen > _THEME_FILES:
                        return
                    yield Path(directory) / name


_TEMPLATE_SUFFIXES = frozenset({".html", ".htm", ".js", ".liquid", ".njk", ".ejs", ".swig"})


def table(config: dict[str, Any], key: str) -> dict[str, Any]:
    """`config[key]` when it is a mapping, else an empty one (a blog config may hold anything)."""
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def site_switch(settings: dict[str, Any]) -> bool | None:
    """A site-wide math switch (`math`, `mathjax` or `katex`: true, or a table whose `enable`
    is true), None when there is none. A table of other settings (jekyll-katex's paths) is no
    switch: such plugins render tags, not `$…$`."""
    for key in ("math", "mathjax", "katex"):
        value = settings.get(key)
        if isinstance(value, dict):
            value = value.get("enable", value.get("enabled"))
        if value is None:
            continue
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "false", "no", "off"):
            return text in ("true", "yes", "on")
        if text in ("mathjax", "katex"):
            return True
    return None


def truthy(value: Any) -> bool:
    if isinstance(value, dict):
        return truthy(value.get("enable", value.get("enabled", True)))
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "on"))
