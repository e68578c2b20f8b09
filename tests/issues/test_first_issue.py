"""The first digest (issue 21): why it is empty, and `digest.first_issue`, where it starts.

Right after `digest init` on a blog whose posts are all older than `digest.lookback_days`,
`digest posts` said "Nothing new since the last digest." although nothing was ever sent. It now
says why in one sentence, and `digest.first_issue` (a date, or the newest N posts) gives the
first issue a start that posts, preview, render, status, the scheduler and send all read. The
blog is tests/fixtures/blogs/jekyll-chirpy (posts dated 2026-01-20 to 2026-02-12, so always
older than 30 days from now on); sends go to a real SMTP server on 127.0.0.1, on both databases.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.issues.schedule import scheduled_send
from digest.store.database import open_database
from digest.store.tables import Issue
from digest.web.preview import database_preview
from tests.issues.test_send import add_subscribers
from tests.support import paths
from tests.support.smtp_server import SMTPServer

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BLOG = paths.TESTS / "fixtures" / "blogs" / "jekyll-chirpy"
TITLES = {
    "2026-02-12": "What a Hash Table Lookup Really Costs",
    "2026-02-05": "Sorting Stability, and Why Your Tests Depend on It",
    "2026-01-28": "Bloom Filters in One Page",
    "2026-01-20": "Cache Lines for the Impatient",
}
ENV = {"DIGEST_CONFIG": ""}  # no lookback override: the configuration's 30 days


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(here)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV)


def titles(result: Result) -> set[str]:
    assert result.exit_code == 0, result.output
    return {row["title"] for row in json.loads(result.stdout)}


def ready_to_send(folder: Path, database_url: str, port: int, first_issue: str) -> Config:
    """The config `digest init` wrote, with `first_issue` uncommented as a user would, and the
    placeholders a real send needs filled in."""
    path = folder / "config.yaml"
    text = path.read_text("utf-8")
    assert "  # first_issue: 2026-02-12\n" in text  # written commented, the newest post's day
    text = text.replace("  # first_issue: 2026-02-12\n", f"  first_issue: {first_issue}\n")
    text = text.replace("  # postal_address:", "  postal_address: 1 Example Road\n  # was:")
    text = text.replace("sqlite:///var/digest.sqlite3", database_url)
    (folder / "web-secret").write_text("test-secret\n", "utf-8")
    text += (
        f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  timeout: 5\n  retry_delay: 0.01\n"
        'sender:\n  from: "Bits and Bounds <digest@bounds.example.dev>"\n'
        "web:\n  base_url: https://news.example.dev\n  secret_file: web-secret\n"
    )
    path.write_text(text, "utf-8")
    return load_config(path, environ={})


def issue_posts(config: Config) -> list[list[str]]:
    database = open_database(config.database_url)
    with database.session() as session:
        rows = [[post["title"] for post in issue.posts] for issue in session.scalars(select(Issue))]
    database.dispose()
    return rows


def delivered_titles(server: SMTPServer) -> list[set[str]]:
    found = []
    for received in server.mailbox.messages:
        body = received.parsed().get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        found.append({title for title in TITLES.values() if title in text})
    return found


def test_right_after_init_posts_says_why_in_one_sentence(folder: Path) -> None:
    init = run("init", str(BLOG))
    assert init.exit_code == 0, init.output
    assert (
        "every post is older than digest.lookback_days (30 days; the newest is dated "
        "2026-02-12): the first digest waits for a new post unless you uncomment "
        "digest.first_issue" in init.output
    )
    text = (folder / "config.yaml").read_text("utf-8")
    # commented out, with what uncommenting it does
    block = text[text.index("  # Where the first digest starts.") :]
    assert "nothing old is sent unless you choose it" in block
    assert "\n  # first_issue: 2026-02-12\n" in block
    assert load_config(folder / "config.yaml", environ={}).digest.first_issue is None
    listed = run("posts")
    assert listed.exit_code == 0
    [sentence] = listed.stdout.strip().splitlines()
    assert sentence == (
        "Nothing new: no digest was sent yet, and every post is older than "
        "digest.lookback_days (30 days), the newest being dated 2026-02-12; to start with older "
        "posts, set digest.first_issue in the configuration to a date (such as 2026-02-12) or a "
        "number of posts (such as 5)."
    )
    assert re.search(r"\b\d{4}-\d{2}-\d{2}\b", sentence)
    assert titles(run("posts", "--json")) == set()
    rendered = run("render", "--out", str(folder / "out"))
    assert rendered.exit_code == 0
    assert "the newest being dated 2026-02-12" in rendered.output
    assert "nothing rendered." in rendered.output
    statuses = json.loads(run("posts", "--json", "--all").stdout)
    assert {row["status"] for row in statuses} == {"too-old"}
    sent = run("send", "--yes")
    assert sent.exit_code == 0
    assert "the newest being dated 2026-02-12" in sent.output and "nothing to send." in sent.output
    config = load_config(folder / "config.yaml", environ={})
    database = open_database(config.database_url)
    try:
        page = TestClient(database_preview(config, database)).get("/?locale=en").text
    finally:
        database.dispose()
    assert (
        "no digest was sent yet, and every post is older than 30 days (the newest is dated "
        "2026-02-12); set digest.first_issue" in page
    )


def test_a_start_date_posts_preview_and_send_agree(folder: Path, database_url: str) -> None:
    assert run("init", str(BLOG)).exit_code == 0
    since_february = {TITLES["2026-02-12"], TITLES["2026-02-05"]}
    with SMTPServer() as server:
        config = ready_to_send(folder, database_url, server.port, "2026-02-01")
        add_subscribers(config, 3)
        # posts
        assert titles(run("posts", "--json")) == since_february
        every = {
            row["title"]: row["status"]
            for row in json.loads(run("posts", "--json", "--all").stdout)
        }
        assert every[TITLES["2026-01-28"]] == every[TITLES["2026-01-20"]] == "before-start"
        # status
        status = json.loads(run("status", "--json").stdout)
        assert status["posts_waiting"] == 2
        # preview (as `digest preview` serves it)
        database = open_database(config.database_url)
        try:
            page = TestClient(database_preview(config, database)).get("/?locale=en").text
        finally:
            database.dispose()
        assert {title for title in TITLES.values() if title in page} == since_february
        # send
        sent = run("send", "--yes")
        assert sent.exit_code == 0, sent.output
        assert issue_posts(config) == [[TITLES["2026-02-12"], TITLES["2026-02-05"]]]
        assert len(server.mailbox.messages) == 3
        assert delivered_titles(server) == [since_february] * 3
        # the next run sends nothing again
        again = run("send", "--yes")
        assert again.exit_code == 0 and "Nothing new since the last digest" in again.output
        assert len(server.mailbox.messages) == 3
        assert issue_posts(config) == [[TITLES["2026-02-12"], TITLES["2026-02-05"]]]
        assert titles(run("posts", "--json")) == set()


def test_the_newest_n_posts_through_the_scheduler(folder: Path, database_url: str) -> None:
    assert run("init", str(BLOG)).exit_code == 0
    newest_three = {TITLES["2026-02-12"], TITLES["2026-02-05"], TITLES["2026-01-28"]}
    with SMTPServer() as server:
        config = ready_to_send(folder, database_url, server.port, "3")
        assert config.digest.first_issue == 3
        add_subscribers(config, 2)
        assert titles(run("posts", "--json")) == newest_three
        database = open_database(config.database_url)
        try:
            assert scheduled_send(config, database, config.schedule.frequency) == 1
            assert scheduled_send(config, database, config.schedule.frequency) == 0
        finally:
            database.dispose()
        [issue] = issue_posts(config)
        assert set(issue) == newest_three
        assert delivered_titles(server) == [newest_three] * 2
        # once an issue went out, the lookback alone decides: the fourth post never comes
        listed = run("posts")
        assert listed.stdout.strip() == "Nothing new since the last digest."
        assert titles(run("posts", "--json")) == set()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "digest.first_issue: a number of posts must be 1 to 1000, not 0"),
        ("soon", "digest.first_issue: 'soon' is neither a date such as 2026-01-15 nor a number"),
        ("2026-02-30", "day is out of range for month"),  # YAML's own date: its line
    ],
)
def test_a_bad_first_issue_is_exit_2_naming_the_key(folder: Path, value: str, message: str) -> None:
    assert run("init", str(BLOG)).exit_code == 0
    path = folder / "config.yaml"
    text = path.read_text("utf-8").replace("  # first_issue: 2026-02-12", f"  first_issue: {value}")
    path.write_text(text, "utf-8")
    result = run("posts")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert re.search(r"config\.yaml, line \d+: ", result.output)


def test_before_the_start_date_says_so(folder: Path) -> None:
    assert run("init", str(BLOG)).exit_code == 0
    path = folder / "config.yaml"
    text = path.read_text("utf-8").replace(
        "  # first_issue: 2026-02-12", "  first_issue: 2026-03-01"
    )
    path.write_text(text, "utf-8")
    listed = run("posts")
    assert listed.stdout.strip() == (
        "Nothing new: no post is dated on or after digest.first_issue (2026-03-01); the newest "
        "is dated 2026-02-12."
    )
