"""What the excerpt stage reads from the configuration: length, label language, math.

`ExcerptSettings` is built by the entry points from `Config` (digest.config.stages), or given
directly (`digest excerpt`, tests); the stage never sees the `Config` itself. Standard library
only, so that anything may hold one without loading the Markdown machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# Which math delimiters the blog renders (digest.excerpt.tex, docs/excerpts.md).
MathMode = Literal["auto", "dollars", "brackets", "both", "kramdown", "backticks", "none"]
MATH_MODES: tuple[MathMode, ...] = get_args(MathMode)
DEFAULT_LENGTH = 350


@dataclass(frozen=True, slots=True, kw_only=True)
class ExcerptSettings:
    """How excerpts are made: at most `length` graphemes, labels ([代码] or [code]) in the
    posts' language `labels` (`excerpt.labels`, default `site.locale`), and the blog's `math`
    delimiters (`excerpt.math`). Equal settings make equal excerpts of equal posts, which
    the post cache relies on (digest.sources.cache keys on them)."""

    length: int = DEFAULT_LENGTH
    labels: str = "zh"
    math: MathMode = "auto"
