"""Render an edition once: Jinja2 -> MJML -> HTML (mjml-python) -> inlined CSS (premailer).

Rendering runs once per issue and locale, never per recipient, and never touches the network:
MJML's default web fonts are switched off (`fonts={}`) and premailer may not fetch anything
(`allow_network=False`). Per-recipient values (unsubscribe and preferences URLs, the greeting,
and with `tracking.clicks: personal` each post's link) are left as placeholders
(`digest.models.PLACEHOLDERS`, `digest.models.click_url`) that `personalise` fills in later.

The HTML part never reaches Gmail's clip (`digest.render.budget`): when the newest `max_posts` posts
would make it too large, the oldest of them move into the "N more posts" line, the text part
shows the same posts, and a warning (logger `digest.render.edition`) says how many moved.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nh3
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markdown_it import MarkdownIt
from markupsafe import Markup
from mjml import mjml2html
from premailer import Premailer

from digest.errors import DigestError
from digest.excerpt.clean import clean
from digest.excerpt.rules import excerpt_for
from digest.links import SAFE_SCHEMES, link_scheme, site_url
from digest.models import (
    CLICK_PLACEHOLDER,
    GREETING,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    Edition,
    Post,
    Rendered,
)
from digest.render.budget import HTML_LIMIT, longest_values, outgoing_size
from digest.render.folders import BUILTIN_TEMPLATES, user_templates
from digest.render.i18n import html_lang, long_date, translate, translations
from digest.render.settings import RenderSettings
from digest.render.wrap import fold_html, wrap_text

log = logging.getLogger("digest.render.edition")

# Markup: the quotes must reach MJML as quotes. Escaped to `&#39;`, they crash MJML.js, whose
# CSS inliner (juice) splits the style attribute at the `;` of the entity.
FONT_STACK = Markup(
    "-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, 'PingFang SC', "
    "'Hiragino Sans GB', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif"
)
PREHEADER_TITLES = 3
PREHEADER_LENGTH = 140
# A full stop after a sentence's own final punctuation ("订阅了 行路中.。", "to Yahoo!.").
_DOUBLED_STOP = re.compile(r"(?<=[.。．!！?？…])[.。．]$")


@dataclass(frozen=True, slots=True)
class Item:
    """One post block as the templates see it: text only, URLs absolute."""

    title: str
    url: str
    meta: str
    excerpt: str
    cover: str | None
    cover_alt: str


def end_sentence(text: str) -> str:
    """`text` without a full stop that doubles the punctuation before it.

    A translated sentence ends in its own full stop, and so may the site title it ends with:
    "You are receiving this because you subscribed to Notes.." and "订阅了 行路中.。" lose the
    last mark. Markup stays Markup (only a final character is removed, never an entity).
    """
    trimmed = _DOUBLED_STOP.sub("", text)
    return Markup(trimmed) if isinstance(text, Markup) else trimmed


def environment(templates: Path) -> ImmutableSandboxedEnvironment:
    """Sandboxed, autoescaping (for MJML and HTML) template environment with gettext.

    The user's template folder `templates` (`templates_dir`) comes first when it exists;
    whatever it does not override falls back to the built-in templates. The `end_sentence`
    filter ends a sentence that holds a title.
    """
    loaders: list[BaseLoader] = []
    own = user_templates(templates)
    if own is not None:
        loaders.append(FileSystemLoader(str(own)))
    loaders.append(FileSystemLoader(str(BUILTIN_TEMPLATES)))
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(
            enabled_extensions=("mjml.j2", "html.j2"), default_for_string=True
        ),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        keep_trailing_newline=True,
    )
    env.filters["end_sentence"] = end_sentence
    return env


def items_for(posts: list[Post], settings: RenderSettings, locale: str) -> list[Item]:
    tz = settings.site.tz
    base_url = settings.site.base_url
    items = []
    for post in posts:
        date = post.date.astimezone(tz).strftime("%Y-%m-%d") if post.date else None
        meta = " / ".join(part for part in (post.category, date) if part)
        items.append(
            Item(
                title=_one_line(post.title),
                url=post_link(base_url, post.url),
                meta=_one_line(meta),
                excerpt=clean(excerpt_for(post, settings.excerpt)),  # labels: the posts' language
                cover=web_link(base_url, post.cover) if post.cover else None,
                cover_alt=_one_line(post.cover_alt or post.title),
            )
        )
    return items


def post_link(base_url: str, url: str) -> str:
    """A post's link in the digest: a personal click link's placeholder as it is (filled in
    per recipient, digest.delivery.personalise), else `web_link`, else the site."""
    if CLICK_PLACEHOLDER.fullmatch(url):
        return url
    return web_link(base_url, url) or base_url


def web_link(base_url: str, url: str) -> str | None:
    """`url` as an email or page may link it: http(s) or mailto, relative links made absolute
    against the site; None for anything else. The sources drop such links with a warning;
    this is the last check before a template (an issue snapshot from an older version, a feed
    entry known only by its `urn:` id, which links to the site instead)."""
    if link_scheme(url) not in SAFE_SCHEMES | {""}:
        return None
    absolute = site_url(base_url, url)
    return absolute if link_scheme(absolute) in SAFE_SCHEMES else None


def _one_line(text: str) -> str:
    """Titles and names never carry CR, LF, other line breaks or control characters."""
    return " ".join(clean(text).split())


def subject_for(settings: RenderSettings, edition: Edition, locale: str) -> str:
    """`digest.subject` with its placeholders (digest.config.validators.SUBJECT_PLACEHOLDERS)
    filled in.

    The default, "{title} · {long_date}", has no ISO week in it: "行路中 · 2026-W47" has no
    lowercase letter, so SpamAssassin's SUBJ_ALL_CAPS scores every Chinese blog's digest.
    """
    local = edition.date.astimezone(settings.site.tz)
    newest = _one_line(edition.posts[0].title) if edition.posts else ""
    return _one_line(
        settings.subject.format(
            title=settings.site.title,
            period=edition.key,
            date=local.strftime("%Y-%m-%d"),
            long_date=long_date(local, locale),
            count=len(edition.posts),
            first_title=newest,
        )
    )


def context(
    settings: RenderSettings, edition: Edition, locale: str, shown: int | None = None
) -> dict[str, Any]:
    """What the templates see; `shown` posts get a block (default: `max_posts`), the rest of
    the edition's posts are counted in the overflow line."""
    limit = settings.max_posts if shown is None else min(shown, settings.max_posts)
    items = items_for(list(edition.posts[:limit]), settings, locale)
    overflow = len(edition.posts) - len(items)
    titles = " · ".join(item.title for item in items[:PREHEADER_TITLES])
    preheader = translate(locale, "In this issue: %(titles)s") % {"titles": titles}
    if not items:
        preheader = translate(locale, "%(title)s: new posts") % {"title": settings.site.title}
    if len(preheader) > PREHEADER_LENGTH:
        preheader = preheader[: PREHEADER_LENGTH - 1].rstrip(" ·.。,，:：") + "…"
    return {
        "site": settings.site,
        "subject": subject_for(settings, edition, locale),
        "preheader": preheader,
        "html_lang": html_lang(locale),
        "font_stack": FONT_STACK,
        "edition_key": edition.key,
        "edition_date": long_date(edition.date.astimezone(settings.site.tz), locale),
        "items": items,
        "overflow": overflow,
        "posts_url": settings.site.posts_url,
        "greeting": GREETING,
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "view_url": f"{settings.web_base_url}/archive/{edition.key}/",
        "note_html": note_html(edition.note),
        "note_text": edition.note.strip(),
    }


