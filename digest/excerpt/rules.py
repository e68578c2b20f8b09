"""The excerpt rules of DESIGN.md section 3: which text, and where it is cut.

The cut counts user-perceived characters (extended grapheme clusters, via the `regex`
module's `\\X`, which follows the current Unicode segmentation rules), so it never splits an
emoji, a flag, a ZWJ sequence or a letter with combining marks, and it treats every label as
one indivisible unit: a label that would straddle the cut is left out whole.

The stage takes a post's body and summary as the sources give them (front matter already split
off: digest.sources.document does that for a lone file) and its `ExcerptSettings`.
"""

from __future__ import annotations

from functools import cache

import regex

from digest.excerpt.clean import clean
from digest.excerpt.markers import LABELS, MARKERS
from digest.excerpt.markup import (
    Enough,
    PlainText,
    Progress,
    expand_labels,
    html_to_text,
    markdown_to_text,
)
from digest.excerpt.mathmode import post_math
from digest.excerpt.memo import ExcerptInputs, known_excerpt
from digest.excerpt.settings import DEFAULT_LENGTH, ExcerptSettings, MathMode
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
    known = known_excerpt(ExcerptInputs(body, summary, body_format, length, locale, math))
    if known is not None:
        return known
    if length < 1:
        raise ValueError("excerpt length must be at least 1")
    summary_text = None if summary is None else _plain(clean(summary), body_format, math).text
    plain = _plain(clean(body), body_format, math, _enough(summary_text, length, locale))
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


def _plain(
    text: str, body_format: BodyFormat, math: MathMode, enough: Enough | None = None
) -> PlainText:
    if body_format == "markdown":
        return markdown_to_text(text, math, enough)
    return html_to_text(text)


def _enough(summary: str | None, length: int, locale: str) -> Enough:
    """When the start of a body's text decides its excerpt (so the rest need not be parsed):
    with an author's summary, once the body's text is longer than the summary's (it is then
    not part of it, and the summary is continued); else once the text before `<!--more-->`
    is known and not empty, or, with no marker to come, once the cut falls before the last
    character read (the rest cannot move it)."""

    def enough(progress: Progress) -> bool:
        if summary:
            return progress.chars > len(summary) and len(progress.text()) > len(summary)
        if progress.more is None:
            return False  # a `<!--more-->` further on would decide instead of the cut
        if progress.more and progress.before_more():
            return True
        return progress.chars > length and _cut_before_end(progress.text(), length, locale)

    return enough


def _cut_before_end(text: str, length: int, locale: str) -> bool:
    """Whether `cut_graphemes(text, length)` cuts at a grapheme that is not the last of `text`:
    then the cut of any longer text starting with `text` is the same (only the last grapheme
    of a prefix can grow into a longer one)."""
    _, was_cut, end = _cut(text, length, locale)
    return was_cut and end < len(text)


def grapheme_count(text: str) -> int:
    if _JOINING.search(text) is None:
        return len(text)  # every code point is a grapheme of its own
    return len(_GRAPHEME.findall(text))


def cut_graphemes(text: str, length: int, locale: str = "zh") -> tuple[str, bool]:
    """Expand labels and keep at most `length` graphemes; report whether anything was cut."""
    kept, was_cut, _ = _cut(text, length, locale)
    return kept, was_cut


def _cut(text: str, length: int, locale: str) -> tuple[str, bool, int]:
    """`cut_graphemes`, and where in `text` the grapheme that did not fit ends (0: no cut).

    Runs of graphemes that are not labels count one each and are measured by the regex
    module in one match; only the labels between them are looked at one by one. A text with
    no code point that can join a grapheme to another (nearly every excerpt: CJK, Latin,
    code) is cut by code points, which are then its graphemes (`_cut_simple`)."""
    labels = LABELS.get(locale, LABELS["en"])
    if _JOINING.search(text) is None:
        return _cut_simple(text, length, labels)
    return _cut_clusters(text, length, labels)


def _cut_clusters(text: str, length: int, labels: dict[str, str]) -> tuple[str, bool, int]:
    """`_cut` of any text: runs measured by `\\X`."""
    out: list[str] = []
    used = 0
    position = 0
    while True:
        run = _PLAIN_RUN.match(text, position)
        assert run is not None  # the run may be empty
        count = grapheme_count(run.group()) if run.end() > position else 0
        if used + count > length:  # the cut falls in this run, on a grapheme that is no label
            head = _first_graphemes(length - used).match(text, position)
            assert head is not None
            cluster = _GRAPHEME.match(text, head.end())
            assert cluster is not None
            return "".join(out) + head.group(), True, cluster.end()
        out.append(run.group())
        used += count
        position = run.end()
        if position == len(text):
            return "".join(out), False, 0
        label = _GRAPHEME.match(text, position)  # a grapheme that starts with a label marker
        assert label is not None
        cluster = label.group()
        size = _label_size(labels[cluster[0]]) + (1 if len(cluster) > 1 else 0)
        if used + size > length:
            # A label that does not fit is left out whole, with the space that led to it.
            return "".join(out).rstrip(), True, label.end()
        out.append(labels[cluster[0]] + cluster[1:])
        used += size
        position = label.end()


def _cut_simple(text: str, length: int, labels: dict[str, str]) -> tuple[str, bool, int]:
    """`_cut` of a text in which every code point is a grapheme of its own (no `_JOINING`
    code point): the same walk, with plain slices for the runs between labels."""
    out: list[str] = []
    used = 0
    position = 0
    while True:
        found = _MARKER.search(text, position)
        end = found.start() if found is not None else len(text)
        if used + (end - position) > length:  # the cut falls in this run
            cut = position + length - used
            return "".join(out) + text[position:cut], True, cut + 1
        out.append(text[position:end])
        used += end - position
        if found is None:
            return "".join(out), False, 0
        label = labels[found.group()]
        size = _label_size(label)
        if used + size > length:
            # A label that does not fit is left out whole, with the space that led to it.
            return "".join(out).rstrip(), True, end + 1
        out.append(label)
        used += size
        position = end + 1


# A run of graphemes none of which starts with a label marker.
_PLAIN_RUN = regex.compile("(?:(?![" + "".join(MARKERS) + r"])\X)*")
_MARKER = regex.compile("[" + "".join(MARKERS) + "]")
# The code points that can join a grapheme to its neighbour (UAX #29's rules other than "break
# everywhere else", GB999): without any, each code point is a grapheme. A carriage return joins
# a line feed; the rest by their Grapheme_Cluster_Break property, from the same tables as `\X`
# (tests/excerpt/test_cold_path.py holds the two to each other).
_JOINING = regex.compile(
    r"[\r\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=SpacingMark}\p{GCB=Prepend}"
    r"\p{GCB=Regional_Indicator}\p{GCB=L}\p{GCB=V}\p{GCB=T}\p{GCB=LV}\p{GCB=LVT}]"
)


@cache
def _label_size(label: str) -> int:
    return grapheme_count(label)


@cache
def _first_graphemes(length: int) -> regex.Pattern[str]:
    return regex.compile(rf"\X{{0,{length}}}")
