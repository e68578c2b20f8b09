"""Fuzzing the three ways hostile text gets in: front matter, subscriber CSV rows, config values.

Hypothesis, derandomised (the same examples on every run, so a failure reproduces) with a
fixed number of examples, in-process through click's CliRunner. Whatever the input, a command
must end with exit code 0, 1 or 2, print no traceback and no "unexpected" error (the CLI's
last line of defence, which means an exception nobody handled), and say every problem in one
sentence on one line.
"""

from __future__ import annotations

import string
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.cli import main

SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=120,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONFIG = (
    "site: {title: T, base_url: 'https://b.example.com', locale: en}\n"
    "sources: [{type: markdown, path: posts}]\n"
    "digest: {lookback_days: 0}\n"
)


def check(result: Result) -> None:
    """The contract of every command, whatever it was given."""
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream
    lines = result.stderr.splitlines()
    for line in lines:
        assert line.startswith(("digest: warning: ", "digest: error: ")), lines
        assert "digest: error: unexpected " not in line, line
    if result.exit_code == 2:
        assert any(line.startswith("digest: error: ") for line in lines), lines


# -- front matter -----------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.dates(min_value=date(1, 1, 1)),
    st.datetimes(min_value=datetime(1, 1, 2)),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "title", "date", "updated", "lastmod", "publishDate", "expiryDate", "draft", "published",
    "newsletter", "categories", "category", "tags", "summary", "excerpt", "description",
    "cover", "image", "url", "permalink", "slug", "id", "hidden", "build", "abbrlink",
]  # fmt: skip
HOSTILE_SNIPPETS = [
    "a: &a [*a]\n",
    "x: !!python/object/apply:os.system [ls]\n",
    "x: !!binary AAAA\n",
    "x: " + "[" * 70 + "1" + "]" * 70 + "\n",
    "date: 2026-02-30\n",
    "date: 99999-01-01\n",
    "title: \x1b]52;c;SGk=\x07[/x]\n",
    "url: 'java\tscript:alert(1)'\n",
    "? [a, b]\n: c\n",
    "<<: {title: merged}\n",
    "tags: !!set {a, b}\n",
    "title: !!timestamp 2026-01-01\n",
    "{{{{\n",
    "'unclosed\n",
]


@st.composite
def front_matters(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["yaml", "toml", "json", "snippet", "text"]))
    if kind == "text":
        return "---\n" + draw(st.text(max_size=200)) + "\n---\nBody.\n"
    if kind == "snippet":
        return "---\n" + draw(st.sampled_from(HOSTILE_SNIPPETS)) + "---\nBody.\n"
    data = draw(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), values, max_size=6))
    if kind == "json":
        import json

        return json.dumps(data, default=str) + "\n\nBody.\n"
    if kind == "toml":
        lines = [f'{k!s} = "{v!s}"' for k, v in data.items()]
        return "+++\n" + "\n".join(lines) + "\n+++\nBody.\n"
    try:
        dumped = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        dumped = "title: x\n"
    return "---\n" + dumped + "---\nBody.\n"


@pytest.fixture(scope="module")
def blog() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "posts").mkdir()
        (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
        (root / "posts" / "fine.md").write_text(
            "---\ntitle: Fine\ndate: 2026-01-01\n---\nText.\n", encoding="utf-8"
        )
        yield root


@SETTINGS
@given(text=front_matters())
def test_any_front_matter(blog: Path, text: str) -> None:
    (blog / "posts" / "fuzz.md").write_text(text, encoding="utf-8", errors="surrogatepass")
    for args in (["posts", "--json", "--all"], ["posts"]):
        result = CliRunner().invoke(main, ["--config", str(blog / "config.yaml"), *args])
        check(result)
        assert result.exit_code == 0  # one bad post never fails the command
        if "--json" in args:
            assert "Fine" in result.stdout  # and never hides the others


# -- CSV rows ---------------------------------------------------------------------------------

cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["a@example.com", "A@EXAMPLE.COM", "zh", "en", "active", "bounced", ""]),
    st.text(alphabet=string.printable + "\x00\x1b\u202e\ufeff；，", max_size=30),
)
rows = st.lists(st.lists(cells, min_size=0, max_size=7), max_size=12)


@pytest.fixture(scope="module")
def database_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "posts").mkdir()
        (root / "config.yaml").write_text(
            CONFIG + f"database: {{url: 'sqlite:///{root / 'db.sqlite3'}'}}\n", encoding="utf-8"
        )
        yield root


@SETTINGS
@given(
    header=st.sampled_from(["email", "email,name", "email;name;locale", "Email\tName", "name"]),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    body=rows,
    ending=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_any_csv(
    database_folder: Path,
    header: str,
    delimiter: str,
    body: list[list[str]],
    ending: str,
    bom: bool,
) -> None:
    lines = [header] + [delimiter.join(row) for row in body]
    text = ("\ufeff" if bom else "") + ending.join(lines) + ending
    path = database_folder / "list.csv"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    result = CliRunner().invoke(
        main, ["--config", str(database_folder / "config.yaml"), "subscribers", "import", str(path)]
    )
    check(result)
    for line in result.stderr.splitlines():
        assert str(path) in line  # every problem names the file (and, for a row, its line)


# -- config values ----------------------------------------------------------------------------

SECTIONS: dict[str, list[str]] = {
    "site": ["title", "base_url", "locale", "timezone", "postal_address", "permalink", "posts_url"],
    "excerpt": ["length", "labels", "math"],
    "digest": ["max_posts", "lookback_days", "subject"],
    "database": ["url"],
    "smtp": ["host", "port", "security", "timeout", "connections", "rate_per_second", "retries"],
    "sender": ["from", "reply_to", "list_id"],
    "web": ["base_url", "rotated_at", "rotation_overlap_days", "trusted_proxies"],
    "preview": ["allowed_hosts"],
    "bounces": ["return_path", "soft_limit", "poll_minutes", "imap"],
    "schedule": ["frequency", "cron", "preset", "timezone", "misfire_grace_hours", "offer"],
    "dkim": ["domain", "selector", "key_file"],
}
config_values = st.one_of(
    values,
    st.sampled_from(
        [
            "1e308",
            "-1",
            "0",
            ".inf",
            ".nan",
            "0 9 31 2 *",
            "{nope}",
            "{count:99999999}",
            "javascript:alert(1)",
            "[/x]",
            "\x1b[2J",
            "*",
            "Mars/Base",
            "sqlite:///",
        ]
    ),
)


@st.composite
def configs(draw: st.DrawFn) -> Any:
    data: dict[str, Any] = yaml.safe_load(CONFIG)
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=4, unique=True)):
        keys = draw(st.lists(st.sampled_from(SECTIONS[section]), min_size=1, max_size=3))
        block = data.setdefault(section, {})
        for key in keys:
            block[key] = draw(config_values)
    if draw(st.booleans()):
        data[draw(st.sampled_from(["templates_dir", "outbox", "cache_dir", "sources"]))] = draw(
            config_values
        )
    return data


@pytest.fixture(scope="module")
def config_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "posts").mkdir()
        yield root


@SETTINGS
@given(data=configs())
def test_any_config_values(config_folder: Path, data: Any) -> None:
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    path = config_folder / "config.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = CliRunner().invoke(main, ["--config", str(path), "posts", "--json"])
    check(result)
    if result.exit_code == 2:
        [line] = result.stderr.splitlines()
        assert line.startswith(f"digest: error: {path}")
