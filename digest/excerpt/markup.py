"""Markup to plain text: the parsing half of the excerpt rules (DESIGN.md section 3).

Markdown is parsed by markdown-it-py (CommonMark, tables, footnotes, and the blog's math
delimiters: digest.excerpt.tex) and its token stream is walked straight into plain text, code
and math becoming *label markers*; a feed entry's HTML is walked by `html_to_text`. Markers are
Unicode noncharacters (reserved for internal use, never in real text) so that the excerpt cut
can treat each label as one indivisible unit and the locale's label text is chosen only at the
end.

The walk of the tokens is the walk of the HTML the renderer would write (`markdown_to_html`,
whose render rules below say what code and math become), without writing and parsing it: a
tag the renderer would write reaches the walker's handler directly, text directly, and only raw
HTML from the post goes through the HTML parser. When that raw HTML leaves the parser in the
middle of something (an unclosed tag, a `<script>`), what follows is rendered and fed to it, as
the HTML would have been. tests/excerpt/test_token_text.py runs both on every fixture, the
demo blog and generated documents, and requires the same text.

The body is also parsed only as far as the excerpt needs (`markdown_to_text`'s `enough`): the
block parser runs one top-level block at a time and stops once the text decides the excerpt.
That is the whole document's parse, cut short, unless something later in the document can
change what comes before it: a link reference or footnote definition (any `]:`) makes the
whole document parsed first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape, unescape
from html.parser import HTMLParser
from typing import Any, Protocol

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.footnote import footnote_plugin

from digest.excerpt.attributes import strip_attributes
from digest.excerpt.cjkemphasis import cjk_emphasis_plugin
from digest.excerpt.markers import CODE, FORMULA, LABELS, MATH
from digest.excerpt.pagemath import defines_only, math_code
from digest.excerpt.settings import MathMode
from digest.excerpt.tags import resolve_tags
from digest.excerpt.tex import math_plugin

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "br",
    ]
)
_DROP_TAGS = frozenset({"script", "style", "template", "head", "title", "noscript", "svg"})
_MORE = re.compile(r"\s*more\s*", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
# TeX delimiters that survive as text in feed HTML (MathJax style); single `$` is too ambiguous.
_TEX_DISPLAY = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]", re.DOTALL)
_TEX_INLINE = re.compile(r"\\\(.+?\\\)", re.DOTALL)


@cache
def parser(math: MathMode = "auto") -> MarkdownIt:
    """The Markdown parser for a blog whose math follows `math` (excerpt.tex), labels rendered."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    math_plugin(md, math)
    md.use(footnote_plugin)
    md.use(cjk_emphasis_plugin)

    def block(marker: str) -> Any:
        def rule(
            self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
        ) -> str:
            token = tokens[idx]
            is_math_fence = token.type == "fence" and token.info.strip().lower() in {
                "math",
                "latex",
            }
            if marker == FORMULA and defines_only(token.content):
                return "\n"  # macros only: the page shows nothing
            return f"\n<div>{FORMULA if is_math_fence else marker}</div>\n"

        return rule

    def inline(marker: str) -> Any:
        def rule(
            self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
        ) -> str:
            if marker in (FORMULA, MATH) and defines_only(tokens[idx].content):
                return ""
            return marker

        return rule

    for name in ("fence", "code_block"):
        md.add_render_rule(name, block(CODE))
    for name in ("math_block", "math_block_label", "math_block_eqno"):
        md.add_render_rule(name, block(FORMULA))
    md.add_render_rule("math_inline_double", inline(FORMULA))
    md.add_render_rule("math_inline", inline(MATH))
    for name in ("footnote_ref", "footnote_anchor", "image"):
        md.add_render_rule(name, inline(""))
    md.core.ruler.after("block", "alerts", _drop_alert_markers)
    if math == "backticks":
        md.add_render_rule("code_inline", _math_in_code)
    return md


# GitHub's alert marker (`> [!NOTE]`), also Hugo's and Obsidian's (any word, a fold sign, a title)
_ALERT = re.compile(r"\[![A-Za-z]+\][+-]?[ \t]*\n?")


