"""Everything `digest` prints goes through here, made safe for the terminal it lands on.

What a command prints comes from posts, feeds, subscribers, file names and users: a feed title
can carry an OSC 52 sequence (which writes the reader's clipboard) or `ESC[2J` (which clears
the screen), a subscriber's name a bidi override that makes an address read backwards, an error
message a `[/x]` that Rich would read as markup and crash on. So every command prints through
these functions, never `click.echo`, `print` or a Console of its own (tests/test_terminal.py
checks the cli package for that), and each of them:

- removes terminal escape sequences whole (CSI `ESC[...`, OSC `ESC]...`, DCS, APC, PM, SOS,
  the two-character escapes, and their 8-bit C1 forms), then every control character left
  except newline and tab (a carriage return becomes a newline), and the bidi embedding,
  override and isolate controls (U+202A-U+202E, U+2066-U+2069) that "Trojan Source" uses;
  lone surrogates (an undecodable file name) become U+FFFD instead of crashing the write;
- never lets Rich read text as markup or emoji codes: text reaches Rich as `Text`, and
  styles are given apart from it (`styled`).

JSON keeps every character (a script reads it): the ones a terminal would act on are written
as `\\uXXXX` escapes, which JSON allows anywhere in a string, so `--json` is safe to view too.

Rich is imported when something is first printed through it, not when a command module is
loaded: `digest --help` and `digest --version` never load it (tests/cli/test_startup.py).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

_ESCAPE_SEQUENCE = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?          # CSI: ESC[2J, ESC[31m
  | (?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])                      # OSC, DCS, SOS, PM, APC ...
    [^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?                      # ... up to BEL or ST
  | \x1b[\x20-\x2f]*[\x30-\x7e]?                                 # other escapes: ESC 7, ESC(B
    """,
    re.VERBOSE,
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Where any of the three can match: an escape sequence starts with ESC or a C1 control, both
# in _CONTROL's range, and a carriage return is one of its controls too.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What JSON output writes as \uXXXX: json.dumps already escapes C0 controls, not these.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _console(stderr: bool) -> Console:
    """The console of a stream, made on first use (so Rich loads only when printing), for the
    terminal width of now: Rich reads `COLUMNS` once, when a console is made, and a process
    that runs commands one after another (a test, a shell embedding the CLI) may change it."""
    _tolerant(sys.stderr if stderr else sys.stdout)
    return _console_for(stderr, os.environ.get("COLUMNS"), os.environ.get("LINES"))


def _utf8(stream: object) -> bool:
    """Whether `stream` writes UTF-8 (so takes every character as it is)."""
    return str(getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-") in (
        "utf-8",
        "utf8",
    )


def _tolerant(stream: object) -> None:
    """A stream that cannot encode every character (`PYTHONIOENCODING=latin-1`, a legacy
    locale) writes `?` for what it cannot, instead of ending the command with an
    UnicodeEncodeError: a Chinese name on a Latin-1 terminal is shown as `??`, not a crash."""
    reconfigure = getattr(stream, "reconfigure", None)
    if not _utf8(stream) and reconfigure is not None and getattr(stream, "errors", "") == "strict":
        reconfigure(errors="replace")


@cache
def _console_for(stderr: bool, columns: str | None, lines: str | None) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False, markup=False)


def plain(text: object) -> str:
    """`text` as a terminal may show it: no escape sequences, no controls but newline and tab,
    no bidi overrides or isolates, no lone surrogates."""
    value = str(text)
    if _UNSAFE.search(value) is None:  # nothing for the three passes below to change
        return value
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _ESCAPE_SEQUENCE.sub("", value)
    value = _CONTROL.sub("", value)
    return _SURROGATE.sub("\ufffd", value)


def styled(*parts: str | tuple[str, str]) -> Text:
    """One piece of text from parts, each plain text or (text, Rich style): user text can never
    become a style, a link or an emoji."""
    from rich.text import Text

    text = Text()
    for part in parts:
        value, style = (part, "") if isinstance(part, str) else part
        text.append(plain(value), style=style)
    return text


def say(message: object = "", *, style: str = "") -> None:
    """One line (or more) on standard output."""
    _console(False).print(styled((str(message), style)), crop=False)


def note(message: object, *, style: str = "") -> None:
    """A line on standard error that is not a warning (what was written where)."""
    _console(True).print(styled((str(message), style)), crop=False)