def note_html(note: str) -> Markup:
    """The editor's note as HTML: CommonMark without raw HTML, then sanitised (nh3), so the
    note can hold emphasis, links and lists but no script, style or form."""
    if not note.strip():
        return Markup("")
    rendered = MarkdownIt("commonmark", {"html": False}).render(note)
    cleaned = nh3.clean(
        rendered,
        tags={"p", "a", "em", "strong", "ul", "ol", "li", "code", "br", "blockquote"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
    )
    return Markup(cleaned)  # sanitised just above


class RenderError(DigestError):
    """One post cannot be rendered (most likely with a user template): the message names it."""


def render(
    settings: RenderSettings, edition: Edition, locale: str | None = None, *, env: Any = None
) -> Rendered:
    """The edition as subject, preheader, HTML, text and MJML, with per-recipient placeholders.

    At most `max_posts` posts get a block, and fewer when the HTML part would pass
    `budget.HTML_LIMIT` as it goes out: then the newest posts that fit are shown, the others
    are counted in the "N more posts" line of both parts, and a warning names how many moved.

    When rendering fails because of one post, RenderError names that post (its file or feed
    entry and its title); a failure every post shares (a broken template) is raised as it is.
    """
    locale = locale or settings.site.locale
    env = env or environment(settings.templates)
    env.install_gettext_translations(translations(locale), newstyle=True)
    try:
        return _fitted(settings, edition, locale, env)
    except Exception as exc:
        culprit = _culprit(settings, edition, locale, env)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if culprit is None:
            where = template_location(exc)
            if where is None:
                raise
            raise RenderError(f"cannot render the digest: {where}: {reason}") from exc
        where = culprit.source or culprit.url
        raise RenderError(
            f"cannot render the digest: post {where} ({culprit.title!r}) fails: {reason}"
        ) from exc


def _fitted(settings: RenderSettings, edition: Edition, locale: str, env: Any) -> Rendered:
    """The rendering with the most posts (up to `max_posts`) whose HTML stays in the budget.

    One render when everything fits (the usual case); otherwise a binary search over the
    number of posts shown, each step a real render, measured by `budget.outgoing_size`.
    """
    most = min(len(edition.posts), settings.max_posts)
    full = _render(settings, edition, locale, env, most)
    links = [int(m[1]) for p in edition.posts if (m := CLICK_PLACEHOLDER.fullmatch(p.url))]
    longest = longest_values(settings.web_base_url, full.greeting_named, links)
    full_size = outgoing_size(full.html, longest)
    if full_size <= HTML_LIMIT:
        return full
    best: tuple[int, Rendered] | None = None
    low, high = 0, most - 1
    while low <= high:
        middle = (low + high) // 2
        candidate = _render(settings, edition, locale, env, middle)
        if outgoing_size(candidate.html, longest) <= HTML_LIMIT:
            best, low = (middle, candidate), middle + 1
        else:
            high = middle - 1
    shown, rendered = best if best is not None else (0, _render(settings, edition, locale, env, 0))
    log.warning(
        '%d of %d posts moved to the "more posts" line: with all of them the %s digest\'s '
        "HTML would be %s bytes, over the %s-byte limit that keeps it clear of Gmail's clip "
        "(%d posts shown%s)",
        most - shown,
        most,
        locale,
        f"{full_size:,}",
        f"{HTML_LIMIT:,}",
        shown,
        "" if best is not None else "; it does not fit even so",
    )
    return rendered


def _render(
    settings: RenderSettings, edition: Edition, locale: str, env: Any, shown: int
) -> Rendered:
    values = context(settings, edition, locale, shown)
    # clean() again: nothing that reaches MJML may hold a control character (digest.excerpt.clean)
    mjml_source = clean(env.get_template("email/digest.mjml.j2").render(values))
    html = fold_html(
        inline_css(mjml2html(mjml_source, fonts={}, disable_comments=True), settings.site.base_url)
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


def template_location(exc: BaseException) -> str | None:
    """`FILE, line N` of the template line that raised `exc`, from the traceback (Jinja2 maps
    template frames to the template's file and line), innermost first; None if no template
    is in it."""
    found = None
    trace = exc.__traceback__
    while trace is not None:
        name = trace.tb_frame.f_code.co_filename
        if name.endswith(".j2"):
            found = f"{name}, line {trace.tb_lineno}"
        trace = trace.tb_next
    return found


def _culprit(settings: RenderSettings, edition: Edition, locale: str, env: Any) -> Post | None:
    """The first shown post that fails alone while a plain stand-in post renders fine."""
    stand_in = Post(id="stand-in", title="Post", url=settings.site.base_url, date=None, body="Text")
    attempts = [stand_in, *edition.posts[: settings.max_posts]]
    for number, post in enumerate(attempts):
        try:
            _render(settings, replace(edition, posts=(post,)), locale, env, 1)
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
