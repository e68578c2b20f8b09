"""Math in Markdown: which delimiters a blog really renders, and telling TeX from prose.

`\\(`, `\\)`, `\\[`, `\\]` are CommonMark backslash escapes: in a blog whose Markdown renderer
does not pass them through to MathJax they are plain brackets, common around link-like text.
Whether `$…$` or `\\(…\\)` is math depends on the blog, so `excerpt.math` says (docs/excerpts.md):

- `auto` (the default): every delimiter below, but `\\(…\\)` and `\\[…\\]` only around content
  that looks like TeX (`looks_like_tex`); around prose they stay brackets.
- `dollars`: `$…$` inline, `$$…$$` display (KaTeX/MathJax with dollars, Pandoc, hexo-filter-mathjax
  behind a Markdown renderer that eats the backslash escapes).
- `brackets`: `\\(…\\)` inline, `\\[…\\]` and `$$…$$` display (MathJax's and KaTeX auto-render's
  defaults, Hugo's passthrough with those delimiters).
- `both`: all of them.
- `kramdown`: `$$…$$`, inline inside a paragraph and display on its own (Jekyll's kramdown),
  and `$…$` holding unmistakable TeX (`\\alpha`, `x^2`, `a_{ij}`), which a page loading MathJax
  with `$` delimiters renders although kramdown does not.
- `backticks`: as `auto`, and code spans holding math (`` `$…$` ``, `` `$$…$$` `` over several
  lines, `` `\\(…\\)` ``, `` `\\begin{env}…\\end{env}` ``), which blogdown's math-code.js turns
  into MathJax math on the page (digest.excerpt.pagemath).
- `none`: no math; only a ```` ```math ```` fence is a formula.

Whatever the mode, a `$$` or `\\[` block may contain blank lines and may start right after a
paragraph line, `$…$` may run over several lines, `\\begin{env}…\\end{env}` on its own lines is a
formula (except with `none`), and `$…$` with a space inside its delimiters (`$f(x) = y $`) is math
when its content looks like TeX. A `$` right after a digit, or a closing `$` right before one, is
currency (`$5 and $10`), never math. Math never crosses a code span: a delimiter inside one does
not pair with one outside it, so prose between two code spans is never taken for math whatever
the mode. Math that only defines macros (`\\newcommand`, `\\def`, …) shows nothing on the page,
and nothing in the excerpt (digest.excerpt.pagemath).
"""

from __future__ import annotations

from collections.abc import Callable

import regex
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline

from digest.excerpt.mathmode import DELIMITERS
from digest.excerpt.settings import MathMode

# Modes that tell TeX from prose inside `\\(…\\)` and `\\[…\\]` (looks_like_tex).
_GUESSING = frozenset({"auto", "backticks"})

_COMMAND = regex.compile(r"\\(?:[A-Za-z]+|[{}|,;:!#$%&_^])")
_SCRIPT = regex.compile(r"[\^_]\s*[\w{\\]|[{}]")
_PROSE_SCRIPT = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
_WORD = regex.compile(r"[^\W\d_]+")
_OPERATOR = regex.compile(r"[=<>+\-*/|≤≥≠±×÷]")
_DIGIT = regex.compile(r"\d")
_FUNCTIONS = frozenset(
    [
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "log",
        "ln",
        "lg",
        "exp",
        "max",
        "min",
        "lim",
        "sup",
        "inf",
        "det",
        "dim",
        "mod",
        "gcd",
        "lcm",
        "arg",
        "deg",
    ]
)
_STRONG_TEX = regex.compile(r"\\[A-Za-z]{2,}|\^\s*[\w{\\]|_\{")
_BEGIN = regex.compile(r"\\begin\{([A-Za-z]+\*?)\}")
_REFERENCE = regex.compile(r"\\(?:eq)?ref\{[^{}\s]+\}")
_LABEL = regex.compile(r"\s*(?:\([^()]*\))?\s*")