def error(message: str) -> None:
    """`digest: error: MESSAGE` on one line of standard error; plain text, never markup."""
    _console(True).print(
        styled(("digest: error:", "bold red"), " ", _one_line(message)), crop=False
    )


def warn(message: str) -> None:
    """`digest: warning: MESSAGE` on one line of standard error; plain text."""
    _console(True).print(
        styled(("digest: warning:", "yellow"), " ", _one_line(message)), crop=False
    )


def _one_line(message: str) -> str:
    """A message is one line: a line break in a name or a key it quotes becomes a space."""
    return " ".join(plain(message).split("\n"))


def emit_json(data: Any) -> None:
    """`data` as indented JSON on standard output, every character kept (see the docstring;
    on a stream that is not UTF-8, every non-ASCII character as a `\\uXXXX` escape)."""
    text = json.dumps(data, ensure_ascii=not _utf8(sys.stdout), indent=2)
    text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    click.echo(_SURROGATE.sub("\ufffd", text))


def emit_json_line(data: Any) -> None:
    """`data` as one line of JSON (JSON Lines, keys sorted), escaped as `emit_json` does."""
    text = json.dumps(data, ensure_ascii=not _utf8(sys.stdout), sort_keys=True)
    text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    click.echo(_SURROGATE.sub("\ufffd", text))


def emit_data(text: str) -> None:
    """A file's content (a CSV export) on standard output: exactly as it is (UTF-8) when piped
    or redirected, made `plain` when standard output is a terminal."""
    terminal = sys.stdout.isatty()
    safe = _SURROGATE.sub("\ufffd", plain(text) if terminal else text)
    if not terminal and not _utf8(sys.stdout):
        click.echo(safe.encode("utf-8"), nl=False)  # the file's own bytes, whatever the locale
        return
    _tolerant(sys.stdout)
    click.echo(safe, nl=False)


def table(
    columns: Sequence[str | dict[str, Any]],
    rows: Iterable[Sequence[str | Text]],
    *,
    stream: str = "stdout",
    **options: Any,
) -> None:
    """A Rich table of plain cells (or `styled` ones). A column is a name, or a dict of
    `Table.add_column` arguments with `header`."""
    target = _console(stream == "stderr")
    rows = list(rows)
    drawn = _drawn_here(columns, rows, target, options)
    if drawn is not None:
        target.file.write(drawn)
        target.file.flush()
        return
    from rich.table import Table  # only for a table Rich lays out
    from rich.text import Text

    grid = Table(**options)
    for column in columns:
        if isinstance(column, str):
            grid.add_column(plain(column))
        else:
            settings = dict(column)
            grid.add_column(plain(settings.pop("header")), **settings)
    for row in rows:
        grid.add_row(*(cell if isinstance(cell, Text) else styled(cell) for cell in row))
    target.print(grid)


def _drawn_here(
    columns: Sequence[str | dict[str, Any]],
    rows: Sequence[Sequence[str | Text]],
    console: Console,
    options: dict[str, Any],
) -> str | None:
    """The table drawn by digest.cli.grid when it is of a kind it draws as Rich would (plain
    text, no title, columns of a header, `no_wrap` and `ratio`), else None."""
    from digest.cli.grid import Column, draw

    if set(options) - {"show_lines", "expand"}:
        return None
    if console.is_terminal or console.color_system is not None:
        return None  # styles to write: Rich draws
    if not _utf8(console.file):
        return None  # Rich draws an ASCII box for a stream that cannot take these
    specs = []
    for column in columns:
        if isinstance(column, str):
            specs.append(Column(header=plain(column)))
        elif set(column) <= {"header", "no_wrap", "ratio"}:
            specs.append(
                Column(
                    header=plain(column["header"]),
                    no_wrap=bool(column.get("no_wrap", False)),
                    ratio=column.get("ratio"),
                )
            )
        else:
            return None
    # a `styled` cell is plain already; only a string is made so here (as `table` does)
    cells = [[plain(cell) if isinstance(cell, str) else cell.plain for cell in row] for row in rows]
    return draw(
        specs,
        cells,
        width=console.width,
        expand=bool(options.get("expand", False)),
        show_lines=bool(options.get("show_lines", False)),
    )


def console(stream: str = "stdout") -> Console:
    """The console itself, for what needs one (a progress bar, a prompt); what it prints must
    still be `styled` or `plain` text."""
    return _console(stream == "stderr")
