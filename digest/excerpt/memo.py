"""Excerpts already made, remembered by everything they depend on (`ExcerptInputs`).

The post cache (digest.sources.cache) keeps the excerpts it made; a read of the sources hands
them here, and digest.excerpt.rules.excerpt_of returns one of them instead of parsing the
body again. Standard library only: a read that finds every excerpt it needs in the cache never
loads the Markdown machinery.
"""

from __future__ import annotations

from typing import NamedTuple

from digest.excerpt.mathmode import post_math
from digest.excerpt.settings import ExcerptSettings, MathMode
from digest.models import BodyFormat, Post


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


def known_excerpt(inputs: ExcerptInputs) -> str | None:
    """The excerpt remembered for exactly these inputs, if any."""
    return _known.get(inputs)


def remember_excerpts(known: dict[ExcerptInputs, str]) -> None:
    """Excerpts the sources have at hand (digest.sources.cache keeps them with the posts), for
    `excerpt_of` to return instead of parsing again: parsing is most of the cost of reading
    a blog. Keyed by the full inputs, so a remembered excerpt is never one of other text or
    settings; each call replaces the last (one blog's worth is kept, not every one seen)."""
    global _known
    _known = known
