"""Wrap the plain-text part for mail: CJK-aware, never splitting a word, URL or grapheme.
(And `html_lines`: a long text spliced into HTML, cut into lines that render as one.)

`textwrap` only breaks at spaces, so a Chinese paragraph (which has none) would stay one long
line. Here a line may break at a space or between two wide (CJK) characters, counting display
columns (a CJK character takes two), and closing punctuation never starts a line. Lines stay
under 78 characters where the text allows (RFC 5322) and never exceed 998 octets.
"""

from __future__ import annotations

import html
import re
import unicodedata

import regex

WIDTH = 76
MAX_OCTETS = 998
_CLOSING = frozenset("，。、；：？！）》」』】〕〉’”…,.;:?!)]}%")
_OPENING = frozenset("（《「『【〔〈‘“([{")


def width(text: str) -> int:
    """Display columns: wide and full-width characters take two, combining marks none."""
    total = 0
    for char in text:
        if unicodedata.combining(char) or char in "\u200d\ufe0f":
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


def wrap_text(text: str, columns: int = WIDTH) -> str:
    """Wrap every line of `text` independently; short lines are left exactly as they are."""
    return "\n".join(wrapped for line in text.split("\n") for wrapped in wrap_line(line, columns))


def wrap_line(line: str, columns: int = WIDTH) -> list[str]:
    if width(line) <= columns:
        return [_cap_octets(line)[0]] if len(line.encode()) > MAX_OCTETS else [line]
    lines: list[str] = []
    current = ""
    for unit in _units(line):
        if unit.isspace():
            if current:
                current += " "
            continue
        if current and width(current.rstrip()) + width(unit) > columns and not _attaches(unit):
            lines.append(current.rstrip())
            current = ""
        current += unit
    if current.strip():
        lines.append(current.rstrip())
    return [piece for long in lines for piece in _cap_octets(long)]


def _units(line: str) -> list[str]:
    """Break opportunities: spaces, single CJK characters, unbroken words; an opening bracket
    or quote is glued to what follows it, so no line ends with one."""
    units: list[str] = []
    for unit in _raw_units(line):
        if units and units[-1] and units[-1][-1] in _OPENING and not unit.isspace():
            units[-1] += unit
        else:
            units.append(unit)
    return units


def _raw_units(line: str) -> list[str]:
    units: list[str] = []
    word = ""
    for cluster in regex.findall(r"\X", line):
        if cluster.isspace() or width(cluster) >= 2 or (cluster in _CLOSING and word == ""):
            if word:
                units.append(word)
                word = ""
            units.append(cluster)
        else:
            word += cluster
    if word:
        units.append(word)
    return units


def _attaches(unit: str) -> bool:
    """Closing punctuation stays at the end of the line it closes (no line starts with it)."""
    return unit[0] in _CLOSING


def _cap_octets(line: str) -> list[str]:
    """Split a line longer than 998 octets on grapheme boundaries (only absurd input does this)."""
    if len(line.encode()) <= MAX_OCTETS:
        return [line]
    pieces: list[str] = []
    current = ""
    for cluster in regex.findall(r"\X", line):
        if len((current + cluster).encode()) > MAX_OCTETS - 8:
            pieces.append(current)
            current = ""
        current += cluster
    pieces.append(current)
    return pieces


HTML_LINE = 800  # octets: room under 998 for the per-recipient values spliced in later
_HTML_PIECES = regex.compile(r"<[^>]*>|[^<]+|<", regex.DOTALL)
_RAW_TEXT = regex.compile(r"<(style|title|script|textarea)\b", regex.IGNORECASE)


def fold_html(html: str, limit: int = HTML_LINE) -> str:
    """Break HTML lines longer than `limit` octets so that the part can travel as 8bit.

    Only what renders the same is done: an existing space becomes a line break (between
    attributes, inside a style value, or in text, where whitespace collapses); a tag without
    one gets its line break just before its `>`; a run of text with no space at all is split
    by an empty `<wbr\n>`, whose line break lies inside the tag.
    """
    return "\n".join(_fold_line(line, limit) for line in html.split("\n"))


