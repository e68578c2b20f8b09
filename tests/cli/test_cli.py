"""The `digest` command as users run it: output, exit codes, one-sentence errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from tests.support import paths

ROOT = paths.ROOT
DEMO_CONFIG = ROOT / "config.yaml"


def run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def write_config(tmp_path: Path, extra: str = "", posts: str = "posts") -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  title: T\n  base_url: https://b.example.com\n  postal_address: Road 1\n"
        f"sources:\n  - type: markdown\n    path: {posts}\n"
        "digest:\n  lookback_days: 0\n" + extra,
        encoding="utf-8",
    )
    (tmp_path / posts).mkdir(exist_ok=True)
    return config


def test_posts_json_on_the_demo_blog_is_newest_first_without_draft_or_future() -> None:
    result = CliRunner().invoke(main, ["--config", str(DEMO_CONFIG), "posts", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) >= 14
    dates = [r["date"] for r in rows if r["date"]]
    assert dates == sorted(dates, reverse=True)
    everything = json.loads(
        CliRunner().invoke(main, ["--config", str(DEMO_CONFIG), "posts", "--json", "--all"]).stdout
    )
    statuses = {r["id"]: r["status"] for r in everything}
    excluded = {i for i, s in statuses.items() if s != "new"}
    assert {"draft", "future", "opted-out"} <= set(statuses.values())
    assert not excluded & {r["id"] for r in rows}
    assert sum(r["shown"] for r in rows) == 12  # max_posts; the rest is the overflow line
    excerpts = {r["id"]: r["excerpt"] for r in everything}
    assert all(excerpts.values())  # --all: every post's excerpt
    for row in rows:
        assert row["url"].startswith("https://blog.example.com/")
        # an excerpt for each post the digest gives a block, the same --all gives; none for
        # the overflow, which the digest names only in its "more posts" line
        assert row["excerpt"] == (excerpts[row["id"]] if row["shown"] else "")
        assert set(row) >= {"id", "title", "url", "date", "category", "excerpt"}


def test_posts_table_lists_titles(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "posts" / "2026-01-02-one.md").write_text("---\ntitle: 第一篇\n---\n正文", "utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "posts"])
    assert result.exit_code == 0
    assert "第一篇" in result.stdout and "2026-01-02" in result.stdout


def test_nothing_new_says_so_and_exits_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(write_config(tmp_path)), "posts"])
    assert result.exit_code == 0
    assert "Nothing new" in result.stdout


def test_excerpt_command() -> None:
    demo = sorted((ROOT / "examples" / "blog").glob("*.md"))
    assert demo
    result = CliRunner().invoke(main, ["excerpt", str(demo[0]), "--length", "20", "--locale", "en"])
    assert result.exit_code == 0
    assert result.stdout.strip().endswith("...") or len(result.stdout.strip()) <= 20


@pytest.mark.slow
def test_typo_in_config_key_is_exit_2_with_one_sentence(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="smtp:\n  hots: x\n")
    proc = run("--config", str(config), "posts")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"digest: error: {config}, line 11: unknown key smtp.hots (did you mean smtp.host?)."
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_missing_config_is_exit_2(tmp_path: Path) -> None:
    proc = run("posts", cwd=tmp_path, env={"DIGEST_CONFIG": ""})
    assert proc.returncode == 2
    assert "config.yaml: configuration file not found." in proc.stderr


@pytest.mark.slow
def test_config_from_environment_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    proc = run("posts", cwd=other, env={"DIGEST_CONFIG": str(config)})
    assert proc.returncode == 0, proc.stderr


def test_broken_post_is_a_warning_and_the_rest_is_listed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "posts" / "good.md").write_text("---\ntitle: Good\n---\nfine", "utf-8")
    (tmp_path / "posts" / "bad.md").write_text("---\ntitle: [oops\n---\nx", "utf-8")
    proc = run("--config", str(config), "posts", "--json")
    assert proc.returncode == 0
    assert [r["title"] for r in json.loads(proc.stdout)] == ["Good"]
    assert proc.stderr.count("\n") == 1
    assert "bad.md: the front matter is not valid YAML" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_feed_that_is_not_xml_is_exit_1_with_one_sentence(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="")
    text = config.read_text("utf-8").replace(
        "sources:\n", "sources:\n  - type: feed\n    url: feed.xml\n"
    )
    config.write_text(text, "utf-8")
    (tmp_path / "feed.xml").write_text("this is not a feed", "utf-8")
    proc = run("--config", str(config), "posts")
    assert proc.returncode == 1
    assert "feed.xml: not an RSS, Atom or JSON feed" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_excerpt_of_broken_file_is_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: [oops\n---\nx", "utf-8")
    proc = run("excerpt", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"digest: error: {bad}: the front matter is not valid YAML")
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args", [["nonsense"], ["posts", "--bogus"], ["excerpt", "/no/such.md"]])
def test_bad_usage_is_exit_2(args: list[str]) -> None:
    proc = run("--config", str(DEMO_CONFIG), *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_every_command_is_loaded_from_the_module_the_map_names() -> None:
    """Commands load lazily (base.COMMAND_MODULES): a command missing from the map, or mapped
    to the wrong module, would vanish from `digest` or load the wrong code."""
    import importlib
    import pkgutil

    import digest.cli
    from digest.cli.base import COMMAND_MODULES

    for module in pkgutil.iter_modules(digest.cli.__path__):
        if module.name != "__main__":
            importlib.import_module(f"digest.cli.{module.name}")
    defined = {name: command.callback.__module__ for name, command in main.commands.items()}
    assert defined == {name: f"digest.cli.{module}" for name, module in COMMAND_MODULES.items()}


@pytest.mark.slow
def test_posts_does_not_load_the_send_engine(tmp_path: Path) -> None:
    """`digest posts` imports only what it uses (start-up is most of a warm run)."""
    config = write_config(tmp_path)

    code = (
        "import sys; from digest.cli import main\n"
        f"try:\n    main(['--config', {str(config)!r}, 'posts'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('digest.delivery') or m in"
        " ('digest.cli.send', 'aiosmtplib', 'premailer')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
