"""A Jekyll blog's `_config.yml`, its posts' `defaults:` and its theme, as digest settings."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from digest.blogs.base import (
    BlogSettings,
    load_file,
    locale_of,
    set_base_url,
    set_permalink,
    set_posts_url,
    set_timezone,
    site_switch,
    table,
    text_value,
    theme_math,
)
from digest.excerpt.mathmode import math_switch, post_math
from digest.excerpt.settings import MathMode
from digest.sources.frontmatter import FrontMatterError, split_front_matter
from digest.sources.permalinks import jekyll_pattern

# Themes that load MathJax for a page whose front matter says `math: true`, when installed as a
# gem (their files are not in the blog's folder): `$…$` and `$$…$$` on those pages.
_PER_POST_MATH_THEMES = ("jekyll-theme-chirpy",)
_ARCHIVE_NAMES = ("archives", "archive")
_ARCHIVE_FOLDERS = ("", "_tabs", "_pages", "pages")


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
    defaults = post_defaults(config, settings.posts.relative_to(folder).as_posix())
    posts = table(table(config, "collections"), "posts")
    permalink = (
        text_value(defaults.get("permalink"))
        or text_value(posts.get("permalink"))
        or text_value(config.get("permalink"))
        or "date"
    )
    set_permalink(settings, jekyll_pattern(permalink), permalink)
    if text_value(defaults.get("permalink")):
        settings.blog_permalink = f"{permalink} (defaults: for posts)"
    settings.locale = locale_of(
        config.get("lang") or config.get("locale") or config.get("language")
    )
    set_timezone(config.get("timezone"), settings, "timezone")
    settings.math, settings.math_source = _jekyll_math(folder, config, defaults)
    _jekyll_posts_url(folder, config, settings)
    return settings


def post_defaults(config: dict[str, Any], posts: str) -> dict[str, Any]:
    """The front-matter `defaults:` every post gets, merged as Jekyll merges them: scopes of
    type `posts` (or no type) whose `path` holds the whole posts folder, the more specific
    path winning, and a later entry over an earlier one of the same path. A scope naming a
    subfolder of `_posts` covers only some posts: it is left out."""
    chosen: list[tuple[int, int, dict[str, Any]]] = []
    entries = config.get("defaults")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        scope, values = table(entry, "scope"), table(entry, "values")
        kind = text_value(scope.get("type"))
        path = (text_value(scope.get("path")) or "").strip("/")
        if kind not in (None, "posts") or "*" in path:
            continue
        if path and not PurePosixPath(posts).is_relative_to(path):
            continue
        chosen.append((len(path), index, values))
    merged: dict[str, Any] = {}
    for _, _, values in sorted(chosen, key=lambda item: (item[0], item[1])):
        merged.update(values)
    return merged


def _jekyll_math(
    folder: Path, config: dict[str, Any], defaults: dict[str, Any]
) -> tuple[MathMode | None, str]:
    """kramdown parses `$$…$$` itself; `$…$` is math when the page loads MathJax or KaTeX with
    dollar delimiters: on every page (a site-level `math`/`mathjax`/`katex` switch, the same in
    the posts' `defaults:`, or a layout that loads it unconditionally), or on the pages that ask
    (Chirpy and themes whose layouts test `page.math`: each post's own switch decides)."""
    renderer = (text_value(config.get("markdown")) or "kramdown").lower()
    base: MathMode | None = None
    source = ""
    if renderer == "kramdown":
        engine = table(config, "kramdown").get("math_engine", "mathjax")
        base, source = "kramdown", f"kramdown, math_engine {engine or 'none'}"
    found = theme_math(folder, [folder / "_includes", folder / "_layouts", folder / "assets"])
    if found.math_code:
        return "backticks", f"{found.math_code} (math in code spans, math-code.js)"
    site, switch = site_switch(config), "_config.yml"
    if site is None:
        site, switch = math_switch(defaults), "_config.yml defaults: for posts"
    if site is None and found.dollars:
        site, switch = True, f"{found.dollars}, on every page"
    if site:
        return post_math(base or "none", True), f"{switch} (MathJax/KaTeX with $)"
    theme = _theme_name(folder, config)
    if base is not None and (found.per_page or theme in _PER_POST_MATH_THEMES):
        where = found.per_page or theme
        return base, f"{source}; a post with math: true also renders $…$: {where}"
    return base, source


def _theme_name(folder: Path, config: dict[str, Any]) -> str | None:
    for key in ("theme", "remote_theme"):
        name = text_value(config.get(key))
        if name:
            return name.rsplit("/", 1)[-1].split("@", 1)[0]
    gemfile = folder / "Gemfile"
    if gemfile.is_file():
        text = gemfile.read_text(encoding="utf-8", errors="replace")
        for name in _PER_POST_MATH_THEMES:
            if name in text:
                return name
    return None


def _jekyll_posts_url(folder: Path, config: dict[str, Any], settings: BlogSettings) -> None:
    """The blog's list of posts: an archive page (`archives.md`, `archive.html`, at the root or
    in `_tabs`/`_pages`) at its own permalink; else the paginated list of jekyll-paginate's
    `paginate_path`; else the home page, which is a guess."""
    source = folder / (text_value(config.get("source")) or "")
    for where in _ARCHIVE_FOLDERS:
        for name in _ARCHIVE_NAMES:
            for suffix in (".md", ".markdown", ".html"):
                page = source / where / f"{name}{suffix}"
                if page.is_file():
                    path = _page_url(page, name, where, config)
                    relative = page.relative_to(folder).as_posix()
                    set_posts_url(settings, path, f"the archive page {relative}")
                    return
    paginate = text_value(config.get("paginate_path"))
    if paginate and config.get("paginate"):
        path = paginate.split(":num", 1)[0].rsplit("/", 1)[0]  # /blog/page:num/ -> /blog
        set_posts_url(settings, path, f"paginate_path {paginate}")
        return
    set_posts_url(settings, "/", "the home page", guessed=True)


def _page_url(page: Path, name: str, where: str, config: dict[str, Any]) -> str:
    """A page's URL: its own `permalink`, else its collection's (Chirpy's tabs: `/:title/`),
    else `/name/` under a pretty site permalink and `/name.html` otherwise."""
    try:
        front, _ = split_front_matter(page.read_text(encoding="utf-8", errors="replace"))
    except (FrontMatterError, OSError):
        front = {}
    own = text_value(front.get("permalink"))
    if own:
        return own
    if where.startswith("_") and where != "_pages":
        collection = where[1:]
        pattern = text_value(table(table(config, "collections"), collection).get("permalink"))
        entries = config.get("defaults")
        for entry in entries if isinstance(entries, list) else []:
            scope = table(entry, "scope") if isinstance(entry, dict) else {}
            if text_value(scope.get("type")) == collection:
                pattern = text_value(table(entry, "values").get("permalink")) or pattern
        if pattern:
            return pattern.replace(":title", name).replace(":name", name)
    site = text_value(config.get("permalink")) or "date"
    return f"/{name}/" if site == "pretty" or site.endswith("/") else f"/{name}.html"
