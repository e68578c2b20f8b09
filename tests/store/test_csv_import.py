"""Subscriber CSVs as spreadsheets write them, and files that try to exhaust memory.

Before: a semicolon-separated file (Excel's CSV in much of Europe) said "the header has no
email column"; a file was read whole whatever its size, and every bad row was kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.audience import csvfile
from digest.audience.csvfile import MAX_CSV_LINE, read_csv
from digest.cli import main
from digest.errors import DigestError


def write(tmp_path: Path, data: str | bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_the_delimiter_is_found_from_the_header(tmp_path: Path, delimiter: str) -> None:
    d = delimiter
    text = (
        f"\ufeffEmail{d}Name{d}Categories\r\n"
        f'a@example.com{d}"Ann{d} the first"{d}"Python;ML"\r\n'
        f'b@example.com{d}"Bob\r\nBrown"{d}\r\n'
        f"c@example.com{d}Cé{d}Rust\r\n"
    )
    rows, problems = read_csv(write(tmp_path, text))
    assert problems == []
    assert [(r.line, r.email, r.name) for r in rows] == [
        (2, "a@example.com", " ".join(f"Ann{d} the first".split())),
        (4, "b@example.com", "Bob Brown"),  # a name on one line
        (5, "c@example.com", "Cé"),
    ]
    assert rows[0].categories == ["Python", "ML"]


def test_a_header_without_email_says_how_it_was_read(tmp_path: Path) -> None:
    with pytest.raises(DigestError) as caught:
        read_csv(write(tmp_path, "name;locale\nA;zh\n"))
    assert str(caught.value).endswith(
        "list.csv, line 1: the header has no email column (read as semicolon-separated)."
    )


def test_an_overlong_line_is_a_bad_row_and_the_others_go_through(tmp_path: Path) -> None:
    long_name = "x" * (MAX_CSV_LINE + 10)
    text = (
        "email,name\n"
        f"long@example.com,{long_name}\n"  # line 2
        "ok@example.com,OK\n"  # line 3
        f'quoted@example.com,"start\n{long_name}\nend"\n'  # lines 4-6
        "last@example.com,Last\n"  # line 7
    )
    path = write(tmp_path, text)
    rows, problems = read_csv(path)
    assert [r.email for r in rows] == ["ok@example.com", "last@example.com"]
    assert problems == [
        f"{path}, line 2: longer than 8,192 characters (8,220); the row is skipped",
        f"{path}, line 5: longer than 8,192 characters (8,203); the row is skipped",
    ]


def test_a_runaway_quoted_field_is_cut_at_the_field_limit(tmp_path: Path) -> None:
    lines = "\n".join(f"{n}" * 80 for n in range(200))  # short lines, one unclosed quote
    text = f'email,name\nopen@example.com,"never closed\n{lines}\n'
    rows, problems = read_csv(write(tmp_path, text))
    assert rows == []
    assert "field larger than field limit (8192)" in problems[0]


def test_too_many_rows_is_refused_before_anything_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvfile, "MAX_CSV_ROWS", 3)
    text = "email\n" + "".join(f"u{n}@example.com\n" for n in range(4))
    with pytest.raises(DigestError, match=r"more than 3 rows; split the file \(nothing was"):
        read_csv(write(tmp_path, text))


def test_too_large_a_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfile, "MAX_CSV_BYTES", 1024 * 1024)
    path = write(tmp_path, b"email\n" + b"a@example.com\n" * 80_000)
    with pytest.raises(DigestError, match=r"list.csv: the file is larger than 1 MB; split it\."):
        read_csv(path)


def config(tmp_path: Path) -> Path:
    (tmp_path / "posts").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(
        "site: {title: T, base_url: 'https://b.example.com'}\n"
        "sources: [{type: markdown, path: posts}]\n"
        f"database: {{url: 'sqlite:///{tmp_path / 'db.sqlite3'}'}}\n",
        encoding="utf-8",
    )
    return path


def test_import_of_a_semicolon_file_through_the_command(tmp_path: Path) -> None:
    csv_file = write(
        tmp_path,
        "\ufeffemail;name;locale\r\nzhang@example.com;张伟;zh\r\nbad-address;X;en\r\n",
    )
    result = CliRunner().invoke(
        main, ["--config", str(config(tmp_path)), "subscribers", "import", str(csv_file)]
    )
    assert result.exit_code == 1  # one row was skipped
    assert f"digest: warning: {csv_file}, line 3: 'bad-address' is not a valid address" in (
        result.stderr
    )
    assert result.stdout.strip() == (
        f"Imported {csv_file}: 1 added, 0 updated, 0 unchanged, 1 rows skipped."
    )


def test_bad_rows_beyond_the_listed_ones_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvfile, "MAX_LISTED", 5)
    text = "email\n" + "".join(f"not-an-address-{n}\n" for n in range(12)) + "ok@example.com\n"
    csv_file = write(tmp_path, text)
    result = CliRunner().invoke(
        main, ["--config", str(config(tmp_path)), "subscribers", "import", str(csv_file)]
    )
    assert result.exit_code == 1
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 6
    assert warnings[-1] == f"digest: warning: {csv_file}: 7 more bad rows, not listed."
    assert "1 added, 0 updated, 0 unchanged, 12 rows skipped." in result.stdout
