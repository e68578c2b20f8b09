"""What reaches a terminal: no escape sequences, no bidi overrides, nothing read as markup.

Before digest.cli.output, `digest: error:` lines were Rich markup (a `[/x]` in a path or an
address crashed the command with MarkupError) and names, file names and titles were printed
as they came, escape sequences included (an OSC 52 writes the reader's clipboard).
"""

from __future__ import annotations

import ast
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.cli import main
from digest.cli.output import plain
from tests.support import paths

ROOT = paths.ROOT
OSC52 = "\x1b]52;c;SGVsbG8=\x07"  # "write Hello to the clipboard"
CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b2J"  # the 8-bit CSI some terminals still honour
RLO = "\u202e"  # right-to-left override: "moc.elpmaxe@" reads as an address
HOSTILE = f"{OSC52}Eve{CLEAR} [/x] [bold]{C1_CSI}{RLO}moc{chr(0x2066)}\x07\x08:smile:"
# Every character a terminal acts on, as a set, to look for in output.
DANGEROUS = set("\x1b\x07\x08\x9b\x9d\u202e\u2066") | {chr(c) for c in range(0x80, 0xA0)}


def assert_safe(text: str) -> None:
    found = sorted(f"U+{ord(c):04X}" for c in set(text) & DANGEROUS)
    assert not found, f"terminal controls in the output: {found}"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (OSC52 + "title", "title"),
        ("\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"),  # OSC 8 hyperlink
        (CLEAR + "after", "after"),
        ("\x1b[31mred\x1b[0m", "red"),
        (C1_CSI + "x", "x"),
        ("\x1bPq#0;2;0;0;0\x1b\\dcs", "dcs"),  # DCS (sixel)
        ("\x1b7saved\x1b8", "saved"),
        ("\x1b(Bcharset", "charset"),
        ("a\rb\r\nc", "a\nb\nc"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        (f"{RLO}evil\u202c and \u2067iso\u2069", "evil and iso"),
        ("bell\x07 del\x7f nul\x00", "bell del nul"),
        ("bad \udcff byte", "bad \ufffd byte"),
        ("中文 · emoji 😀 [bold] :smile:", "中文 · emoji 😀 [bold] :smile:"),
        ("\x1b]0;unterminated title\nnext line", "\nnext line"),
    ],
)
def test_plain_removes_what_a_terminal_would_act_on(raw: str, shown: str) -> None:
    assert plain(raw) == shown


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "site: {title: T, base_url: 'https://b.example.com', locale: en}\n"
        "sources: [{type: markdown, path: posts}]\n"
        "digest: {lookback_days: 0}\n"
        f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\n" + extra,
        encoding="utf-8",
    )
    (tmp_path / "posts").mkdir(exist_ok=True)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_markup_in_an_error_message_is_shown_not_parsed(tmp_path: Path) -> None:
    missing = tmp_path / "[/x]" / "[bold]config.yaml"
    code, _, err = invoke("--config", str(missing), "posts")
    assert code == 2
    assert err == f"digest: error: {missing}: configuration file not found.\n"


def test_an_address_with_markup_and_escapes_is_named_safely(tmp_path: Path) -> None:
    code, _, err = invoke("--config", str(config(tmp_path)), "subscribers", "remove", HOSTILE)
    assert code == 1
    assert err.startswith("digest: error: '") and "[/x] [bold]" in err
    assert "is not a valid address" in err
    assert_safe(err)


def test_subscriber_names_reach_the_table_and_json_without_controls(tmp_path: Path) -> None:
    path = str(config(tmp_path))
    code, _, err = invoke(
        "--config", path, "subscribers", "add", "eve@example.com", "--name", HOSTILE
    )
    assert code == 0, err
    code, out, _ = invoke("--config", path, "subscribers", "list")
    assert code == 0
    assert_safe(out)
    assert "Eve [/x] [bold]" in out and ":smile:" in out  # shown literally, not as markup
    code, out, _ = invoke("--config", path, "subscribers", "list", "--json")
    assert_safe(out)
    # JSON keeps the name exactly: the dangerous characters are \u escapes
    assert json.loads(out)[0]["name"] == " ".join(HOSTILE.split())


def test_a_warning_names_a_hostile_file_name_safely(tmp_path: Path) -> None:
    path = config(tmp_path)
    name = f"{OSC52}[red]{RLO}x.md"
    (tmp_path / "posts" / name).write_text("", encoding="utf-8")
    code, _, err = invoke("--config", str(path), "posts", "--json")
    assert code == 0
    assert_safe(err)
    assert "[red]x.md: the file is empty; skipped" in err


