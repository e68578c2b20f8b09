"""`digest.cli.grid.draw` draws a plain table exactly as Rich does, only faster.

Rich lays a table out at about half a millisecond a row; `digest subscribers list` of 10,000
readers took five seconds, and the table was half of `digest posts --all`. For what Rich would
print as plain text (not a terminal) in the shapes digest prints, `draw` lays it out itself.
These tests hold it to Rich's own output, character for character, on tables hypothesis makes
(CJK, emoji sequences, combining marks, wide and zero-width characters, empty cells, long
words, line breaks; expanded with `ratio` columns and rules between rows, as `digest posts`
prints), and check that it leaves to Rich what it cannot draw the same.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from digest.cli.grid import Column, draw
from digest.cli.output import _drawn_here, plain, styled
from tests.support import paths

# What real cells hold (addresses, names in any script, statuses, simple emoji) ...
SIMPLE = st.sampled_from(
    [*"abcXYZ019@.-_;() ", "读", "者", "ü", "é", "Ω", "ß", "ｱ", "１", "🎉", "✓", "한", "—"]
)
# ... and anything at all, marks, joiners, flags and odd spaces included.
WILD = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    st.sampled_from(["e\u0301", "👩\u200d👩\u200d👧", "🇨🇳", "\u200b", "\xa0", "👍🏽", "\ufe0f"]),
)
SIMPLE_CELL = st.lists(SIMPLE, max_size=12).map("".join)
CELL = st.one_of(SIMPLE_CELL, st.lists(WILD, max_size=6).map("".join))


def rich_table(
    headers: list[str] | list[Column],
    rows: list[list[str]],
    width: int,
    *,
    expand: bool = False,
    show_lines: bool = False,
) -> str:
    out = io.StringIO()
    console = Console(
        file=out, width=width, highlight=False, soft_wrap=True, emoji=False, markup=False
    )
    grid = Table(expand=expand, show_lines=show_lines)
    for header in headers:
        if isinstance(header, Column):
            grid.add_column(plain(header.header), no_wrap=header.no_wrap, ratio=header.ratio)
        else:
            grid.add_column(plain(header))
    for row in rows:
        grid.add_row(*(styled(cell) for cell in row))
    console.print(grid)
    return out.getvalue()


def plain_grid(headers: list[str], rows: list[list[str]], console: Console) -> str | None:
    """A plain table as `digest.cli.output.table` would have it drawn on `console` (None: left
    to Rich)."""
    return _drawn_here(headers, rows, console, {})


def console_of(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, highlight=False, soft_wrap=True)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=5).flatmap(
        lambda columns: st.tuples(
            st.lists(CELL, min_size=columns, max_size=columns),
            st.lists(st.lists(CELL, min_size=columns, max_size=columns), min_size=1, max_size=6),
        )
    ),
    st.integers(min_value=20, max_value=120),
)
def test_it_draws_what_rich_draws(table: tuple[list[str], list[list[str]]], width: int) -> None:
    headers, rows = table
    drawn = plain_grid(headers, rows, console_of(width))
    if drawn is not None:
        assert drawn == rich_table(headers, rows, width)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=4).flatmap(
        lambda columns: st.tuples(
            st.lists(SIMPLE_CELL, min_size=columns, max_size=columns),
            st.lists(
                st.lists(SIMPLE_CELL, min_size=columns, max_size=columns), min_size=1, max_size=6
            ),
        )
    )
)
def test_a_plain_table_that_fits_is_drawn_here(table: tuple[list[str], list[list[str]]]) -> None:
    headers, rows = [[h or "h" for h in table[0]], table[1]]
    drawn = plain_grid(headers, rows, console_of(120))  # 4 columns of 24 cells fit in 120
    assert drawn is not None
    assert drawn == rich_table(headers, rows, 120)


def test_a_real_listing_is_drawn_here_and_the_same() -> None:
    headers = ["Email", "Name", "Status", "Locale", "Categories"]
    rows = [
        [f"reader{n}@example.com", f"读者{n}", "active", "zh", "编译器;并发"] for n in range(300)
    ]
    rows.append(["mixed@example.com", "Zoë 🎉 ｱ", "unsubscribed", "en", ""])
    drawn = plain_grid(headers, rows, console_of(100))
    assert drawn is not None  # drawn here, not by Rich
    assert drawn == rich_table(headers, rows, 100)
    rows.append(["zwj@example.com", "Dev 👩\u200d💻", "active", "en", ""])
    assert plain_grid(headers, rows, console_of(100)) is None  # a cluster: Rich lays it out


def test_what_it_cannot_draw_the_same_is_left_to_rich() -> None:
    headers = ["A", "B"]
    assert plain_grid(headers, [["x" * 50, "y" * 50]], console_of(80)) is None  # wraps
    assert plain_grid(headers, [["two\nlines", "b"]], console_of(80)) is None
    assert plain_grid(headers, [["a\tb", "c"]], console_of(80)) is None
    assert plain_grid(headers, [], console_of(80)) is None
    latin = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    assert plain_grid(headers, [["a", "b"]], Console(file=latin, width=80)) is None  # ASCII box
    terminal = Console(file=io.StringIO(), width=80, force_terminal=True)
    assert plain_grid(headers, [["a", "b"]], terminal) is None  # styles: Rich draws


def test_cells_are_made_plain() -> None:
    drawn = _drawn_here(["A"], [["\x1b]52;c;ZXZpbA==\x07bad\u202eevil"]], console_of(80), {})
    assert drawn is not None
    assert "\x1b" not in drawn and "\u202e" not in drawn and "badevil" in drawn


def test_subscribers_list_prints_the_same_table(tmp_path: Path) -> None:
    """Through the command: the listing a redirected `digest subscribers list` prints is the
    table Rich draws for the same rows."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  title: T\n  base_url: https://b.example.com\n"
        "sources:\n  - type: markdown\n    path: posts\n",
        "utf-8",
    )
    (tmp_path / "people.csv").write_text(
        "email,name,locale\n"
        + "".join(f"r{n}@example.com,读者 {n},{'zh' if n % 2 else 'en'}\n" for n in range(40)),
        "utf-8",
    )

    def digest(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "digest.cli", "--config", str(config), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(paths.ROOT), "COLUMNS": "90"},
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    digest("subscribers", "import", "people.csv")
    listed = digest("subscribers", "list")
    drawn = [line for line in listed.splitlines() if line[:1] in "┏┃┡│└"]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in drawn[3:-1]]
    assert len(rows) == 40 and {row[0] for row in rows} == {f"r{n}@example.com" for n in range(40)}
    headers = ["Email", "Name", "Status", "Locale", "Categories"]
    assert "\n".join(drawn) + "\n" == rich_table(headers, rows, 90)


