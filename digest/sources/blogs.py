"""What a Hexo, Hugo or Jekyll blog's own configuration says, for `digest init`.

`detect(folder)` recognises the blog and reads its settings: title, base URL, the posts folder,
the permalink (translated by digest.sources.permalinks), language, time zone and the math its
pages render. Each reader notes what it found and what it could not, in sentences `digest init`
prints as they are.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from digest.errors import ConfigError
from digest.sources.fields import Generator
from digest.sources.markdown import SUFFIXES
from digest.sources.permalinks import Translation, hexo_pattern, hugo_pattern, jekyll_pattern
from digest.tex import MathMode

HUGO_FILES = tuple(
    f"{name}.{ext}" for name in ("hugo", "config") for ext in ("toml", "yaml", "yml", "json")
)
_HEXO_MATH_PACKAGES = (
    "hexo-filter-mathjax",
    "hexo-renderer-pandoc",
    "hexo-renderer-kramed",
    "hexo-math",
    "hexo-katex",
    "hexo-renderer-markdown-it-plus",
    "@upupming/hexo-renderer-markdown-it-plus",
    "markdown-it-katex",
    "@renbaoshuo/markdown-it-katex",
    "@traptitech/markdown-it-katex",
)


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
    notes: list[str] = field(default_factory=list)  # what could not be carried over


def detect(folder: Path) -> BlogSettings:
    """Recognise the blog in `folder` (Hexo, Hugo or Jekyll) and read its settings."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder.")
    has_config = (folder / "_config.yml").is_file()
    if has_config and (_is_hexo(folder)):
        return _hexo(folder)
    if has_config and _is_jekyll(folder):
        return _jekyll(folder)
    if (
        any((folder / name).is_file() for name in HUGO_FILES)
        or (folder / "config" / "_default").is_dir()
    ):
        return _hugo(folder)
    raise ConfigError(
        f"{folder}: not a Hexo, Hugo or Jekyll blog (no _config.yml with source/_posts or "
        "_posts, and no hugo.toml or config.toml); give the blog's folder: digest init BLOG_DIR."
    )


# -- shared helpers -----------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the blog's configuration: {exc}.") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: the blog's configuration is not valid: {reason}.") from None
    return data if isinstance(data, dict) else {}


def _lower_keys(value: Any) -> Any:
    """Hugo's configuration keys are case-insensitive."""
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _locale(value: Any) -> str | None:
    code = _text(value[0] if isinstance(value, list) and value else value)
    if code is None or code.lower() == "default":
        return None
    return "zh" if code.lower().startswith("zh") else "en"


def _timezone(value: Any, settings: BlogSettings, key: str) -> None:
    zone = _text(value)
    if zone is None:
        return
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        settings.notes.append(f"{key} {zone!r} is not a time zone digest knows; left out")
        return
    settings.timezone = zone


def _base_url(value: str | None, settings: BlogSettings, key: str) -> None:
    if value is None:
        return
    if value.startswith("//"):
        value = "https:" + value
    if not value.startswith(("http://", "https://")):
        settings.notes.append(f"{key} {value!r} is not an absolute http(s) URL; left out")
        return
    settings.base_url = value.rstrip("/")


def _translated(settings: BlogSettings, translation: Translation, original: str) -> None:
    settings.permalink = translation.pattern
    settings.blog_permalink = original
    for token in translation.unsupported:
        settings.notes.append(f"the permalink token {token} has no digest field; it is left out")
    for token in translation.from_front_matter:
        settings.notes.append(f"the permalink token :{token} is read from each post's front matter")


def _table(config: dict[str, Any], key: str) -> dict[str, Any]:
    """`config[key]` when it is a mapping, else an empty one (a blog config may hold anything)."""
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def _truthy(value: Any) -> bool:
    if isinstance(value, dict):
        return _truthy(value.get("enable", value.get("enabled", True)))
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "on"))


# -- Hexo ---------------------------------------------------------------------------------------


def _is_hexo(folder: Path) -> bool:
    package = folder / "package.json"
    if package.is_file() and '"hexo"' in package.read_text(encoding="utf-8", errors="replace"):
        return True
    return (folder / "source" / "_posts").is_dir() or (folder / "scaffolds").is_dir()