def looks_like_tex(text: str, *, display: bool = False) -> bool:
    """Whether bracketed content is TeX rather than prose.

    TeX: a command (`\\frac`, `\\alpha`, `\\{`), a super- or subscript or a brace group; or, with
    no CJK text and no word of two letters or more (other than function names such as sin, log,
    max), single-letter variables (`x`, `f(x) = y`, `a + b`) or numbers joined by an operator
    (`1 + 1 = 2`). Display brackets need an operator too, so `\\[x\\]` (a checkbox) stays text.
    """
    content = text.strip()
    if not content:
        return False
    if _COMMAND.search(content):
        return True
    if _PROSE_SCRIPT.search(content):
        return False
    if _SCRIPT.search(content):
        return True
    words = _WORD.findall(content)
    if any(len(w) > 1 and w.lower() not in _FUNCTIONS for w in words):
        return False
    operator = bool(_OPERATOR.search(content))
    if display:
        return operator and bool(words or _DIGIT.search(content))
    return bool(words) or (operator and bool(_DIGIT.search(content)))


def math_plugin(md: MarkdownIt, mode: MathMode) -> None:
    """Add the block and inline math rules of `mode`: tokens `math_block` (display),
    `math_inline_double` (display delimiters inside a paragraph) and `math_inline`."""
    if mode == "none":
        return
    md.block.ruler.before(
        "fence",
        "math_display",
        _block_rule(mode),
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.inline.ruler.before("escape", "math_span", _inline_rule(mode))


def _unescaped(src: str, needle: str, start: int, limit: int | None = None) -> int:
    """The next `needle` at or after `start` not preceded by an odd run of backslashes."""
    limit = len(src) if limit is None else limit
    at = src.find(needle, start, limit)
    while at >= 0:
        backslashes = 0
        while at - backslashes - 1 >= start and src[at - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return at
        at = src.find(needle, at + 1, limit)
    return -1


def _inline_rule(mode: MathMode) -> Callable[[StateInline, bool], bool]:
    allowed = DELIMITERS[mode]

    def rule(state: StateInline, silent: bool) -> bool:
        src, pos, end = state.src, state.pos, state.posMax
        found = _inline_span(src, pos, end, mode, allowed)
        if found is None:
            return False
        kind, content, after = found
        if not silent:
            token = state.push(kind, "math", 0)
            token.content = content
        state.pos = after
        return True

    return rule


def _inline_span(
    src: str, pos: int, end: int, mode: MathMode, allowed: frozenset[str]
) -> tuple[str, str, int] | None:
    before = src[pos - 1] if pos > 0 else ""
    reference = _REFERENCE.match(src, pos, end)
    if reference is not None:  # MathJax numbers \eqref{eq:1} in the text too: "(1)"
        return "math_inline", reference.group(), reference.end()
    if src.startswith(("\\(", "\\["), pos):
        opener = src[pos : pos + 2]
        if opener not in allowed:
            return None
        closer = "\\)" if opener == "\\(" else "\\]"
        close = _unescaped(src, closer, pos + 2, end)
        if close < 0:
            return None
        content = src[pos + 2 : close]
        if "`" in content:
            return None  # the closer is inside a code span: math never crosses one
        if mode in _GUESSING and (
            (before.isascii() and before.isalnum())
            or not looks_like_tex(content, display=opener == "\\[")
        ):
            return None
        kind = "math_inline" if opener == "\\(" else "math_inline_double"
        return (kind, content, close + 2) if content.strip() else None
    if src.startswith("$$", pos):
        if "$$" not in allowed:
            return None
        close = _unescaped(src, "$$", pos + 2, end)
        if close < 0 or not src[pos + 2 : close].strip() or "`" in src[pos + 2 : close]:
            return None
        kind = "math_inline" if mode == "kramdown" else "math_inline_double"
        return kind, src[pos + 2 : close], close + 2
    if src.startswith("$", pos) and ("$" in allowed or mode == "kramdown"):
        if before.isdigit():
            return None
        close = _unescaped(src, "$", pos + 1, end)
        if close < 0 or src.startswith("$$", close):
            return None
        content = src[pos + 1 : close]
        if not content.strip() or src[close + 1 : close + 2].isdigit() or "`" in content:
            return None
        tight = not content[0].isspace() and not content[-1].isspace()
        if mode == "kramdown":
            # kramdown leaves `$…$` as text, but a page that loads MathJax with `$` renders it:
            # unmistakable TeX (a command, a ^ or _{ script) is math, anything else text
            if not tight or not _STRONG_TEX.search(content):
                return None
        elif not tight and not looks_like_tex(content):
            return None
        return "math_inline", content, close + 1
    return None


def _block_rule(mode: MathMode) -> Callable[[StateBlock, int, int, bool], bool]:
    allowed = DELIMITERS[mode]

    def rule(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
        if state.sCount[start_line] - state.blkIndent >= 4:
            return False
        first = _line(state, start_line)
        begin = _BEGIN.match(first)
        if first.startswith("$$") and "$$" in allowed:
            opener, closer = "$$", "$$"
        elif first.startswith("\\[") and "\\[" in allowed:
            opener, closer = "\\[", "\\]"
        elif begin is not None:
            opener, closer = "", "\\end{" + begin.group(1) + "}"
        elif first.strip() == "$" and "$" in allowed:
            opener, closer = "$", "$"  # `$` alone on a line around an environment, as $$
        else:
            return False
        if _inside_code_span(state, start_line):
            return False  # `$$ … $$` in backticks over lines: its last line is no opener
        found = _block_end(state, start_line, end_line, first[len(opener) :], closer)
        if found is None:
            return False
        last_line, content = found
        if mode in _GUESSING and opener == "\\[" and not looks_like_tex(content, display=True):
            return False
        guessing = mode in _GUESSING
        if guessing and opener == "$$" and "\n\n" in content and not looks_like_tex(content):
            return False
        if opener == "$" and not looks_like_tex(content):
            return False
        if silent:
            return True
        token = state.push("math_block", "math", 0)
        token.block = True
        token.content = content
        token.map = [start_line, last_line + 1]
        state.line = last_line + 1
        return True

    return rule


def _line(state: StateBlock, line: int) -> str:
    return state.src[state.bMarks[line] + state.tShift[line] : state.eMarks[line]]


def _block_end(
    state: StateBlock, start_line: int, end_line: int, rest: str, closer: str
) -> tuple[int, str] | None:
    """The line that closes the block, and the content between the delimiters."""
    if closer in rest:
        at = rest.rfind(closer)
        if not _LABEL.fullmatch(rest[at + len(closer) :]):
            return None  # `$$a$$ and more text`: inline math in a paragraph
        return start_line, rest[:at] if closer.startswith(("$", "\\]")) else rest
    lines = [rest]
    for line in range(start_line + 1, end_line):
        text = _line(state, line)
        if text and state.sCount[line] < state.blkIndent:
            return None  # the container (list item, quote) ended first
        at = text.rfind(closer)
        if at >= 0 and _LABEL.fullmatch(text[at + len(closer) :]):
            lines.append(text[:at] if not closer.startswith("\\end") else text)
            return line, "\n".join(lines)
        lines.append(text)
    return None


_BACKTICKS = regex.compile(r"(?<!`)`+(?!`)")
# How far a code span is looked for around a line: no formula in backticks runs longer, and
# a paragraph of thousands of `$$` lines stays linear.
_SPAN_LINES = 200


def code_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every code span in `text`, as CommonMark pairs backtick strings: a
    string of N backticks opens a span closed by the next string of exactly N; one not closed
    is literal. A backtick after a backslash is escaped (outside a span)."""
    spans: list[tuple[int, int]] = []
    runs = list(_BACKTICKS.finditer(text))
    index = 0
    while index < len(runs):
        opener = runs[index]
        start = opener.start()
        backslashes = 0
        while start - backslashes > 0 and text[start - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2:  # the first backtick is escaped: the rest of the run may open
            if opener.end() - start == 1:
                index += 1
                continue
            start += 1
        width = opener.end() - start
        closer = next(
            (j for j in range(index + 1, len(runs)) if runs[j].end() - runs[j].start() == width),
            None,
        )
        if closer is None:
            index += 1
            continue
        spans.append((start, runs[closer].end()))
        index = closer + 1
    return spans


def _inside_code_span(state: StateBlock, line: int) -> bool:
    """Whether `line` continues a paragraph inside a code span opened on an earlier line (the
    `$$` that closes `` `$$ … $$` `` written over several lines, or a `\\begin` line in one)."""
    first = line
    while first > max(0, line - _SPAN_LINES) and not state.isEmpty(first - 1):
        first -= 1
    if first == line:
        return False
    last = line
    while last + 1 < min(state.lineMax, line + _SPAN_LINES) and not state.isEmpty(last + 1):
        last += 1
    lines = [_line(state, n) for n in range(first, last + 1)]
    offset = sum(len(text) + 1 for text in lines[: line - first])
    return any(start < offset < end for start, end in code_spans("\n".join(lines)))