POSTS = [
    Column(header="Date", no_wrap=True),
    Column(header="Category", no_wrap=True),
    Column(header="Title / excerpt", ratio=1),
    Column(header="Status", no_wrap=True),
]
SHORT = st.lists(SIMPLE, min_size=1, max_size=8).map("".join)
# a title, a URL, an excerpt: long words, CJK runs, spaces and line breaks
LONG = st.lists(
    st.one_of(
        SIMPLE, st.sampled_from([" ", "\n", "https://blog.example.com/posts/x/", "中文段落"])
    ),
    max_size=80,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(SHORT, SHORT, st.one_of(LONG, CELL), SHORT), min_size=1, max_size=5),
    st.integers(min_value=20, max_value=130),
    st.booleans(),
)
def test_the_posts_table_is_what_rich_draws(
    rows: list[tuple[str, str, str, str]], width: int, show_lines: bool
) -> None:
    cells = [list(row) for row in rows]
    drawn = draw(POSTS, cells, width=width, expand=True, show_lines=show_lines)
    expected = rich_table(POSTS, cells, width, expand=True, show_lines=show_lines)
    if drawn is not None:
        assert drawn == expected


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(SHORT, SHORT, LONG, SHORT), min_size=1, max_size=5),
    st.integers(min_value=60, max_value=130),
)
def test_a_roomy_posts_table_of_plain_text_is_drawn_here(
    rows: list[tuple[str, str, str, str]], width: int
) -> None:
    cells = [list(row) for row in rows]
    drawn = draw(POSTS, cells, width=width, expand=True, show_lines=True)
    assert drawn is not None
    assert drawn == rich_table(POSTS, cells, width, expand=True, show_lines=True)


def test_a_posts_listing_of_a_thousand_rows_is_drawn_here_and_the_same() -> None:
    rows = [
        [
            f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}",
            ["机器学习", "编译器", "Rust", "—"][n % 4],
            f"梯度下降笔记（{n}）\nhttps://blog.example.com/posts/zh-post-{n:05d}/\n"
            + "读者可以先跳过推导，直接看最后的结论和代码。 timeout 参数的单位是秒。" * (n % 3),
            ["new", "too-old", "sent", "new (overflow)"][n % 4],
        ]
        for n in range(1000)
    ]
    drawn = draw(POSTS, rows, width=80, expand=True, show_lines=True)
    assert drawn is not None
    assert drawn == rich_table(POSTS, rows, 80, expand=True, show_lines=True)


@settings(max_examples=500, deadline=None)
@given(st.one_of(LONG, st.lists(SIMPLE, max_size=40).map("".join)), st.integers(1, 60))
def test_a_cell_wraps_as_rich_wraps_it(text: str, width: int) -> None:
    from rich.text import Text

    from digest.cli.grid import _wrapped

    expected = Text(text).wrap(console_of(80), width, justify="default", overflow="ellipsis")
    assert _wrapped(text, width) == [line.plain for line in expected]


def test_every_character_of_a_simple_text_takes_a_cell_at_least() -> None:
    """What `_wrapped`'s shortcuts rest on: in a text the grid draws (nothing `_unsimple`
    matches), more characters than cells is impossible, so a piece longer than the width is
    too wide, and its first `width` characters hold the cut. Every code point of Unicode."""
    from rich.cells import cell_len

    from digest.cli.grid import _unsimple

    unsimple = _unsimple()
    narrow = [
        hex(point)
        for point in range(0x110000)
        if not 0xD800 <= point <= 0xDFFF
        and chr(point) != "\n"
        and unsimple.search(chr(point)) is None
        and cell_len(chr(point)) < 1
    ]
    assert narrow == []


@settings(max_examples=500, deadline=None)
@given(
    st.text(st.characters(codec="utf-8"), max_size=80).filter(lambda text: _simple(text)),
    st.integers(1, 60),
)
def test_a_cell_of_any_simple_characters_wraps_as_rich_wraps_it(text: str, width: int) -> None:
    from rich.text import Text

    from digest.cli.grid import _wrapped

    expected = Text(text).wrap(console_of(80), width, justify="default", overflow="ellipsis")
    assert _wrapped(text, width) == [line.plain for line in expected]


def _simple(text: str) -> bool:
    from digest.cli.grid import _unsimple

    return _unsimple().search(text) is None
