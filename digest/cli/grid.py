"""A plain table drawn exactly as Rich draws it, at a fraction of the cost.

Rich lays a table out at about half a millisecond a row (a millisecond with wrapped cells):
`digest subscribers list` of 10,000 readers took five seconds to print and `digest posts
--all` of a 1,000-post blog spent one second of its two in the table. When what Rich would
print is plain text (the console writes no styles: standard output is a file or a pipe) and
the table is of the kinds digest prints, `draw` lays it out here:

- Rich's default box (`box.HEAVY_HEAD`), one space of padding, the header, rules between rows
  with `show_lines`;
- not expanded: every cell one line, the table within the console's width;
- expanded with `ratio` columns (the posts table): the other columns as wide as their widest
  cell, the `ratio` columns sharing the rest as Rich shares it (`rich._ratio
  .ratio_distribute`), their cells broken into lines by Rich's own `divide_line` and trimmed
  as Rich's `Text.wrap` trims them.

Anything else (a terminal, a title, a table that must be squeezed to fit, a cell whose
characters Rich may lay out otherwise than one cell each: marks, joiners, flags, odd spaces)
is None, and the caller lets Rich draw it. tests/cli/test_output_table.py holds `draw` to
Rich's own output, character for character, on tables hypothesis makes, and checks what is
left to Rich.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

# Rich's default box (box.HEAVY_HEAD) as (left, between two cells, right, fill) for the top,
# the rule under the header, a rule between rows and the bottom; and (left, between, right)
# for the header's and the rows' lines.
_TOP = ("┏", "┳", "┓", "━")
_HEAD_RULE = ("┡", "╇", "┩", "━")
_ROW_RULE = ("├", "┼", "┤", "─")
_BOTTOM = ("└", "┴", "┘", "─")
_HEAD = ("┃", "┃", "┃")
_ROW = ("│", "│", "│")


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """A column as `Table.add_column` takes it: its header, `no_wrap`, and `ratio` (a share of
    the width an expanded table has left)."""

    header: str
    no_wrap: bool = False
    ratio: int | None = None


@cache
def _unsimple() -> re.Pattern[str]:
    """What Rich may lay out otherwise than one cell a character: a tab or any space but the
    plain one (Rich breaks lines at them), controls, marks, format characters (ZWJ), emoji
    modifiers, flags and conjoining jamo (grapheme clusters), and the Hangul fillers (no cell
    at all). Every character of a text without them is a grapheme at least one cell wide
    (tests/cli/test_output_table.py checks each code point)."""
    import regex

    pattern: re.Pattern[str] = regex.compile(
        r"[^\S \n]|[\p{M}\p{Cf}\p{Cc}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}--\n]"
        r"|[\U0001F1E6-\U0001F1FF\U0001F3FB-\U0001F3FF\u1160-\u11FF\uD7B0-\uD7FF\u3164\uFFA0]",
        regex.VERSION1,
    )
    return pattern


_SPACE = re.compile(r"\s")  # where divide_line's words end (rich._wrap.re_word)


def _wrapped(text: str, width: int) -> list[str]:
    """The lines of `Text(text).wrap(console, width, overflow="ellipsis")` (a table cell's
    wrapping; the padding to `width` is the caller's), for plain text, without building a Text
    for every piece: Rich's own line breaking, `divide_line`, decides where; then, as
    `Text.wrap` does, the whitespace past the width is dropped and a line still too wide ends
    in an ellipsis."""
    from rich._wrap import divide_line
    from rich.cells import cell_len, set_cell_size

    lines = []
    for line in text.split("\n"):
        # a line without whitespace is one word, which divide_line never breaks (fold=False)
        offsets = divide_line(line, width, fold=False) if _SPACE.search(line) else []
        for start, end in zip([0, *offsets], [*offsets, len(line)], strict=True):
            piece = line[start:end]
            if len(piece) > width:  # Text.rstrip_end counts characters, not cells
                trailing = len(piece) - len(piece.rstrip())
                piece = piece[: len(piece) - min(trailing, len(piece) - width)]
            # Text.truncate with overflow="ellipsis". Every code point of a simple text is a
            # grapheme of at least one cell (_unsimple), so more characters than cells mean
            # too wide, and the first `width` characters hold the cut: the rest need no look
            if len(piece) > width or cell_len(piece) > width:
                piece = set_cell_size(piece[:width], width - 1) + "…"
            lines.append(piece)
    return lines


def draw(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    width: int,
    expand: bool = False,
    show_lines: bool = False,
) -> str | None:
    """The table as Rich prints it `width` cells wide on a console that writes no styles to
    a UTF-8 stream (digest.cli.output checks that), or None when Rich must draw it (module
    docstring). Cells are plain text already (digest.cli.output.plain)."""
    from rich.cells import cell_len

    if not rows:
        return None
    unsimple = _unsimple()
    count = len(columns)
    texts = [[column.header for column in columns], *rows]
    if any(len(row) != count or any(unsimple.search(c) for c in row) for row in texts):
        return None
    flexible = [column.ratio is not None for column in columns]
    if expand != any(flexible):
        return None  # expanded without a share to give, or shares without expanding
    # the widest line of each column that does not share the width, padding included
    widths = [
        0 if flex else 2 + max(cell_len(line) for row in texts for line in row[i].split("\n"))
        for i, flex in enumerate(flexible)
    ]
    room = width - (count + 1)  # the vertical lines
    if expand:
        from rich._ratio import ratio_distribute

        ratios = [column.ratio or 0 for column in columns if column.ratio is not None]
        shares = iter(ratio_distribute(room - sum(widths), ratios, [3] * len(ratios)))
        widths = [
            next(shares) if flex else width for width, flex in zip(widths, flexible, strict=True)
        ]
        if sum(widths) != room:
            return None  # too narrow: Rich squeezes the columns
    elif sum(widths) > room:
        return None
    for i in range(count):
        if not flexible[i] and any("\n" in row[i] for row in texts):
            return None  # a line break in a fixed column: Rich lays it out
        if widths[i] <= 2:
            return None  # no room for text, or a column of zero-width text Rich drops

    def cell_lines(text: str, width: int, wrap: bool) -> list[str]:
        inner = width - 2
        lines = _wrapped(text, inner) if wrap else [text]
        return [f" {line}{' ' * (inner - cell_len(line))} " for line in lines]

    def block(cells: Sequence[str], edges: tuple[str, str, str], header: bool) -> list[str]:
        laid = [
            cell_lines(text, width, flex)
            for text, width, flex in zip(cells, widths, flexible, strict=True)
        ]
        height = max(len(lines) for lines in laid)
        for lines, width in zip(laid, widths, strict=True):
            blank = [" " * width] * (height - len(lines))
            lines[:] = blank + lines if header else lines + blank  # a header sits at the bottom
        return [edges[0] + edges[1].join(parts) + edges[2] for parts in zip(*laid, strict=True)]

    def rule(edges: tuple[str, str, str, str]) -> str:
        return edges[0] + edges[1].join(edges[3] * width for width in widths) + edges[2]

    lines = [rule(_TOP), *block(texts[0], _HEAD, True), rule(_HEAD_RULE)]
    for number, row in enumerate(texts[1:]):
        if show_lines and number:
            lines.append(rule(_ROW_RULE))
        lines += block(row, _ROW, False)
    lines.append(rule(_BOTTOM))
    return "\n".join(lines) + "\n"
