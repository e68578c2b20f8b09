"""Hexo tag plugins, Liquid tags and Hugo shortcodes, resolved before the Markdown is parsed.

`{% name args %}` … `{% endname %}` (Hexo, Jekyll's Liquid), `{{< name >}}` / `{{% name %}}` …
`{{< /name >}}` (Hugo) never reach an excerpt. By name (lowercase, `-` and `_` ignored):

- code-like (`codeblock`, `code`, `include_code`, `highlight`, `gist`, `jsfiddle`, `codepen`,
  diagrams such as `mermaid`): the tag and everything it wraps become one code label;
- math (`math`, `katex`, `mathjax`, `latex`, `tex`): a formula label when the tag stands on its
  own lines, an inline-math label inside a sentence;
- prose-wrapping (`note`, `blockquote`, `quote`, `pullquote`, `details`, `fold`, `notice`,
  `hint`, `tip`, `warning`, `admonition`, `alert`, `callout`, `tabs`, `raw`, …): the tags vanish,
  their arguments too, and what they wrap is read as Markdown like the rest of the post;
- links (`link`, `post_link`, `asset_link`, `button`): their text argument stays;
- inline text styles (`label`, `kbd`, `u`, `emp`, `del`, `mark`, `sup`, `sub`): their text
  argument stays (NexT's `style@text` form keeps what follows `@`);
- comments (`{# … #}`, `{% comment %}`) and media or data (`gallery`, `echarts`, `dplayer`,
  `iframe`, `figure`, `youtube`, …): vanish with whatever they wrap;
- any other tag vanishes; what an unknown pair wraps stays and is read as Markdown (it is prose:
  Liquid's `if`, a theme's box), unless it is JSON data, which vanishes with the tags.

Tags inside fenced code blocks are code, not tags, and stay (the block becomes a code label).
Liquid output tags `{{ site.url }}` vanish too, except inside inline code, where a Hugo post's
`{{ .Title }}` is text, and except `{{ name }}` / `{{ name | markdownify }}` of a Liquid
`{% capture name %}`, which shows the captured Markdown there (Minimal Mistakes' notices). A
Jekyll `{% include … content="…" %}` (or `text=`, `body=`, `message=`, with a `title=`) keeps
that prose; other includes vanish. Hugo's escaped shortcodes `{{</* x */>}}` vanish.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from digest.excerpt.markers import CODE, FORMULA, MATH


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


CODE_TAGS = _names(
    "codeblock code includecode highlight gist jsfiddle codepen runkit codesandbox replit "
    "asciinema mermaid plantuml flowchart sequence graphviz dot diagram"
)
MATH_TAGS = _names("math katex mathjax latex tex formula equation")
PROSE_TAGS = _names(
    "note blockquote quote pullquote centerquote cq details detail summary fold folding "
    "foldtoggle spoiler hide hidetoggle hideblock collapse collapsible expand notice hint tip "
    "tips warning warn danger error info success caution important alert callout admonition "
    "aside box message panel card tab tabs subtabs timeline center raw verbatim columns column "
    "steps step poem"
)
LINK_TAGS = _names("link a anchor postlink assetlink button btn")
TEXT_TAGS = _names("label kbd u emp wavy del psw mark sup sub hl span inlinetext")
DROP_TAGS = _names(
    "comment capture gallery gallerygroup grouppicture swiper echarts chart chartjs dplayer "
    "aplayer aplayerlist meting iframe video audio bilibili youtube vimeo tweet twitter x "
    "instagram figure img image assetimg assetimage fancybox flink btns"
)

_TAG = re.compile(
    r"\{%-?\s*(?P<hexo>(?:(?!\n[ \t]*\n).)*?)\s*-?%\}"
    r"|\{#(?:(?!\n[ \t]*\n).)*?#\}"
    r"|\{\{[<%]\s*/\*(?:(?!\n[ \t]*\n).)*?\*/\s*[>%]\}\}"
    r"|\{\{(?P<delim>[<%])\s*(?P<hugo>(?:(?!\n[ \t]*\n).)*?)\s*[>%]\}\}"
    r"|\{\{(?P<liquid>(?:(?!\n[ \t]*\n)[^{}])*?)\}\}",
    re.DOTALL,
)
_FENCE = re.compile(r"^(?P<lead>[ \t]*(?:>[ \t]*)*)(?P<fence>`{3,}|~{3,})", re.MULTILINE)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.DOTALL)
_URLISH = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|/|www\.|#)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Tag:
    start: int
    end: int
    name: str  # normalised: lowercase, no - or _
    raw_name: str
    args: str
    closing: bool
    self_closing: bool
    kind: str  # "hexo", "hugo", "liquid" or "comment"


def resolve_tags(markdown: str) -> str:
    """The Markdown with every tag resolved by the rules in the module docstring."""
    if "{%" not in markdown and "{{" not in markdown and "{#" not in markdown:
        return markdown
    fences = _fenced_ranges(markdown)
    spans = [m.span() for m in _CODE_SPAN.finditer(markdown)]
    tags = [t for t in _scan(markdown) if not _inside(t.start, fences)]
    tags = [t for t in tags if t.kind != "liquid" or not _inside(t.start, spans)]
    partner = _pairs(tags)
    out: list[str] = []
    opened: list[tuple[int, int]] = []  # (tag index, len(out) when opened) of unknown pairs
    captured: dict[str, str] = {}  # Liquid's {% capture name %}: shown where {{ name }} is
    pos = 0
    index = 0
    while index < len(tags):
        tag = tags[index]
        out.append(markdown[pos : tag.start])
        pos = tag.end
        close = partner.get(index)
        if tag.kind == "liquid" and not tag.closing:
            out.append(_captured_output(tag, captured, markdown))
        if tag.kind in ("comment", "liquid") or tag.closing:
            if tag.closing and opened and partner.get(opened[-1][0]) == index:
                _, at = opened.pop()
                if _is_data("".join(out[at:])):
                    del out[at:]
            index += 1
            continue
        category = _category(tag.name)
        if tag.name == "capture" and close is not None and tag.args.split():
            inner = markdown[tag.end : tags[close].start]
            captured[tag.args.split()[0]] = resolve_tags(inner).strip()
        if tag.name == "include" and tag.kind == "hexo":
            out.append(_included_prose(tag, captured, markdown))
        if category in ("code", "math", "drop") and close is not None:
            end = tags[close]
            if category != "drop":
                out.append(_label(category, markdown, tag.start, end.end))
            pos = end.end
            index = close + 1
            continue
        if category in ("code", "math"):
            out.append(_label(category, markdown, tag.start, tag.end))
        elif category == "link":
            out.append(_link_text(tag))
        elif category == "text":
            out.append(_style_text(tag))
        elif category == "unknown" and close is not None:
            opened.append((index, len(out)))
        index += 1
    out.append(markdown[pos:])
    return "".join(out)


def _scan(text: str) -> list[_Tag]:
    tags = []
    for match in _TAG.finditer(text):
        if match.group("hexo") is not None:
            body, kind = match.group("hexo"), "hexo"
        elif match.group("hugo") is not None:
            body, kind = match.group("hugo"), "hugo"
        elif match.group("liquid") is not None:
            body = match.group("liquid").strip()
            tags.append(_Tag(match.start(), match.end(), "", "", body, False, False, "liquid"))
            continue
        else:
            tags.append(_Tag(match.start(), match.end(), "", "", "", False, False, "comment"))
            continue
        body = body.strip()
        closing = kind == "hugo" and body.startswith("/")
        body = body.removeprefix("/").strip() if closing else body
        self_closing = kind == "hugo" and body.endswith("/")
        body = body.removesuffix("/").strip() if self_closing else body
        raw_name, _, args = body.partition(" ")
        name = raw_name.lower().replace("-", "").replace("_", "")
        if kind == "hexo" and name.startswith("end") and len(name) > 3:
            closing, name = True, name[3:]
        tags.append(
            _Tag(match.start(), match.end(), name, raw_name, args, closing, self_closing, kind)
        )
    return tags


def _pairs(tags: list[_Tag]) -> dict[int, int]:
    """Opening tag index -> its closing tag index (nesting respected); unpaired ones absent."""
    partner: dict[int, int] = {}
    stack: list[int] = []
    for index, tag in enumerate(tags):
        if tag.kind not in ("hexo", "hugo") or tag.self_closing:
            continue
        if not tag.closing:
            stack.append(index)
            continue
        for depth in range(len(stack) - 1, -1, -1):
            opener = tags[stack[depth]]
            if opener.name == tag.name and opener.kind == tag.kind:
                partner[stack[depth]] = index
                del stack[depth:]
                break
    return partner


def _category(name: str) -> str:
    if name in CODE_TAGS:
        return "code"
    if name in MATH_TAGS:
        return "math"
    if name in PROSE_TAGS:
        return "prose"
    if name in LINK_TAGS:
        return "link"
    if name in TEXT_TAGS:
        return "text"
    if name in DROP_TAGS:
        return "drop"
    return "unknown"


def _label(category: str, text: str, start: int, end: int) -> str:
    if category == "code":
        return f" {CODE} "
    return f" {FORMULA if _own_line(text, start, end) else MATH} "


def _arguments(args: str) -> list[str]:
    try:
        return shlex.split(args)
    except ValueError:
        return args.split()


def _link_text(tag: _Tag) -> str:
    if tag.name == "link" or tag.name in ("a", "anchor"):
        words = []
        for word in _arguments(tag.args):  # {% link text url [external] [title] %}
            if _URLISH.match(word):
                break
            words.append(word)
        return " ".join(words)
    if tag.name in ("button", "btn"):  # NexT: {% button url, text, icon %}
        parts = [part.strip() for part in tag.args.split(",")]
        return parts[1] if len(parts) > 1 else ""
    words = _arguments(tag.args)  # {% post_link slug [title] [escape] %}
    if len(words) > 1 and words[-1] in ("true", "false"):
        words = words[:-1]
    # without a title Hexo shows the linked post's, which only the whole blog knows: its slug
    # (the file name, `hello-world` or `你好世界`) says the same in the sentence
    return " ".join(words[1:]) or (words[0] if words else "")


_INCLUDE_ARG = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")
PROSE_ARGS = ("title", "content", "text", "body", "message")


def _own_line(text: str, start: int, end: int) -> bool:
    """Whether `text[start:end]` (a tag, or a pair and what it wraps) stands on lines of its
    own, with nothing but spaces before it on its first line or after it on its last."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    after = text[end : len(text) if line_end < 0 else line_end]
    return not text[line_start:start].strip() and not after.strip()


