"""Markup to plain text: the parsing half of the excerpt rules (DESIGN.md section 3).

Markdown is parsed by markdown-it-py (CommonMark, tables, footnotes, and the blog's math
delimiters: digest.excerpt.tex), rendered to HTML with code and math replaced by *label markers*,
and that HTML, like a feed entry's HTML, is walked once by `html_to_text`. Markers are Unicode
noncharacters (reserved for internal use, never in real text) so that the excerpt cut can treat
each label as one indivisible unit and the locale's label text is chosen only at the end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from html import escape, unescape
from html.parser import HTMLParser
from typing import Any

from markdown_it import MarkdownIt
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
    inner = content[2:-2] if kind == "display" and content.startswith(("$$", "\\[")) else content
    if kind == "inline":
        inner = content[1:-1] if content.startswith("$") else content[2:-2]
    if defines_only(inner):
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
    the excerpt does not repeat the title it became.
    """
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


def markdown_to_html(text: str, math: MathMode = "auto") -> str:
    """Render Markdown to HTML whose code and math are already label markers."""
    html: str = parser(math).render(text)
    return html


@dataclass(frozen=True, slots=True)
class PlainText:
    """Plain text with label markers; `before_more` is the text before a `<!--more-->` marker."""

    text: str
    before_more: str | None


def markdown_to_text(text: str, math: MathMode = "auto") -> PlainText:
    """Plain text of a Markdown body: Hexo tags and Hugo shortcodes resolved (excerpt.tags)."""
    body = strip_attributes(resolve_tags(text))
    html = markdown_to_html(body, math)
    return html_to_text(html, tex_in_text=False, dollar_escapes=math != "none")


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

    def handle_comment(self, data: str) -> None:
        if self._skip_tag is None and self.more_at is None and _MORE.fullmatch(data):
            self.more_at = len(self.parts)


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
