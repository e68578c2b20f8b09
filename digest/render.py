"""Render an edition once: Jinja2 -> MJML -> HTML (mjml-python) -> inlined CSS (premailer).

Rendering runs once per issue and locale, never per recipient, and never touches the network:
MJML's default web fonts are switched off (`fonts={}`) and premailer may not fetch anything
(`allow_network=False`). Per-recipient values (unsubscribe and preferences URLs, the greeting)
are left as placeholders (`digest.models.PLACEHOLDERS`) that `personalise` fills in later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment
from mjml import mjml2html
from premailer import Premailer

from digest.clean import clean
from digest.config import Config
from digest.errors import DigestError
from digest.excerpt import excerpt_for
from digest.i18n import html_lang, long_date, translate, translations
from digest.models import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, Edition, Post, Rendered
from digest.urls import site_url
from digest.wrap import fold_html, wrap_text

# The built-in templates are package data (digest/templates), found through importlib.resources
# by Jinja2's PackageLoader, so an installed wheel renders from any working folder.
BUILTIN_TEMPLATES = ("digest", "templates")
FONT_STACK = (
    "-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, 'PingFang SC', "
    "'Hiragino Sans GB', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif"
)
PREHEADER_TITLES = 3
PREHEADER_LENGTH = 140


@dataclass(frozen=True, slots=True)
class Item:
    """One post block as the templates see it: text only, URLs absolute."""

    title: str
    url: str
    meta: str
    excerpt: str
    cover: str | None
    cover_alt: str


def environment(config: Config) -> ImmutableSandboxedEnvironment:
    """Sandboxed, autoescaping (for MJML and HTML) template environment with gettext.

    The user's `templates_dir` comes first; whatever it does not override falls back to the
    built-in templates.
    """
    loaders: list[BaseLoader] = []
    own = config.path(config.templates_dir)
    if own.is_dir():
        loaders.append(FileSystemLoader(str(own.resolve())))
    loaders.append(PackageLoader(*BUILTIN_TEMPLATES))
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(
            enabled_extensions=("mjml.j2", "html.j2"), default_for_string=True
        ),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        keep_trailing_newline=True,
    )
    return env


def items_for(posts: list[Post], config: Config, locale: str) -> list[Item]:
    tz = config.site.tz
    items = []
    for post in posts:
        date = post.date.astimezone(tz).strftime("%Y-%m-%d") if post.date else None
        meta = " / ".join(part for part in (post.category, date) if part)
        items.append(
            Item(
                title=_one_line(post.title),
                url=post.url,
                meta=_one_line(meta),
                excerpt=clean(excerpt_for(post, config)),  # labels: the posts' language
                cover=site_url(config.site.base_url, post.cover) if post.cover else None,
                cover_alt=_one_line(post.cover_alt or post.title),
            )
        )
    return items


def _one_line(text: str) -> str:
    """Titles and names never carry CR, LF, other line breaks or control characters."""
    return " ".join(clean(text).split())


def context(config: Config, edition: Edition, locale: str) -> dict[str, Any]:
    shown = list(edition.posts[: config.digest.max_posts])
    items = items_for(shown, config, locale)
    overflow = max(0, len(edition.posts) - len(shown))
    subject = _one_line(
        config.digest.subject.format(
            title=config.site.title,
            period=edition.key,
            date=edition.date.astimezone(config.site.tz).strftime("%Y-%m-%d"),
            count=len(edition.posts),
            first_title=items[0].title if items else "",
        )
    )
    titles = " · ".join(item.title for item in items[:PREHEADER_TITLES])
    preheader = translate(locale, "In this issue: %(titles)s") % {"titles": titles}
    if len(preheader) > PREHEADER_LENGTH:
        preheader = preheader[: PREHEADER_LENGTH - 1].rstrip() + "…"
    return {
        "site": config.site,
        "subject": subject,
        "preheader": preheader,
        "html_lang": html_lang(locale),
        "font_stack": FONT_STACK,
        "edition_key": edition.key,
        "edition_date": long_date(edition.date.astimezone(config.site.tz), locale),
        "items": items,
        "overflow": overflow,
        "posts_url": config.site.posts_url,
        "greeting": GREETING,
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "view_url": f"{config.web.base_url}/archive/{edition.key}/",
    }


class RenderError(DigestError):
    """One post cannot be rendered (most likely with a user template): the message names it."""


def render(
    config: Config, edition: Edition, locale: str | None = None, *, env: Any = None
) -> Rendered:
    """The edition as subject, preheader, HTML, text and MJML, with per-recipient placeholders.

    When rendering fails because of one post, RenderError names that post (its file or feed
    entry and its title); a failure every post shares (a broken template) is raised as it is.
    """
    locale = locale or config.site.locale
    env = env or environment(config)
    env.install_gettext_translations(translations(locale), newstyle=True)
    try:
        return _render(config, edition, locale, env)
    except Exception as exc:
        culprit = _culprit(config, edition, locale, env)
        if culprit is None:
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = culprit.source or culprit.url
        raise RenderError(
            f"cannot render the digest: post {where} ({culprit.title!r}) fails: {reason}"
        ) from exc


def _render(config: Config, edition: Edition, locale: str, env: Any) -> Rendered:
    values = context(config, edition, locale)
    # clean() again: nothing that reaches MJML may hold a control character (digest.clean)
    mjml_source = clean(env.get_template("email/digest.mjml.j2").render(values))
    html = fold_html(
        inline_css(mjml2html(mjml_source, fonts={}, disable_comments=True), config.site.base_url)
    )
    text = clean(env.get_template("email/digest.txt.j2").render(values))
    return Rendered(
        locale=locale,
        subject=values["subject"],
        preheader=values["preheader"],
        html=html,
        text=wrap_text(text.strip() + "\n"),
        mjml=mjml_source,
        greeting_named=translate(locale, "Hi %(name)s,"),
        greeting_anonymous=translate(locale, "Hi,"),
    )


def _culprit(config: Config, edition: Edition, locale: str, env: Any) -> Post | None:
    """The first shown post that fails alone while a plain stand-in post renders fine."""
    stand_in = Post(id="stand-in", title="Post", url=config.site.base_url, date=None, body="Text")
    attempts = [stand_in, *edition.posts[: config.digest.max_posts]]
    for number, post in enumerate(attempts):
        try:
            _render(config, replace(edition, posts=(post,)), locale, env)
        except Exception:
            return post if number else None
    return None


def inline_css(html: str, base_url: str) -> str:
    """Inline CSS and make relative URLs absolute, without any network access."""
    inliner = Premailer(
        html,
        base_url=base_url.rstrip("/") + "/",
        allow_network=False,
        allow_loading_external_files=False,
        keep_style_tags=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        remove_unset_properties=True,
    )
    result: str = inliner.transform(pretty_print=False)
    return result