@pytest.mark.slow
def test_export_is_exact_when_piped_and_plain_on_a_terminal(tmp_path: Path) -> None:
    path = str(config(tmp_path))
    invoke("--config", path, "subscribers", "add", "eve@example.com", "--name", f"{OSC52}Eve")
    _, piped, _ = invoke("--config", path, "subscribers", "export")
    assert f"{OSC52}Eve" in piped  # a redirect to a file keeps the data as it is
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "digest.cli", "--config", path, "subscribers", "export"]
    process = subprocess.Popen(
        command,
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=120) == 0
    shown = b"".join(chunks).decode()
    assert "eve@example.com" in shown and "Eve" in shown
    assert_safe(shown)


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_a_stream_that_is_not_utf8_loses_no_data_and_does_not_crash(
    tmp_path: Path, encoding: str
) -> None:
    """`PYTHONIOENCODING=latin-1` (or a legacy locale): the table shows `?` for what the
    stream cannot take, JSON escapes it (the same data), an export is written as UTF-8 bytes
    (the file as it is). It used to end with "unexpected UnicodeEncodeError"."""
    path = str(config(tmp_path))
    invoke("--config", path, "subscribers", "add", "wang@example.com", "--name", "王芳 🎉")

    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "digest.cli", "--config", path, *args],
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            timeout=120,
        )

    legacy = {"PYTHONIOENCODING": encoding}
    utf8 = {"PYTHONIOENCODING": "utf-8"}
    listed = run("subscribers", "list", env=legacy)
    assert listed.returncode == 0, listed.stderr
    assert b"wang@example.com" in listed.stdout and b"Traceback" not in listed.stderr
    as_json = run("subscribers", "list", "--json", env=legacy)
    assert as_json.returncode == 0 and as_json.stdout.isascii()
    assert json.loads(as_json.stdout) == json.loads(
        run("subscribers", "list", "--json", env=utf8).stdout
    )
    exported = run("subscribers", "export", env=legacy)
    assert exported.returncode == 0
    assert exported.stdout == run("subscribers", "export", env=utf8).stdout
    assert "王芳 🎉".encode() in exported.stdout


FORBIDDEN_CALLS = {"echo", "secho", "print", "Console", "Table"}


def test_every_command_prints_through_the_output_module() -> None:
    """Structural: a command cannot forget the escaping, because it cannot print otherwise."""
    offenders = []
    modules = sorted((ROOT / "digest" / "cli").glob("*.py"))
    assert {"posts.py", "send.py", "status.py", "subscribers.py"} <= {m.name for m in modules}
    for module in modules:
        if module.name == "output.py":
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in FORBIDDEN_CALLS:
                    offenders.append(f"{module.name}:{node.lineno} {name}()")
            if isinstance(node, ast.ImportFrom) and node.module in ("rich.console", "rich.table"):
                offenders.append(f"{module.name}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr"):
                offenders.append(f"{module.name}:{node.lineno} .{node.attr}")
    assert not offenders, offenders


def test_an_error_is_one_line_whatever_it_quotes(tmp_path: Path) -> None:
    """Found by tests/e2e/test_fuzz.py: an unknown key spelled with a carriage return split the
    error over two lines."""
    path = tmp_path / "config.yaml"
    path.write_text(
        'site: {title: T, base_url: "https://b.example.com", "a\\rb\\nc": 1}\n', "utf-8"
    )
    code, _, err = invoke("--config", str(path), "posts")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("digest: error: ")
    assert "unknown key site.a b c" in err


def test_a_table_fits_the_width_of_each_command_in_one_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rich reads COLUMNS when a console is made: a process that runs one command at 40
    columns and then one at 250 (the test suite, a shell embedding the CLI) gets each width."""
    from digest.cli.output import table

    heading = ["Issue", "Status", "Recipients", "Delivered", "Deferred", "Unknown"]
    cells = [["2026-W47", "finished", "12", "11", "1", "0"]]
    monkeypatch.setenv("COLUMNS", "40")
    table(heading, cells)
    narrow = capsys.readouterr().out
    monkeypatch.setenv("COLUMNS", "250")
    table(heading, cells)
    wide = capsys.readouterr().out
    assert max(len(line) for line in narrow.splitlines()) <= 40
    assert "Recipients" not in narrow  # cut to fit
    assert any("Recipients" in line and "Unknown" in line for line in wide.splitlines())


@settings(max_examples=1000)
@given(
    st.lists(
        st.one_of(
            st.characters(),
            st.sampled_from(["\x1b[2J", "\x1b]52;c;aGk=\x07", "\x9b31m", "\r\n", "\r", "\u202e"]),
        ),
        max_size=20,
    ).map("".join)
)
def test_plain_skips_its_passes_only_when_they_change_nothing(text: str) -> None:
    """`plain` returns a text without escapes, controls, bidi controls or surrogates as it is,
    without its three passes: the same as the passes give."""
    from digest.cli.output import _CONTROL, _ESCAPE_SEQUENCE, _SURROGATE, plain

    value = text.replace("\r\n", "\n").replace("\r", "\n")
    value = _SURROGATE.sub("\ufffd", _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", value)))
    assert plain(text) == value
