"""A Jekyll blog's `_config.yml` as digest settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digest.blogs.base import (
    BlogSettings,
    load_file,
    locale_of,
    set_base_url,
    set_permalink,
    set_timezone,
    table,
    text_value,
)
from digest.sources.permalinks import jekyll_pattern


def is_jekyll(folder: Path) -> bool:
    gemfile = folder / "Gemfile"
    if gemfile.is_file():
        text = gemfile.read_text(encoding="utf-8", errors="replace")
        if "jekyll" in text or "github-pages" in text:
            return True
    return _posts_folder(folder, load_file(folder / "_config.yml")).is_dir()


def _posts_folder(folder: Path, config: dict[str, Any]) -> Path:
    """`_posts` under the site's `source` folder (default: the root) and `collections_dir`."""
    source = text_value(config.get("source")) or ""
    collections = text_value(config.get("collections_dir")) or ""
    return folder / source / collections / "_posts"


def read_jekyll(folder: Path) -> BlogSettings:
    config = load_file(folder / "_config.yml")
    settings = BlogSettings("jekyll", folder, "_config.yml", _posts_folder(folder, config))
    settings.title = text_value(config.get("title"))
    url, base = text_value(config.get("url")), text_value(config.get("baseurl")) or ""
    set_base_url(url.rstrip("/") + "/" + base.strip("/") if url else None, settings, "url")
    if not url and base.strip("/"):
        settings.notes.append(
            f"baseurl {base!r} without url: set site.base_url to the site's address, "
            f"ending in /{base.strip('/')}"
        )
    posts = table(table(config, "collections"), "posts")
    permalink = (
        (text_value(posts.get("permalink")) if isinstance(posts, dict) else None)
        or text_value(config.get("permalink"))
        or "date"
    )
    set_permalink(settings, jekyll_pattern(permalink), permalink)
    settings.locale = locale_of(
        config.get("lang") or config.get("locale") or config.get("language")
    )
    set_timezone(config.get("timezone"), settings, "timezone")
    renderer = (text_value(config.get("markdown")) or "kramdown").lower()
    if renderer == "kramdown":
        kramdown = table(config, "kramdown")
        engine = kramdown.get("math_engine", "mathjax")
        settings.math = "kramdown"
        settings.math_source = f"kramdown (math_engine: {engine or 'none'})"
    return settings