def _fold_line(line: str, limit: int) -> str:
    if len(line.encode()) <= limit:
        return line
    out: list[str] = []
    used = 0
    raw = False
    for match in _HTML_PIECES.finditer(line):
        piece = match.group(0)
        is_tag = piece.startswith("<") and piece.endswith(">")
        size = len(piece.encode())
        if used + size <= limit:
            used += size
        elif size < limit and out and _breakable_tag(out[-1]):
            # start this piece on a new line: break before the previous tag's ">"
            out[-1] = out[-1][:-1] + "\n>"
            used = 1 + size
        elif piece.startswith("<!"):
            # a comment (Outlook's conditional ones must stay intact): on a line of its own
            piece, used = "\n" + piece, size
        else:
            piece, used = _fold_piece(piece, used, limit, is_tag, raw)
        out.append(piece)
        if is_tag:
            opening = _RAW_TEXT.match(piece)
            raw = bool(opening) or (raw and not piece.startswith("</"))
    return "".join(out)


def _breakable_tag(piece: str) -> bool:
    """A start or end tag (not a comment or a conditional comment) may end in "\n>"."""
    return piece.startswith("<") and piece.endswith(">") and not piece.startswith("<!")


def _fold_piece(piece: str, used: int, limit: int, is_tag: bool, raw: bool) -> tuple[str, int]:
    """Put `piece` on a line already `used` octets long, breaking it where that is harmless."""
    out = ""
    line_start = 0  # where the current line starts within `out`
    for cluster in regex.findall(r"\X", piece):
        size = len(cluster.encode())
        if used + size > limit:
            space = out.rfind(" ", line_start)
            if space >= 0:
                out = out[:space] + "\n" + out[space + 1 :]
                line_start = space + 1
                used = len(out[line_start:].encode())
            elif not is_tag and not raw and out:
                out += "<wbr\n>"
                line_start = len(out) - 1
                used = 1
        out += cluster
        used += size
    if is_tag and _breakable_tag(piece) and used > limit and "\n" not in out[line_start:]:
        out = out[:-1] + "\n>"
        used = 1
    return out, used


# -- text spliced into an 8bit HTML part --------------------------------------------------------

GREETING_ROOM = 300  # escaped octets that stay on the line they are spliced into
_PIECE = 600  # octets per line of a longer text
COMMENT_BREAK = "<!--\r\n-->"  # a line break no reader sees: an empty comment around it
_ENTITY_OR_CHAR = re.compile(r"&[#\w]+;|.", re.DOTALL)


def html_lines(text: str) -> str:
    """`text` escaped for HTML. Longer than GREETING_ROOM octets (a greeting with a name of 200
    emoji is over 800), it is cut at grapheme boundaries into lines of at most _PIECE octets
    joined, and framed, by empty comments, so that the line it is spliced into stays within
    998 octets in an 8bit part and the page shows exactly the same text."""
    escaped = html.escape(text)
    if len(escaped.encode()) <= GREETING_ROOM:
        return escaped
    pieces: list[str] = []
    current = ""
    for cluster in regex.findall(r"\X", text):
        for unit in _units_of(html.escape(cluster)):
            if current and len((current + unit).encode()) > _PIECE:
                pieces.append(current)
                current = ""
            current += unit
    pieces.append(current)
    return COMMENT_BREAK + COMMENT_BREAK.join(pieces) + COMMENT_BREAK


def html_lines_bound(escaped_octets: int) -> int:
    """The most octets `html_lines` makes of a text whose escaped form has `escaped_octets`:
    two neighbouring lines always hold more than _PIECE octets, so there are at most
    2n/_PIECE + 1 lines and one comment more than lines."""
    if escaped_octets <= GREETING_ROOM:
        return escaped_octets
    breaks = 2 * escaped_octets // _PIECE + 3
    return escaped_octets + breaks * len(COMMENT_BREAK.encode())


def _units_of(escaped: str) -> list[str]:
    """An escaped grapheme, whole when it is short; a freak cluster (hundreds of combining
    marks) by character, never cutting an entity such as `&amp;`."""
    if len(escaped.encode()) <= _PIECE:
        return [escaped]
    return _ENTITY_OR_CHAR.findall(escaped)