def _as_block(prose: str, tag: _Tag, text: str, block: bool = False) -> str:
    """Prose standing where a tag stood: its own paragraphs when the tag had its own line."""
    if not prose:
        return ""
    return f"\n\n{prose}\n\n" if block or _own_line(text, tag.start, tag.end) else prose


def _included_prose(tag: _Tag, captured: dict[str, str], text: str) -> str:
    """Jekyll's `{% include note.html title="Tip" content="…" %}`: the prose it passes
    (a quoted value, or the name of a capture) is the post's text; other includes vanish
    (a theme's figure, video or shell box: their arguments are not prose)."""
    values: dict[str, str] = {}
    for match in _INCLUDE_ARG.finditer(tag.args):
        key, double, single, bare = match.groups()
        quoted = double if double is not None else single
        value = quoted if quoted is not None else captured.get(bare or "", "")
        values.setdefault(key.lower(), value.strip())
    if not any(values.get(key) for key in PROSE_ARGS[1:]):
        return ""  # a title alone (a figure's, a video's) is not prose
    parts = [values[key] for key in PROSE_ARGS if values.get(key)]
    return _as_block("\n\n".join(parts), tag, text, block=len(parts) > 1)


def _captured_output(tag: _Tag, captured: dict[str, str], text: str) -> str:
    """`{{ name }}` or `{{ name | markdownify }}` of a capture shows what was captured
    (Liquid runs before Markdown, so it is read as Markdown); any other output vanishes."""
    name, _, filters = tag.args.partition("|")
    prose = captured.get(name.strip())
    if prose is None:
        return ""
    return _as_block(prose, tag, text, block="markdownify" in filters)


def _style_text(tag: _Tag) -> str:
    text = " ".join(_arguments(tag.args))
    return text.split("@", 1)[1] if "@" in text.split(" ", 1)[0] else text


def _is_data(inner: str) -> bool:
    content = inner.strip()
    if not content or content[0] not in "[{":
        return False
    try:
        json.loads(content)
    except ValueError:
        return False
    return True


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    pos = 0
    while True:
        opening = _FENCE.search(text, pos)
        if opening is None:
            return ranges
        fence = opening.group("fence")
        closing = re.compile(
            r"^[ \t]*(?:>[ \t]*)*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$",
            re.MULTILINE,
        )
        line_end = text.find("\n", opening.end())
        if line_end < 0:
            return [*ranges, (opening.start(), len(text))]
        close = closing.search(text, line_end + 1)
        end = len(text) if close is None else close.end()
        ranges.append((opening.start(), end))
        pos = end


def _inside(position: int, ranges: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in ranges)


# for digest.excerpt.attributes, which skips code the same way
CODE_SPAN = _CODE_SPAN
fenced_ranges = _fenced_ranges
inside = _inside
