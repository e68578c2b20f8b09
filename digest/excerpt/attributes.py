"""Attribute lists and processor directives that Jekyll's kramdown and Hugo's Goldmark read
and never show, removed before the Markdown is parsed.

- kramdown: inline attribute lists and attribute definitions `{: .class #id key="v"}` (on their
  own line after a block, or right after a span: `[link](url){:target="_blank"}`), the table of
  contents (`* TOC` followed by `{:toc}`: the list kramdown replaces), extensions
  `{::options … /}`, `{::comment}…{:/comment}` (with what it wraps) and
  `{::nomarkdown}…{:/nomarkdown}` (what it wraps stays);
- Goldmark (Hugo's `markup.goldmark.parser.attribute`): `{#id .class key=value}` at the end of
  a heading, or alone on the line after a block.

Inside fenced code and code spans they are code and stay (the code becomes a label anyway; an
inline `` `{:toc}` `` is the text the post shows).
"""

from __future__ import annotations

import re

from digest.excerpt.tags import CODE_SPAN, fenced_ranges, inside

_EXTENSION_BLOCK = re.compile(
    r"\{::(?P<name>comment|nomarkdown)\b[^{}\n]*\}(?P<inner>.*?)\{:/(?P=name)?\}", re.DOTALL
)
_EXTENSION = re.compile(r"\{::[a-z]+\b[^{}\n]*/\}")
_TOC_LIST = re.compile(
    r"^[ \t]*(?:[*+-]|\d+\.)[ \t]+[^\n]*\n[ \t]*\{:[ \t]*\.?toc[ \t]*\}[ \t]*$", re.MULTILINE
)
_IAL = re.compile(r"\{:(?!:)[^{}\n]*\}")
_ATTRIBUTE = r"(?:[#.][\w:-]+|[\w-]+=(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s{}\"']+))"
_ATTRIBUTES = r"\{[ \t]*" + _ATTRIBUTE + r"(?:[ \t]+" + _ATTRIBUTE + r")*[ \t]*\}"
_HEADING_ATTRIBUTES = re.compile(
    r"^(?P<heading>[ \t]{0,3}#{1,6}[ \t].*?)[ \t]+" + _ATTRIBUTES + r"[ \t]*$", re.MULTILINE
)
_BLOCK_ATTRIBUTES = re.compile(r"^[ \t]*" + _ATTRIBUTES + r"[ \t]*$\n?", re.MULTILINE)


def strip_attributes(markdown: str) -> str:
    """The Markdown without kramdown's and Goldmark's attribute lists and directives."""
    if "{" not in markdown:
        return markdown
    passes: tuple[tuple[re.Pattern[str], str | None], ...] = (
        (_EXTENSION_BLOCK, None),
        (_TOC_LIST, None),
        (_HEADING_ATTRIBUTES, r"\g<heading>"),
        (_EXTENSION, None),
        (_IAL, None),
        (_BLOCK_ATTRIBUTES, None),
    )
    for pattern, replacement in passes:
        if pattern.search(markdown) is None:
            continue  # nothing to remove: spare finding the code (most posts, most passes)
        code = fenced_ranges(markdown) + [m.span() for m in CODE_SPAN.finditer(markdown)]
        markdown = _sub_once(pattern, markdown, code, replacement)
    return markdown


def _sub_once(
    pattern: re.Pattern[str], text: str, code: list[tuple[int, int]], replacement: str | None
) -> str:
    def substitute(match: re.Match[str]) -> str:
        if inside(match.start(), code):
            return match.group(0)
        if replacement is not None:
            return match.expand(replacement)
        if match.re is _EXTENSION_BLOCK and match.group("name") == "nomarkdown":
            return match.group("inner")
        return ""

    return pattern.sub(substitute, text)
