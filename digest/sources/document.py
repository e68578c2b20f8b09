"""One Markdown document given as text (`digest excerpt FILE`): front matter off, excerpt made.

The excerpt stage takes a body and an author's summary; splitting a document's front matter
and finding the summary in it is the sources' part, done here the way a folder source does it
(digest.sources.frontmatter, `summary_from`), so `digest excerpt` shows what a digest would.
"""

from __future__ import annotations

from digest.errors import PostError
from digest.excerpt.clean import clean
from digest.excerpt.markup import summary_from
from digest.excerpt.mathmode import math_switch, post_math
from digest.excerpt.rules import excerpt_of
from digest.excerpt.settings import DEFAULT_LENGTH, MathMode
from digest.sources.frontmatter import FrontMatterError, split_front_matter


def make_excerpt(
    text: str, length: int = DEFAULT_LENGTH, locale: str = "zh", math: MathMode = "auto"
) -> str:
    """The excerpt of a Markdown post, given with or without its front matter.

    `locale` chooses the labels ([代码] or [code]); `math` the blog's math delimiters, which
    the post's own `math:` front matter overrides (digest.excerpt.tex.post_math). A front
    matter that cannot be read is a PostError saying why.
    """
    try:
        metadata, body = split_front_matter(clean(text))
    except FrontMatterError as exc:
        raise PostError(str(exc)) from None
    summary = summary_from(metadata)
    mode = post_math(math, math_switch(metadata))
    return excerpt_of(body, summary=summary, length=length, locale=locale, math=mode)
