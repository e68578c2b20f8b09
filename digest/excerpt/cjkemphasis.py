"""CJK-friendly emphasis for markdown-it-py: `**主持人：**欢迎` is bold, as the writer meant.

CommonMark's flanking rules do not let `**` close after punctuation when a letter follows, so
`**主持人：**欢迎` and `这是*“强调”*的` keep their asterisks; Chinese and Japanese prose writes
no space there (commonmark-spec issue 650). Several blog renderers (Hexo's marked among them)
render such text bold, and an excerpt showing `**` is markup left over either way. This follows
the CJK-friendly amendment (the markdown-cjk-friendly extension): a delimiter run next to
punctuation on its inner side still flanks when the character on its outer side is a Chinese,
Japanese or Korean character or CJK punctuation. Text without CJK is parsed exactly as
CommonMark says.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import regex
from markdown_it import MarkdownIt
from markdown_it.common.utils import isMdAsciiPunct, isPunctChar, isWhiteSpace
from markdown_it.rules_inline import emphasis, strikethrough
from markdown_it.rules_inline.state_inline import Scanned, StateInline

_CJK = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Bopomofo}"
    r"\u3000-\u303f\u30fb\uff00-\uffef\ufe30-\ufe4f]"
)


def _scan_delims(self: StateInline, start: int, canSplitWord: bool) -> Scanned:
    """StateInline.scanDelims with the CJK-friendly flanking rules."""
    src, maximum = self.src, self.posMax
    marker = src[start]
    pos = start
    while pos < maximum and src[pos] == marker:
        pos += 1
    last = src[start - 1] if start > 0 else " "
    after = src[pos] if pos < maximum else " "
    last_punct = isMdAsciiPunct(ord(last)) or isPunctChar(last)
    next_punct = isMdAsciiPunct(ord(after)) or isPunctChar(after)
    last_space, next_space = isWhiteSpace(ord(last)), isWhiteSpace(ord(after))
    last_cjk, next_cjk = bool(_CJK.match(last)), bool(_CJK.match(after))
    left = not next_space and (not next_punct or last_space or last_punct or last_cjk)
    right = not last_space and (not last_punct or next_space or next_punct or next_cjk)
    can_open = left and (canSplitWord or not right or last_punct)
    can_close = right and (canSplitWord or not left or next_punct)
    return Scanned(can_open, can_close, pos - start)


def _friendly(
    tokenize: Callable[[StateInline, bool], bool],
) -> Callable[[StateInline, bool], bool]:
    def rule(state: StateInline, silent: bool) -> bool:
        # the emphasis rules call state.scanDelims; this state's own method takes its place
        state.scanDelims = types.MethodType(_scan_delims, state)  # type: ignore[method-assign]
        return tokenize(state, silent)

    return rule


def cjk_emphasis_plugin(md: MarkdownIt) -> None:
    """Make `md`'s emphasis and strikethrough rules CJK-friendly."""
    md.inline.ruler.at("emphasis", _friendly(emphasis.tokenize))
    md.inline.ruler.at("strikethrough", _friendly(strikethrough.tokenize))