def _drop_alert_markers(state: StateCore) -> None:
    """`> [!TIP]` starting a quote is the alert's kind, shown as an icon and a word: the text
    after it stays, the marker goes."""
    tokens = state.tokens
    for index, token in enumerate(tokens[:-2]):
        if token.type == "blockquote_open" and tokens[index + 1].type == "paragraph_open":
            inline = tokens[index + 2]
            marker = _ALERT.match(inline.content) if inline.type == "inline" else None
            if marker is not None:
                inline.content = inline.content[marker.end() :]


def _math_in_code(
    self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """`excerpt.math: backticks`: a code span holding math is the math it becomes on the page
    (blogdown's math-code.js); any other code span is code text, as usual."""
    content = tokens[idx].content
    kind = math_code(content)
    if kind is None:
        return f"<code>{escape(content)}</code>"
    if defines_only(_math_code_inner(content, kind)):
        return ""
    return MATH if kind == "inline" else FORMULA


SUMMARY_KEYS = ("summary", "excerpt", "description")


def summary_from(metadata: dict[str, Any]) -> str | None:
    """The author's own excerpt from front matter: the first of summary, excerpt, description."""
    for key in SUMMARY_KEYS:
        value = metadata.get(key)
        if value is not None and str(value).strip():
            return str(value)
    return None


_INLINE_TAG = re.compile(
    r"</?(?:a|abbr|b|big|br|cite|code|del|em|i|ins|kbd|mark|q|s|samp|small|span|strike|"
    r"strong|sub|sup|tt|u|var)\b[^<>]*>",
    re.IGNORECASE,
)
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")


def title_text(title: str) -> str:
    """A front-matter title as the blog's page shows it: inline HTML tags (`<code>`, `<em>`)
    removed and character references (`&nbsp;`, `&amp;`) decoded, whitespace collapsed; other
    angle brackets (`std::vector<T>`) are text and stay."""
    text = _INLINE_TAG.sub("", title)
    text = _ENTITY.sub(lambda m: unescape(m.group(0)), text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Heading:
    """A document's first heading as plain text, and the body without it when it came first."""

    text: str
    rest: str | None  # None when something precedes the heading (it stays in the body)


def first_heading(text: str) -> Heading | None:
    """The first heading of a Markdown document (a post without a title takes it as title).

    When the heading is the document's first block, `rest` is the document without it, so that
    the excerpt does not repeat the title it became. The document is parsed up to the block
    holding that heading, not further.
    """
    md = parser()
    tokens: list[Token] = []
    for tokens, start, end in _chunks(md, text, {}, inline=False):
        index = next((i for i in range(start, end) if tokens[i].type == "heading_open"), None)
        if index is None or index + 1 >= len(tokens):
            continue
        token = tokens[index]
        inline = strip_attributes(resolve_tags(tokens[index + 1].content))
        heading = expand_labels(inline_text(md, inline).text, "en")
        if not heading:
            return None
        rest = None
        if index == 0 and token.map is not None:
            lines = text.splitlines(keepends=True)
            rest = "".join(lines[token.map[1] :]).lstrip("\n")
        return Heading(heading, rest)
    return None


def inline_text(md: MarkdownIt, text: str) -> PlainText:
    """Plain text of one line of inline Markdown, as `html_to_text(md.renderInline(text))`."""
    env: EnvType = {}
    walk = _TokenWalk(md, env, dollar_escapes=True)
    tokens = md.parseInline(text, env)
    walk.blocks(tokens, 0, len(tokens))
    walk.close()
    return walk.plain(tex_in_text=True)


def markdown_to_html(text: str, math: MathMode = "auto") -> str:
    """Render Markdown to HTML whose code and math are already label markers: what the token
    walk of `markdown_to_text` reads as if it were written (the tests compare the two)."""
    html: str = parser(math).render(text)
    return html


@dataclass(frozen=True, slots=True)
class PlainText:
    """Plain text with label markers; `before_more` is the text before a `<!--more-->` marker."""

    text: str
    before_more: str | None


class Progress(Protocol):
    """How far a body's plain text has come, for `markdown_to_text`'s `enough`."""

    @property
    def chars(self) -> int:
        """Characters of text so far (before whitespace is collapsed; labels are one each)."""

    @property
    def more(self) -> bool | None:
        """True once the first `<!--more-->` was met (what comes before it is final); False
        when the document holds none; None when one may still come."""

    def text(self) -> str:
        """The plain text so far: the start of the whole text."""

    def before_more(self) -> str | None:
        """The plain text before the first `<!--more-->` (None: not met)."""


Enough = Callable[[Progress], bool]


def markdown_to_text(text: str, math: MathMode = "auto", enough: Enough | None = None) -> PlainText:
    """Plain text of a Markdown body: Hexo tags and Hugo shortcodes resolved (excerpt.tags).

    With `enough`, the body is parsed a top-level block at a time and the text returned as
    soon as `enough` says it decides what is asked of it: the start of the whole text (and,
    once met, the whole text before `<!--more-->`)."""
    body = strip_attributes(resolve_tags(text))
    md = parser(math)
    walk = _TokenWalk(md, {}, dollar_escapes=math != "none")
    walk.may_have_more = _MORE_COMMENT.search(body) is not None
    for tokens, start, end in _chunks(md, body, walk.env, lazy=enough is not None):
        walk.blocks(tokens, start, end)
        walk.settle()
        if enough is not None and enough(walk):
            return walk.plain(tex_in_text=False)
    walk.close()
    return walk.plain(tex_in_text=False)


# Where a `<!--more-->` may be: HTMLParser ends a comment at `--` and `>` with spaces between.
_MORE_COMMENT = re.compile(r"<!--\s*more\s*--", re.IGNORECASE)
# Core rules that read and change only the tokens of one block (the others need the document).
_LOCAL_CORE_RULES = frozenset(
    {"alerts", "inline", "linkify", "replacements", "smartquotes", "text_join"}
)
# Core rules run once at the end, on nothing but what they add after the document.
_TAIL_CORE_RULES = frozenset({"footnote_tail"})


def _chunks(
    md: MarkdownIt, src: str, env: EnvType, *, lazy: bool = True, inline: bool = True
) -> Iterator[tuple[list[Token], int, int]]:
    """`md.parse(src, env)`'s tokens, as (all tokens so far, start, end) of each new part.

    Lazily: one top-level block at a time, each with the core rules that concern only it
    (inline parsing among them, unless not `inline`), and what the tail rules add (the
    footnotes of `^[inline notes]`) at the end, so that stopping early costs nothing more.
    Eagerly (not `lazy`, or when a `]:` may define a reference or footnote that changes the
    parse of what precedes it, or when a core rule is not known to be local): the whole
    document at once, as `md.parse` gives it.
    """
    rules = md.core.ruler.getRules("")
    names = md.core.ruler.get_active_rules()
    after = 2  # normalize, block, then the rules that read the tokens
    known = (
        len(names) == len(rules)
        and names[:after] == ["normalize", "block"]
        and all(name in _LOCAL_CORE_RULES | _TAIL_CORE_RULES for name in names[after:])
    )
    if not (lazy and known) or "]:" in src:
        whole = md.parse(src, env)
        yield whole, 0, len(whole)
        return
    core = StateCore(src, md, env)
    rules[0](core)  # normalize
    chain = list(zip(names[after:], rules[after:], strict=True))
    local = [rule for name, rule in chain if name in _LOCAL_CORE_RULES]
    if not inline:
        local = [rule for name, rule in chain if name in _LOCAL_CORE_RULES - {"inline"}]
    tokens: list[Token] = []
    if core.src:
        state = StateBlock(core.src, md, env, tokens)
        start = 0
        for _ in _top_level_blocks(md, state):
            part = StateCore(core.src, md, env, tokens[start:])
            for rule in local:
                rule(part)
            yield tokens, start, len(tokens)
            start = len(tokens)
    if inline:
        # the tail rules, and the rules after them, on what the tail rules add at the end
        ending = StateCore(core.src, md, env, [])
        tail = [i for i, (name, _) in enumerate(chain) if name in _TAIL_CORE_RULES]
        for name, rule in chain[tail[0] :] if tail else ():
            if name in _TAIL_CORE_RULES or ending.tokens:
                rule(ending)
        if ending.tokens:
            first = len(tokens)
            tokens.extend(ending.tokens)
            yield tokens, first, len(tokens)


def _top_level_blocks(md: MarkdownIt, state: StateBlock) -> Iterator[None]:
    """markdown-it's block tokenizer (ParserBlock.tokenize) over the whole document, pausing
    after each top-level block: what it has made by then is exactly the beginning of what a
    whole parse makes, since a block rule reads only forward, never what came before."""
    rules = md.block.ruler.getRules("")
    line, end = state.line, state.lineMax
    max_nesting = md.options.maxNesting
    has_empty_lines = False
    while line < end:
        state.line = line = state.skipEmptyLines(line)
        if line >= end or state.sCount[line] < state.blkIndent:
            break
        if state.level >= max_nesting:
            state.line = end
            break
        for rule in rules:
            if rule(state, line, end, False):
                if state.line <= line:
                    raise RuntimeError("block rule didn't increment state.line")
                break
        else:
            raise RuntimeError("none of the block rules matched")
        state.tight = not has_empty_lines
        line = state.line
        if (line - 1) < end and state.isEmpty(line - 1):
            has_empty_lines = True
        if line < end and state.isEmpty(line):
            has_empty_lines = True
            line += 1
            state.line = line
        yield


def html_to_text(html: str, *, tex_in_text: bool = True, dollar_escapes: bool = True) -> PlainText:
    """Walk HTML into plain text with markers, per the rules of DESIGN.md section 3.

    `tex_in_text` also turns TeX delimited by `$$`, `\\[ \\]` and `\\( \\)` in text nodes into
    markers: feed HTML carries math that way, while Markdown math is already parsed.
    `dollar_escapes`: a page that runs MathJax shows the `\\$` left in its text (written `\\\\$`
    in Markdown, or `\\$` in raw HTML) as `$`; text inside `<code>` is left as it is.
    """
    walker = _Walker(dollar_escapes)
    walker.feed(html)
    walker.close()
    full = "".join(walker.parts)
    before = "".join(walker.parts[: walker.more_at]) if walker.more_at is not None else None
    return PlainText(_normalise(full, tex_in_text), _normalise_optional(before, tex_in_text))


def _normalise(text: str, tex_in_text: bool) -> str:
    if tex_in_text:
        text = _TEX_DISPLAY.sub(FORMULA, text)
        text = _TEX_INLINE.sub(MATH, text)
    return _WHITESPACE.sub(" ", text).strip()


def _normalise_optional(text: str | None, tex_in_text: bool) -> str | None:
    return None if text is None else _normalise(text, tex_in_text)


def expand_labels(text: str, locale: str) -> str:
    """Replace label markers with the locale's label text."""
    labels = LABELS.get(locale, LABELS["en"])
    for marker, label in labels.items():
        text = text.replace(marker, label)
    return text


class _Walker(HTMLParser):
    """Collects text; skips whole subtrees (code, math, scripts) after emitting their label."""

    def __init__(self, dollar_escapes: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.dollar_escapes = dollar_escapes
        self._code = 0  # open <code> elements: MathJax leaves their text alone
        self.parts: list[str] = []
        self.chars = 0  # characters in parts
        self.more_at: int | None = None
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._lists: list[list[int]] = []  # per open list: [ordered (0/1), next number]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        marker = _label_for(tag, classes, attributes)
        if marker is not None or tag in _DROP_TAGS or _is_footnote_mark(tag, classes):
            if marker is not None:
                self.parts.append(f" {marker} " if tag in ("pre", "div") else marker)
            if tag not in _VOID_TAGS:
                self._skip_tag, self._skip_depth = tag, 1
            return
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")
        if tag == "code":
            self._code += 1
        if tag in ("ol", "ul"):
            # footnote numbers are footnote markers: the footnote list is not numbered
            ordered = tag == "ol" and "footnotes-list" not in classes
            self._lists.append([int(ordered), _start(attributes.get("start"))])
        elif tag == "li" and self._lists and self._lists[-1][0]:
            self.parts.append(f"{self._lists[-1][1]}. ")
            self._lists[-1][1] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag is None and tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if tag == "code" and self._code:
            self._code -= 1
        if tag in ("ol", "ul") and self._lists:
            self._lists.pop()
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if self._skip_tag is None:
            if self.dollar_escapes and not self._code:
                data = data.replace("\\$", "$")
            self.parts.append(data)
            self.chars += len(data)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        """`<![CDATA[…]]>` as the standard library reads it; any other `<![` (`<![img` in a
        post's raw HTML) is a bogus comment up to the next `>`, as browsers read it, where
        the standard library's parser stops with an AssertionError."""
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            return -1 if end < 0 else end + 1

    def handle_comment(self, data: str) -> None:
        if self._skip_tag is None and self.more_at is None and _MORE.fullmatch(data):
            self.more_at = len(self.parts)


class _TokenWalk(_Walker):
    """The walk of `_Walker`, fed from markdown-it's tokens instead of the HTML they render to.

    Each token gives the walker what the renderer's HTML would have given it (see the module
    docstring): the start and end tags of `renderToken` and the text between them straight to
    the handlers, text gathered up to the next tag as the HTML parser would have gathered it,
    raw HTML through the parser. While the parser holds something back (an unfinished tag, the
    inside of a `<script>`), tokens are rendered and fed instead, until the end of the block.
    """

    def __init__(self, md: MarkdownIt, env: EnvType, *, dollar_escapes: bool) -> None:
        super().__init__(dollar_escapes)
        self.md = md
        self.env = env
        renderer: Any = md.renderer  # RendererHTML: its rules and renderToken
        self.renderer = renderer
        self.rules: dict[str, Any] = renderer.rules
        self.options = md.options
        code_rule = self.rules.get("code_inline")
        self.math_code = getattr(code_rule, "__func__", code_rule) is _math_in_code
        self.may_have_more = True
        self._text: list[str] = []  # text since the last tag
        self._html: list[str] = []  # HTML rendered while the parser holds something back

    # -- Progress ------------------------------------------------------------------------

    @property
    def more(self) -> bool | None:
        if self.more_at is not None:
            return True
        return None if self.may_have_more else False

    def text(self) -> str:
        return _normalise("".join(self.parts), False)

    def before_more(self) -> str | None:
        if self.more_at is None:
            return None
        return _normalise("".join(self.parts[: self.more_at]), False)

    def plain(self, *, tex_in_text: bool) -> PlainText:
        before = "".join(self.parts[: self.more_at]) if self.more_at is not None else None
        return PlainText(
            _normalise("".join(self.parts), tex_in_text),
            _normalise_optional(before, tex_in_text),
        )

    # -- the walk ------------------------------------------------------------------------

    def settle(self) -> None:
        """The end of a top-level block: hand over what was gathered."""
        self._flush()
        if self._html:
            html = "".join(self._html)
            self._html.clear()
            self.feed(html)

    def close(self) -> None:
        self.settle()
        super().close()

    def _held(self) -> bool:
        """Whether the HTML parser holds something back (so what follows must be fed to it)."""
        return bool(self._html or self.rawdata or getattr(self, "cdata_elem", None))

    def _flush(self) -> None:
        if self._text:
            data = "".join(self._text)
            self._text.clear()
            self.handle_data(data)

    def _raw(self, html: str) -> None:
        if self._held():
            self._html.append(html)
            return
        self._flush()
        self.feed(html)

    def _data(self, text: str) -> None:
        if self._held():
            self._html.append(escapeHtml(text))
        elif text:
            self._text.append(text)

    def _render(self, tokens: Sequence[Token], index: int) -> str:
        rule = self.rules.get(tokens[index].type)
        if rule is not None:
            return str(rule(tokens, index, self.options, self.env))
        return str(self.renderer.renderToken(tokens, index, self.options, self.env))

    def blocks(self, tokens: Sequence[Token], start: int, end: int) -> None:
        """Walk tokens[start:end] of a block-level token stream (`MarkdownIt.render`)."""
        for index in range(start, end):
            token = tokens[index]
            kind = token.type
            if kind == "inline":
                if token.children:
                    self.inline(token.children)
            elif self._held():
                self._html.append(self._render(tokens, index))
            elif kind in ("fence", "code_block"):
                math = kind == "fence" and token.info.strip().lower() in {"math", "latex"}
                self._label_block(FORMULA if math else CODE)
            elif kind in ("math_block", "math_block_label", "math_block_eqno"):
                if defines_only(token.content):
                    self._data("\n")
                else:
                    self._label_block(FORMULA)
            elif kind == "html_block":
                self._raw(token.content)
            elif kind == "footnote_anchor":
                pass
            elif kind in self.rules or not _plain_tag(token) or token.meta.get("checked"):
                self._raw(self._render(tokens, index))  # footnote blocks, task lists: rare
            else:
                self._tag(tokens, index)

    def inline(self, tokens: Sequence[Token]) -> None:
        """Walk one inline token's children (`RendererHTML.renderInline`)."""
        for index, token in enumerate(tokens):
            kind = token.type
            if self._held():
                self._html.append(self._render(tokens, index))
            elif kind == "text":
                self._data(token.content)
            elif kind == "softbreak" and not self.options.breaks:
                self._data("\n")
            elif kind == "code_inline":
                self._code_span(token)
            elif kind == "html_inline":
                self._raw(token.content)
            elif kind in ("image", "footnote_ref", "footnote_anchor"):
                pass
            elif kind in ("math_inline", "math_inline_double"):
                if not defines_only(token.content):
                    self._data(MATH if kind == "math_inline" else FORMULA)
            elif kind == "hardbreak" and self.options.xhtmlOut:
                self._flush()
                self.handle_startendtag("br", [])
                self._data("\n")
            elif kind in self.rules or not _plain_tag(token):
                self._raw(self._render(tokens, index))
            else:
                self._tag(tokens, index)

    def _label_block(self, marker: str) -> None:
        """`\\n<div>MARKER</div>\\n`, as the fence and math render rules write it."""
        self._data("\n")
        self._flush()
        self.handle_starttag("div", [])
        self._data(marker)
        self._flush()
        self.handle_endtag("div")
        self._data("\n")

    def _code_span(self, token: Token) -> None:
        content = token.content
        if self.math_code:
            kind = math_code(content)
            if kind is not None:
                if not defines_only(_math_code_inner(content, kind)):
                    self._data(MATH if kind == "inline" else FORMULA)
                return
            attrs: list[tuple[str, str | None]] = []
        else:
            attrs = [(str(k), str(v)) for k, v in token.attrItems()]
        self._flush()
        self.handle_starttag("code", attrs)
        self._data(content)
        self._flush()
        self.handle_endtag("code")

    def _tag(self, tokens: Sequence[Token], index: int) -> None:
        """What `RendererHTML.renderToken` writes for a token, to the handlers."""
        token = tokens[index]
        if token.hidden:
            return
        if token.block and token.nesting != -1 and index and tokens[index - 1].hidden:
            self._data("\n")
        self._flush()
        if token.nesting == -1:
            self.handle_endtag(token.tag)
        elif token.nesting == 1:
            self.handle_starttag(token.tag, [(str(k), str(v)) for k, v in token.attrItems()])
        elif self.options.xhtmlOut:
            self.handle_startendtag(token.tag, [(str(k), str(v)) for k, v in token.attrItems()])
        else:
            self.handle_starttag(token.tag, [(str(k), str(v)) for k, v in token.attrItems()])
        if token.block:
            line_feed = True
            if token.nesting == 1 and index + 1 < len(tokens):
                after = tokens[index + 1]
                if after.type == "inline" or after.hidden:
                    line_feed = False  # a block holding inline content: <p>text</p>
                elif after.nesting == -1 and after.tag == token.tag:
                    line_feed = False  # an empty one: <li></li>
            if line_feed:
                self._data("\n")


def _plain_tag(token: Token) -> bool:
    """Whether HTMLParser reads the tag renderToken writes for `token` as that very tag (a
    plain lowercase name: `p`, `h2`, `td`), so that it can be handed over directly."""
    tag = token.tag
    return tag.isalnum() and tag.isascii() and tag == tag.lower()


def _math_code_inner(content: str, kind: str) -> str:
    """The TeX inside a code span that math-code.js typesets (`_math_in_code`)."""
    inner = content[2:-2] if kind == "display" and content.startswith(("$$", "\\[")) else content
    if kind == "inline":
        inner = content[1:-1] if content.startswith("$") else content[2:-2]
    return inner


_VOID_TAGS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


def _label_for(tag: str, classes: set[str], attributes: dict[str, str | None]) -> str | None:
    if tag == "pre":
        return CODE
    if tag == "math":
        return FORMULA if attributes.get("display") == "block" else MATH
    if "katex-display" in classes or ("math" in classes and "display" in classes):
        return FORMULA
    if "katex" in classes or ("math" in classes and "inline" in classes):
        return MATH
    return None


def _is_footnote_mark(tag: str, classes: set[str]) -> bool:
    return bool(classes & {"footnote-ref", "footnote-backref", "footnote-anchor"})


def _start(value: str | None) -> int:
    try:
        return int(value) if value is not None else 1
    except ValueError:
        return 1
