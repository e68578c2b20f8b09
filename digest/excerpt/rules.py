"""The excerpt rules of DESIGN.md section 3: which text, and where it is cut.

The cut counts user-perceived characters (extended grapheme clusters, via the `regex`
module's `\\X`, which follows the current Unicode segmentation rules), so it never splits an
emoji, a flag, a ZWJ sequence or a letter with combining marks, and it treats every label as
one indivisible unit: a label that would straddle the cut is left out whole.

The stage takes a post's body and summary as the sources give them (front matter already split
off: digest.sources.document does that for a lone file) and its `ExcerptSettings`.
"""

from __future__ import annotations

from typing import NamedTuple

import regex

from digest.excerpt.clean import clean
from digest.excerpt.markers import LABELS, MARKERS
from digest.excerpt.markup import PlainText, expand_labels, html_to_text, markdown_to_text
from digest.excerpt.settings import DEFAULT_LENGTH, ExcerptSettings, MathMode
from digest.excerpt.tex import post_math
from digest.models import BodyFormat, Post

ELLIPSIS = "..."

_GRAPHEME = regex.compile(r"\X")
_FULL_STOPS = ".。．"
_ELLIPSES = ("...", "…")


def excerpt_of(
    body: str,
    *,
    summary: str | None = None,
    body_format: BodyFormat = "markdown",
    length: int = DEFAULT_LENGTH,
    locale: str = "zh",
    math: MathMode = "auto",
) -> str:
    """Apply rules 2-4 to a body (without front matter) and an optional author summary.

    An excerpt the sources already know for exactly these arguments (`remember_excerpts`) is
    returned without parsing the body again."""
    known = _known.get(ExcerptInputs(body, summary, body_format, length, locale, math))
    if known is not None:
        return known
    if length < 1:
        raise ValueError("excerpt length must be at least 1")
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


def continued(text: str) -> str:
    """An author's own excerpt (rules 2 and 3) followed by `...`, never doubling punctuation.

    A final full stop (`.` `。` `．`) gives way to the ellipsis ("Summary." -> "Summary...",
    not "Summary...." or "摘要。..."), and text already ending in an ellipsis gets none. Other
    marks stay before it ("Why?..."). A length cut (rule 4) always appends `...`.
    """
    stripped = text.rstrip()
    if stripped.endswith(_ELLIPSES):
        return stripped
    return stripped.rstrip(_FULL_STOPS) + ELLIPSIS


def excerpt_for(post: Post, settings: ExcerptSettings) -> str:
    """A post's excerpt as the digest shows it, in every language variant of the digest: the
    labels follow the posts' language (`settings.labels`: `excerpt.labels`, default
    `site.locale`), not the frame's, so an English frame can hold Chinese excerpts with
    [代码] and [公式]; the post's own math switch (front matter `math:`) wins over the blog's
    `settings.math`."""
    return excerpt_of(
        post.body,
        summary=post.summary,
        body_format=post.body_format,
        length=settings.length,
        locale=settings.labels,
        math=post_math(settings.math, post.math),
    )


class ExcerptInputs(NamedTuple):
    """The arguments of `excerpt_of`, all an excerpt depends on: equal inputs, equal excerpt."""

    body: str
    summary: str | None
    body_format: BodyFormat
    length: int
    locale: str
    math: MathMode


def excerpt_inputs(post: Post, settings: ExcerptSettings) -> ExcerptInputs:
    """The inputs `excerpt_for(post, settings)` gives `excerpt_of`."""
    return ExcerptInputs(
        post.body,
        post.summary,
        post.body_format,
        settings.length,
        settings.labels,
        post_math(settings.math, post.math),
    )


_known: dict[ExcerptInputs, str] = {}


def remember_excerpts(known: dict[ExcerptInputs, str]) -> None:
    """Excerpts the sources have at hand (digest.sources.cache keeps them with the posts), for
    `excerpt_of` to return instead of parsing again: parsing is most of the cost of reading
    a blog. Keyed by the full inputs, so a remembered excerpt is never one of other text or
    settings; each call replaces the last (one blog's worth is kept, not every one seen)."""
    global _known
    _known = known


def _plain(text: str, body_format: BodyFormat, math: MathMode) -> PlainText:
    return markdown_to_text(text, math) if body_format == "markdown" else html_to_text(text)


def grapheme_count(text: str) -> int:
    return len(_GRAPHEME.findall(text))


def cut_graphemes(text: str, length: int, locale: str = "zh") -> tuple[str, bool]:
    """Expand labels and keep at most `length` graphemes; report whether anything was cut."""
    labels = LABELS.get(locale, LABELS["en"])
    out: list[str] = []
    used = 0
    for match in _GRAPHEME.finditer(text):  # not findall: the text after the cut is not split
        cluster = match.group()
        if cluster[0] in MARKERS:
            piece = labels[cluster[0]] + cluster[1:]
            size = grapheme_count(labels[cluster[0]]) + (1 if len(cluster) > 1 else 0)
        else:
            piece, size = cluster, 1
        if used + size > length:
            kept = "".join(out)
            # A label that does not fit is left out whole, with the space that led to it.
            return (kept.rstrip() if cluster[0] in MARKERS else kept), True
        out.append(piece)
        used += size
    return "".join(out), False