def _hexo(folder: Path) -> BlogSettings:
    config = _load(folder / "_config.yml")
    source = _text(config.get("source_dir")) or "source"
    settings = BlogSettings("hexo", folder, "_config.yml", folder / source / "_posts")
    settings.title = _text(config.get("title"))
    _base_url(_text(config.get("url")), settings, "url")
    permalink = _text(config.get("permalink")) or ":year/:month/:day/:title/"
    pretty = _table(config, "pretty_urls")
    translation = hexo_pattern(
        permalink,
        new_post_name=_text(config.get("new_post_name")) or ":title.md",
        default_category=_text(config.get("default_category")) or "uncategorized",
        trailing_html=pretty.get("trailing_html", True) is not False,
        trailing_index=pretty.get("trailing_index", True) is not False,
    )
    _translated(settings, translation, permalink)
    settings.locale = _locale(config.get("language"))
    _timezone(config.get("timezone"), settings, "timezone")
    settings.math, settings.math_source = _hexo_math(folder, config)
    return settings


def _hexo_math(folder: Path, config: dict[str, Any]) -> tuple[MathMode | None, str]:
    """Hexo math comes from a plugin or the theme; behind Hexo's Markdown renderers `\\(` is an
    escape, so what the pages render is `$…$` and `$$…$$` (single_dollars off: `$$` only)."""
    mathjax = config.get("mathjax")
    if isinstance(mathjax, dict):
        single = mathjax.get("single_dollars", True) is not False
        return ("dollars" if single else "kramdown"), "_config.yml mathjax (hexo-filter-mathjax)"
    package = folder / "package.json"
    if package.is_file():
        try:
            data = json.loads(package.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            data = {}
        dependencies = {**data.get("dependencies", {}), **data.get("devDependencies", {})}
        for name in _HEXO_MATH_PACKAGES:
            if name in dependencies:
                return "dollars", f"package.json {name}"
    theme = _text(config.get("theme"))
    candidates = (
        [folder / f"_config.{theme}.yml", folder / "themes" / theme / "_config.yml"]
        if theme
        else []
    )
    for path in candidates:
        if path.is_file():
            theme_config = _load(path)
            math = theme_config.get("math")
            engines = math if isinstance(math, dict) else {}
            post = theme_config.get("post")
            fluid = post.get("math") if isinstance(post, dict) else None
            for value in (
                engines.get("mathjax"),
                engines.get("katex"),
                theme_config.get("mathjax"),
                theme_config.get("katex"),
                fluid,
            ):
                if value is not None and _truthy(value):
                    return "dollars", f"{path.relative_to(folder)} (theme math)"
    return None, ""


# -- Jekyll -------------------------------------------------------------------------------------


def _is_jekyll(folder: Path) -> bool:
    gemfile = folder / "Gemfile"
    if gemfile.is_file():
        text = gemfile.read_text(encoding="utf-8", errors="replace")
        if "jekyll" in text or "github-pages" in text:
            return True
    config = _load(folder / "_config.yml")
    collections = _text(config.get("collections_dir")) or ""
    return (folder / collections / "_posts").is_dir()


def _jekyll(folder: Path) -> BlogSettings:
    config = _load(folder / "_config.yml")
    collections = _text(config.get("collections_dir")) or ""
    settings = BlogSettings("jekyll", folder, "_config.yml", folder / collections / "_posts")
    settings.title = _text(config.get("title"))
    url, base = _text(config.get("url")), _text(config.get("baseurl")) or ""
    _base_url(url.rstrip("/") + "/" + base.strip("/") if url else None, settings, "url")
    posts = _table(_table(config, "collections"), "posts")
    permalink = (
        (_text(posts.get("permalink")) if isinstance(posts, dict) else None)
        or _text(config.get("permalink"))
        or "date"
    )
    _translated(settings, jekyll_pattern(permalink), permalink)
    settings.locale = _locale(config.get("lang") or config.get("locale") or config.get("language"))
    _timezone(config.get("timezone"), settings, "timezone")
    renderer = (_text(config.get("markdown")) or "kramdown").lower()
    if renderer == "kramdown":
        kramdown = _table(config, "kramdown")
        engine = kramdown.get("math_engine", "mathjax")
        settings.math = "kramdown"
        settings.math_source = f"kramdown (math_engine: {engine or 'none'})"
    return settings


# -- Hugo ---------------------------------------------------------------------------------------


def _hugo_config(folder: Path) -> tuple[dict[str, Any], str]:
    merged: dict[str, Any] = {}
    files: list[str] = []
    root = next((folder / n for n in HUGO_FILES if (folder / n).is_file()), None)
    if root is not None:
        merged.update(_lower_keys(_load(root)))
        files.append(root.name)
    directory = folder / "config" / "_default"
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
                continue
            data = _lower_keys(_load(path))
            if path.stem in ("hugo", "config"):
                _merge(merged, data)
            else:
                _merge(merged, {path.stem.lower(): data})
            files.append(path.relative_to(folder).as_posix())
    return merged, ", ".join(files)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _hugo(folder: Path) -> BlogSettings:
    config, files = _hugo_config(folder)
    content = folder / (_text(config.get("contentdir")) or "content")
    params = _table(config, "params")
    section = _main_section(content, config.get("mainsections") or params.get("mainsections"))
    settings = BlogSettings("hugo", folder, files, content / section)
    settings.title = _text(config.get("title"))
    _base_url(_text(config.get("baseurl")), settings, "baseURL")
    permalinks = _table(config, "permalinks")
    pages = _table(permalinks, "page") or permalinks
    permalink = _text(pages.get(section.lower()))
    _translated(
        settings,
        hugo_pattern(permalink, ugly_urls=config.get("uglyurls") is True),
        permalink or f"(none for {section}: Hugo's path-based default)",
    )
    language = config.get("defaultcontentlanguage")
    languages = _table(config, "languages")
    own = languages.get(str(language).lower()) if language else None
    settings.locale = (
        _locale((own or {}).get("languagecode") if isinstance(own, dict) else None)
        or _locale(config.get("languagecode"))
        or _locale(language)
    )
    _timezone(config.get("timezone"), settings, "timeZone")
    settings.math, settings.math_source = _hugo_math(config, params)
    return settings


def _main_section(content: Path, main_sections: Any) -> str:
    """Hugo's main section: params.mainSections, else the section with the most pages."""
    if isinstance(main_sections, list) and main_sections and isinstance(main_sections[0], str):
        return main_sections[0]
    if isinstance(main_sections, str) and main_sections:
        return main_sections
    counts: dict[str, int] = {}
    if content.is_dir():
        for section in sorted(p for p in content.iterdir() if p.is_dir()):
            counts[section.name] = sum(
                1
                for f in section.rglob("*")
                if f.suffix.lower() in SUFFIXES and not f.name.startswith("_")
            )
    if not counts:
        return "posts"
    return max(counts, key=lambda name: (counts[name], name in ("posts", "post", "blog")))


def _hugo_math(config: dict[str, Any], params: dict[str, Any]) -> tuple[MathMode | None, str]:
    markup = _table(config, "markup")
    passthrough = _table(_table(_table(markup, "goldmark"), "extensions"), "passthrough")
    if passthrough.get("enable") is True:
        delimiters = passthrough.get("delimiters") or {}
        inline = [tuple(pair) for pair in delimiters.get("inline") or [] if len(pair) == 2]
        block = [tuple(pair) for pair in delimiters.get("block") or [] if len(pair) == 2]
        dollar = ("$", "$") in inline
        bracket = ("\\(", "\\)") in inline or ("\\[", "\\]") in block
        mode: MathMode
        if dollar and bracket:
            mode = "both"
        elif dollar:
            mode = "dollars"
        elif bracket:
            mode = "brackets"
        else:
            mode = "kramdown" if ("$$", "$$") in block else "none"
        return mode, "markup.goldmark.extensions.passthrough delimiters"
    for key in ("math", "katex", "mathjax"):
        if _truthy(params.get(key)):
            return None, f"params.{key} (delimiters not configured; auto tells TeX from prose)"
    return None, ""
