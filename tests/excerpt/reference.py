"""The excerpt as it was made before the token walk: the body rendered to HTML and that HTML
parsed again (digest.excerpt.markup.markdown_to_html, then html_to_text), the whole document
every time. The differential tests (test_token_text.py) require the same excerpts from it as
from digest.excerpt.rules.excerpt_of."""

from __future__ import annotations

from digest.excerpt.attributes import strip_attributes
from digest.excerpt.clean import clean
from digest.excerpt.markup import (
    Heading,
    PlainText,
    expand_labels,
    html_to_text,
    markdown_to_html,
    parser,
)
from digest.excerpt.rules import ELLIPSIS, continued, cut_graphemes
from digest.excerpt.settings import DEFAULT_LENGTH, MathMode
from digest.excerpt.tags import resolve_tags
from digest.models import BodyFormat


def old_markdown_to_text(text: str, math: MathMode = "auto") -> PlainText:
    """Plain text of a Markdown body by the HTML round trip."""
    body = strip_attributes(resolve_tags(text))
    html = markdown_to_html(body, math)
    return html_to_text(html, tex_in_text=False, dollar_escapes=math != "none")


def _plain(text: str, body_format: BodyFormat, math: MathMode) -> PlainText:
    return old_markdown_to_text(text, math) if body_format == "markdown" else html_to_text(text)


def old_excerpt_of(
    body: str,
    *,
    summary: str | None = None,
    body_format: BodyFormat = "markdown",
    length: int = DEFAULT_LENGTH,
    locale: str = "zh",
    math: MathMode = "auto",
) -> str:
    """digest.excerpt.rules.excerpt_of as it was: the whole body parsed, then the rules."""
    plain = _plain(clean(body), body_format, math)
    if summary is not None:
        summary_text = _plain(clean(summary), body_format, math).text
        if summary_text:
            more = bool(plain.text) and plain.text not in summary_text
            text = expand_labels(summary_text, locale)
            return continued(text) if more else text
    if plain.before_more:
        return continued(expand_labels(plain.before_more, locale))
    cut, was_cut = cut_graphemes(plain.text, length, locale)
    return cut + (ELLIPSIS if was_cut else "")


def old_first_heading(text: str) -> Heading | None:
    """digest.excerpt.markup.first_heading as it was: the whole document parsed, the heading
    rendered to HTML and parsed again."""
    md = parser()
    tokens = md.parse(text)
    for index, token in enumerate(tokens[:-1]):
        if token.type == "heading_open":
            inline = strip_attributes(resolve_tags(tokens[index + 1].content))
            plain = html_to_text(md.renderInline(inline))
            heading = expand_labels(plain.text, "en")
            if not heading:
                return None
            rest = None
            if index == 0 and token.map is not None:
                lines = text.splitlines(keepends=True)
                rest = "".join(lines[token.map[1] :]).lstrip("\n")
            return Heading(heading, rest)
    return None
