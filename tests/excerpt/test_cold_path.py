"""The shortcuts of the cold path (found by profiling bench/posts.py) change no result: each
gives exactly what the plain code it replaces gives."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.excerpt import attributes
from digest.excerpt.attributes import strip_attributes
from digest.excerpt.clean import _UNWANTED, clean
from digest.excerpt.markers import CODE, FORMULA, MATH
from digest.excerpt.rules import cut_graphemes
from digest.excerpt.tags import CODE_SPAN, fenced_ranges

SPECIAL = [
    "\x00",
    "\x08",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9f",
    "\ud800",
    "\udfff",
    "\ufdd0",
    "\ufdef",
    "\ufffd",
    "\ufffe",
    "\uffff",
    "\U0001fffe",
    "\U0001ffff",
    "\U0010fffe",
    "\U0010ffff",
    "😀",
    "👩‍💻",
    "é",
    "中文",
    "text",
]
ANY_TEXT = st.lists(
    st.one_of(st.sampled_from(SPECIAL), st.text(st.characters(exclude_categories=()))),
    max_size=30,
).map("".join)


def plain_clean(text: str) -> str:
    """digest.excerpt.clean as it was: one pass of the whole set."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNWANTED.sub("", text)


@pytest.mark.slow
@settings(max_examples=500)
@given(ANY_TEXT)
def test_clean_in_two_parts_is_clean_in_one(text: str) -> None:
    assert clean(text) == plain_clean(text)


def test_clean_removes_astral_noncharacters_next_to_emoji() -> None:
    assert clean("a😀\U0001fffeb\U0010ffff\ud800c") == "a😀bc"


def plain_strip(markdown: str) -> str:
    """attributes.strip_attributes without its shortcut: every pass finds the code."""
    if "{" not in markdown:
        return markdown
    passes: tuple[tuple[re.Pattern[str], str | None], ...] = (
        (attributes._EXTENSION_BLOCK, None),
        (attributes._TOC_LIST, None),
        (attributes._HEADING_ATTRIBUTES, r"\g<heading>"),
        (attributes._EXTENSION, None),
        (attributes._IAL, None),
        (attributes._BLOCK_ATTRIBUTES, None),
    )
    for pattern, replacement in passes:
        code = fenced_ranges(markdown) + [m.span() for m in CODE_SPAN.finditer(markdown)]
        markdown = attributes._sub_once(pattern, markdown, code, replacement)
    return markdown


PIECES = [
    "{: .note}",
    "{:toc}",
    "* TOC\n{:toc}\n",
    '{::options parse_block_html="true" /}',
    "{::comment}hidden{:/comment}",
    "{::nomarkdown}<b>kept</b>{:/nomarkdown}",
    "## Heading {#id .class}",
    "{#id .class key=value}\n",
    '[link](https://x.org){:target="_blank"}',
    "`{:toc}`",
    "```\n{: .in-code}\n```\n",
    "~~~\n{#fenced}\n~~~\n",
    "$e^{x}$",
    "{not an attribute}",
    "text ",
    "\n",
    "\n\n",
    "中文",
]


@pytest.mark.slow
@settings(max_examples=500)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_strip_attributes_skipping_passes_with_nothing_to_strip_is_the_same(text: str) -> None:
    assert strip_attributes(text) == plain_strip(text)


