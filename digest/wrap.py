"""Wrap the plain-text part for mail: CJK-aware, never splitting a word, URL or grapheme.

`textwrap` only breaks at spaces, so a Chinese paragraph (which has none) would stay one long
line. Here a line may break at a space or between two wide (CJK) characters, counting display
columns (a CJK character takes two), and closing punctuation never starts a line. Lines stay
under 78 characters where the text allows (RFC 5322) and never exceed 998 octets.
"""

from __future__ import annotations

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
