"""A Hexo blog's `_config.yml` (and theme config, package.json) as digest settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from digest.blogs.base import (
    BlogSettings,
    load_file,
    locale_of,
    set_base_url,
    set_permalink,
    set_posts_url,
    set_timezone,
    table,
    text_value,
    truthy,
)
from digest.excerpt.settings import MathMode
from digest.sources.permalinks import hexo_pattern

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


def is_hexo(folder: Path) -> bool:
    package = folder / "package.json"
    if package.is_file() and '"hexo"' in package.read_text(encoding="utf-8", errors="replace"):
        return True
    return (folder / "source" / "_posts").is_dir() or (folder / "scaffolds").is_dir()


def read_hexo(folder: Path) -> BlogSettings:
    config = load_file(folder / "_config.yml")
    source = text_value(config.get("source_dir")) or "source"
    settings = BlogSettings("hexo", folder, "_config.yml", folder / source / "_posts")
    settings.title = text_value(config.get("title"))
    set_base_url(text_value(config.get("url")), settings, "url")
    permalink = text_value(config.get("permalink")) or ":year/:month/:day/:title/"
    pretty = table(config, "pretty_urls")
    translation = hexo_pattern(
        permalink,
        new_post_name=text_value(config.get("new_post_name")) or ":title.md",
        default_category=text_value(config.get("default_category")) or "uncategorized",
        trailing_html=pretty.get("trailing_html", True) is not False,
        trailing_index=pretty.get("trailing_index", True) is not False,
        abbrlink=_abbrlink_field(table(config, "abbrlink")),
    )
    set_permalink(settings, translation, permalink)
    settings.locale = locale_of(config.get("language"))
    set_timezone(config.get("timezone"), settings, "timezone")
    settings.math, settings.math_source = _hexo_math(folder, config)
    _hexo_posts_url(folder, config, settings)
    return settings


def _hexo_posts_url(folder: Path, config: dict[str, Any], settings: BlogSettings) -> None:
    """hexo-generator-archive (in every new Hexo site) lists the posts at `archive_dir`; a site
    whose package.json leaves it out has only its home page's list, which is a guess."""
    archive = text_value(config.get("archive_dir")) or "archives"
    if "hexo-generator-archive" in _dependencies(folder) or not (folder / "package.json").is_file():
        set_posts_url(settings, archive, f"archive_dir {archive}, hexo-generator-archive")
    else:
        set_posts_url(settings, "/", "the home page: no hexo-generator-archive", guessed=True)


def _dependencies(folder: Path) -> dict[str, Any]:
    """package.json's dependencies and devDependencies ({} when it is missing or not JSON)."""
    try:
        data = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, Any] = {}
    for key in ("dependencies", "devDependencies"):
        value = data.get(key)
        if isinstance(value, dict):
            found.update(value)
    return found


def _abbrlink_field(options: dict[str, Any]) -> str:
    """The field for hexo-abbrlink's `:abbrlink` under its `alg` (crc16, crc32) and `rep`."""
    bits = "32" if str(options.get("alg", "")).lower() == "crc32" else ""
    hexa = "_hex" if str(options.get("rep", "")).lower() == "hex" else ""
    return f"abbrlink{bits}{hexa}"


def _hexo_math(folder: Path, config: dict[str, Any]) -> tuple[MathMode | None, str]:
    """Hexo math comes from a plugin or the theme; behind Hexo's Markdown renderers `\\(` is an
    escape, so what the pages render is `$…$` and `$$…$$` (single_dollars off: `$$` only)."""
    mathjax = config.get("mathjax")
    if isinstance(mathjax, dict):
        single = mathjax.get("single_dollars", True) is not False
        return ("dollars" if single else "kramdown"), "_config.yml mathjax (hexo-filter-mathjax)"
    dependencies = _dependencies(folder)
    for name in _HEXO_MATH_PACKAGES:
        if name in dependencies:
            return "dollars", f"package.json {name}"
    theme = text_value(config.get("theme"))
    candidates = (
        [folder / f"_config.{theme}.yml", folder / "themes" / theme / "_config.yml"]
        if theme
        else []
    )
    for path in candidates:
        if path.is_file():
            theme_config = load_file(path)
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
                if value is not None and truthy(value):
                    return "dollars", f"{path.relative_to(folder)} (theme math)"
    return None, ""