def plain_cut(text: str, length: int, locale: str) -> tuple[str, bool]:
    """cut_graphemes as it was: every grapheme of the text found first (findall)."""
    from digest.excerpt.markers import LABELS, MARKERS
    from digest.excerpt.rules import _GRAPHEME, grapheme_count

    labels = LABELS.get(locale, LABELS["en"])
    out: list[str] = []
    used = 0
    for cluster in _GRAPHEME.findall(text):
        if cluster[0] in MARKERS:
            piece = labels[cluster[0]] + cluster[1:]
            size = grapheme_count(labels[cluster[0]]) + (1 if len(cluster) > 1 else 0)
        else:
            piece, size = cluster, 1
        if used + size > length:
            kept = "".join(out)
            return (kept.rstrip() if cluster[0] in MARKERS else kept), True
        out.append(piece)
        used += size
    return "".join(out), False


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from([CODE, FORMULA, MATH, " ", "a", "中", "👩‍💻", "e\u0301", "🇨🇳", "\u200d"]),
        max_size=40,
    ).map("".join),
    st.integers(min_value=1, max_value=45),
    st.sampled_from(["zh", "en"]),
)
def test_cutting_without_splitting_the_rest_is_the_same(
    text: str, length: int, locale: str
) -> None:
    assert cut_graphemes(text, length, locale) == plain_cut(text, length, locale)


_PIECES = [
    CODE,
    FORMULA,
    MATH,
    " ",
    "a",
    "中",
    "👩‍💻",
    "e",
    "\u0301",
    "🇨🇳",
    "🇨",
    "\u200d",
    "\U0001f3fb",
]


@settings(max_examples=400)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
    st.lists(st.sampled_from(_PIECES), max_size=8).map("".join),
    st.integers(min_value=1, max_value=45),
    st.sampled_from(["zh", "en"]),
)
def test_a_cut_decided_before_the_last_grapheme_stays_whatever_follows(
    start: str, rest: str, length: int, locale: str
) -> None:
    """The lazy parse stops reading a body once `_cut_before_end` says the text so far decides
    the cut: no continuation (combining marks, a second regional indicator, a ZWJ) moves it."""
    from digest.excerpt.rules import _cut_before_end

    if _cut_before_end(start, length, locale):
        assert cut_graphemes(start + rest, length, locale) == cut_graphemes(start, length, locale)


# -- texts whose every code point is a grapheme: cut by slices ------------------------------------


def _non_joining() -> list[str]:
    """Every code point `_JOINING` does not match (surrogates left out: no text holds one)."""
    from digest.excerpt.rules import _JOINING

    return [
        c
        for c in map(chr, range(0x110000))
        if not 0xD800 <= ord(c) <= 0xDFFF and _JOINING.match(c) is None
    ]


def test_without_a_joining_code_point_every_code_point_is_a_grapheme() -> None:
    """`_cut_simple` and `grapheme_count`'s shortcut rest on this: next to each other, code
    points `_JOINING` leaves out are never one grapheme (`\\X`, the same tables). Every such
    code point of Unicode is checked, in order and shuffled (a grapheme break depends on the
    pair of neighbours): line feeds, controls, emoji, CJK, private use and the rest."""
    import random

    from digest.excerpt.rules import _GRAPHEME

    alone = _non_joining()
    assert len(alone) > 1_000_000 and "\n" in alone and "中" in alone and "😀" in alone
    for joining in ("\r", "\u0301", "\u200d", "\U0001f3fb", "\U0001f1e8", "한", "\u1100"):
        assert joining not in alone
    mixed = alone[:]
    random.Random(22).shuffle(mixed)
    for order in (alone, mixed):
        text = "".join(order)
        assert len(_GRAPHEME.findall(text)) == len(text)


_SIMPLE = [CODE, FORMULA, MATH, " ", "  ", "a", "中", "。", "😀", "\n", "\t", "\x85", "\ue000"]


@settings(max_examples=500)
@given(
    st.lists(st.sampled_from(_SIMPLE), max_size=60).map("".join),
    st.integers(min_value=1, max_value=60),
    st.sampled_from(["zh", "en"]),
)
def test_a_text_of_single_code_point_graphemes_is_cut_by_slices_the_same(
    text: str, length: int, locale: str
) -> None:
    from digest.excerpt.markers import LABELS
    from digest.excerpt.rules import _cut_clusters, _cut_simple, grapheme_count

    labels = LABELS[locale]
    assert _cut_simple(text, length, labels) == _cut_clusters(text, length, labels)
    assert cut_graphemes(text, length, locale) == plain_cut(text, length, locale)
    assert grapheme_count(text) == len(text)
