"""A Hugo site's configuration (root file and config/_default/) as digest settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from digest.blogs.base import (
    MATH_CODE_THEMES,
    BlogSettings,
    load_file,
    locale_of,
    lower_keys,
    set_base_url,
    set_permalink,
    set_posts_url,
    set_timezone,
    site_switch,
    table,
    text_value,
    theme_math,
)
from digest.excerpt.settings import MathMode
from digest.sources.markdown import SUFFIXES
from digest.sources.permalinks import hugo_pattern

HUGO_FILES = tuple(
    f"{name}.{ext}" for name in ("hugo", "config") for ext in ("toml", "yaml", "yml", "json")
)


def _hugo_config(folder: Path) -> tuple[dict[str, Any], str]:
    merged: dict[str, Any] = {}
    files: list[str] = []
    root = next((folder / n for n in HUGO_FILES if (folder / n).is_file()), None)
    if root is not None:
        merged.update(lower_keys(load_file(root)))
        files.append(root.name)
    directory = folder / "config" / "_default"
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
                continue
            data = lower_keys(load_file(path))
            key, _, code = path.stem.lower().partition(".")
            if key in ("hugo", "config"):
                _merge(merged, data)
            elif key == "languages" and code:  # languages.zh.toml: that language's settings
                _merge(merged, {"languages": {code: data}})
            elif code:  # params.zh.toml, menus.zh.toml: that language's params, menus
                _merge(merged, {"languages": {code: {key: data}}})
            else:
                _merge(merged, {key: data})
            files.append(path.relative_to(folder).as_posix())
    return merged, ", ".join(files)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def read_hugo(folder: Path) -> BlogSettings:
    """A Hugo site's settings; a multilingual site is read in its default content language
    (its own `contentDir`, its `permalinks`, under `/LANG/` with defaultContentLanguageInSubdir),
    translations into the other languages being left out and reported."""
    config, files = _hugo_config(folder)
    languages = table(config, "languages")
    named = text_value(config.get("defaultcontentlanguage"))
    language = (named or "en").lower()
    own = table(languages, language)
    content = folder / (
        text_value(own.get("contentdir")) or text_value(config.get("contentdir")) or "content"
    )
    params = table(config, "params")
    main = config.get("mainsections") or params.get("mainsections")
    section = _main_section(content, main)
    settings = BlogSettings("hugo", folder, files, content / section)
    settings.title = text_value(own.get("title")) or text_value(config.get("title"))
    set_base_url(text_value(config.get("baseurl")), settings, "baseURL")
    permalinks = table(own, "permalinks") or table(config, "permalinks")
    pages = table(permalinks, "page") or permalinks
    permalink = text_value(pages.get(section.lower())) or text_value(
        (table(table(config, "permalinks"), "page") or table(config, "permalinks")).get(
            section.lower()
        )
    )
    translation = hugo_pattern(permalink, ugly_urls=config.get("uglyurls") is True)
    prefix = ""
    if languages and config.get("defaultcontentlanguageinsubdir") is True:
        prefix = f"/{language}"
        translation = replace(translation, pattern=f"{prefix}{translation.pattern}")
    set_permalink(
        settings, translation, permalink or f"(none for {section}: Hugo's path-based default)"
    )
    if languages:
        others = [code for code in map(str, languages) if code.lower() != language]
        settings.languages = [language, *(code.lower() for code in others)]
        if others:
            settings.notes.append(
                f"posts in {', '.join(others)} (translations) are left out: this digest reads "
                f"{language}, the default content language"
            )
    # Hugo 0.158 renamed languageCode to locale; a language named nowhere is left to the posts
    settings.locale = (
        locale_of(own.get("locale"))
        or locale_of(own.get("languagecode"))
        or locale_of(config.get("locale"))
        or locale_of(config.get("languagecode"))
        or locale_of(named or (language if language in languages else None))
    )
    set_timezone(config.get("timezone"), settings, "timeZone")
    settings.math, settings.math_source = _hugo_math(folder, config, params)
    chosen = "params.mainSections" if main else "Hugo's default: the section with most posts"
    set_posts_url(settings, f"{prefix}/{section.lower()}/", f"the main section {section}, {chosen}")
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


def _hugo_math(
    folder: Path, config: dict[str, Any], params: dict[str, Any]
) -> tuple[MathMode | None, str]:
    """Math in code spans (math-code.js in the layouts, or a theme known to load it) first:
    such a blog writes `` `$…$` ``; then the passthrough delimiters Goldmark leaves for MathJax;
    then a site-wide `params.math` (`katex`, `mathjax`) switch, the theme loading MathJax or
    KaTeX with `$` delimiters (Goldmark eats the backslash of `\\(`)."""
    theme = config.get("theme")
    themes = [theme] if isinstance(theme, str) else [t for t in theme or [] if isinstance(t, str)]
    imports = table(config, "module").get("imports")
    for entry in imports if isinstance(imports, list) else []:  # a theme as a Hugo module
        path = text_value(entry.get("path")) if isinstance(entry, dict) else None
        if path:
            themes.append(path)
    themes_dir = folder / (text_value(config.get("themesdir")) or "themes")
    found = theme_math(
        folder,
        [folder / "layouts", folder / "static", folder / "assets"]
        + [themes_dir / name / part for name in themes for part in ("layouts", "static")],
    )
    if found.math_code:
        return "backticks", f"{found.math_code} (math in code spans, math-code.js)"
    known = next((t for t in themes if t.rsplit("/", 1)[-1] in MATH_CODE_THEMES), None)
    if known:
        return "backticks", f"the theme {known} (math in code spans, math-code.js)"
    markup = table(config, "markup")
    passthrough = table(table(table(markup, "goldmark"), "extensions"), "passthrough")
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
    for where, values in (("params", params), ("params.page", table(params, "page"))):
        if site_switch(values):
            key = next(k for k in ("math", "mathjax", "katex") if values.get(k) is not None)
            return "dollars", f"{where}.{key} (the theme loads MathJax/KaTeX with $)"
    if found.dollars:
        return "dollars", f"{found.dollars} (MathJax/KaTeX with $ on every page)"
    return None, ""
