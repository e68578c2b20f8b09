"""The owner's say in the next issue (issue 24), through the CLI and a real send to a real SMTP
server on 127.0.0.1, on SQLite and PostgreSQL: `digest note set FILE` puts the note above the
posts in both parts of every message and keeps it with the issue (the next issue starts
without one); `digest hold POST` leaves a post out of the next issue only (it is new again
after), `--always` out of every issue until `digest unhold`; each change is an audit event."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from digest.cli import main
from digest.config.load import load_config
from digest.render.edition import note_html
from digest.store.database import open_database
from digest.store.tables import EditorNote, Event, HeldPost, Issue
from tests.issues.test_send import add_subscribers, send, write_config
from tests.support.smtp_server import SMTPServer

NOTE = "A word from the editor: **thank you** for reading.\n\nSee <https://example.com/>."


def cli(path: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", str(path), *args], input=stdin)


def new_posts(path: Path) -> list[dict[str, str]]:
    result = cli(path, "posts", "--all", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, str]] = json.loads(result.stdout)
    return rows


def test_the_note_and_held_posts_reach_every_message_and_stay_with_the_issue(
    tmp_path: Path, database_url: str
) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
        config = load_config(path, environ={})
        add_subscribers(config, 3)
        note_file = tmp_path / "note.md"
        note_file.write_text(NOTE, encoding="utf-8")
        assert cli(path, "note", "set", str(note_file)).exit_code == 0
        assert cli(path, "note", "show").stdout.strip() == NOTE
        posts = [p for p in new_posts(path) if p["status"] == "new"]
        once, forever = posts[0], posts[1]
        assert cli(path, "hold", once["id"]).exit_code == 0
        assert cli(path, "hold", forever["url"], "--always").exit_code == 0
        statuses = {p["id"]: p["status"] for p in new_posts(path)}
        assert statuses[once["id"]] == "held" and statuses[forever["id"]] == "held-always"
        unknown = cli(path, "hold", "no-such-post")
        assert unknown.exit_code == 2 and "no post 'no-such-post'" in unknown.output
        result = send(path, "--yes")
        assert result.exit_code == 0, result.output

    messages = server.mailbox.messages
    assert len(messages) == 3
    for received in messages:
        text, html = (part.get_content() for part in received.parsed().iter_parts())
        assert NOTE.split("\n")[0] in text
        assert text.index("A word from the editor") < text.index(posts[2]["title"])
        assert "<strong>thank you</strong>" in html
        # (a title is in the preheader too: its block is the last mention)
        assert html.index("A word from the editor") < html.rindex(posts[2]["title"])
        for held in (once, forever):
            assert held["title"] not in text and held["title"] not in html

    database = open_database(config.database_url)
    with database.session() as session:
        [issue] = session.scalars(select(Issue))
        assert issue.note == NOTE
        assert session.scalar(select(EditorNote)) is None  # the next issue starts without one
        held = {row.post_id: row.scope for row in session.scalars(select(HeldPost))}
        assert held == {forever["id"]: "always"}  # "next" went with the issue it was for
        audit = [m for m in session.scalars(select(Event.method).where(Event.kind == "audit"))]
    database.dispose()
    assert {"note-set", "post-held-next", "post-held-always"} <= set(audit)
    assert cli(path, "note", "show").stdout == ""
    statuses = {p["id"]: p["status"] for p in new_posts(path)}
    # the post held from that issue only is new again; the one held always is not
    assert statuses[once["id"]] == "new" and statuses[forever["id"]] == "held-always"
    assert cli(path, "unhold", forever["id"]).exit_code == 0
    statuses = {p["id"]: p["status"] for p in new_posts(path)}
    assert statuses[forever["id"]] == "new"
    listed = cli(path, "hold", "--list")
    assert listed.exit_code == 0 and listed.stdout == ""


def test_note_clear_and_a_note_from_standard_input(tmp_path: Path, database_url: str) -> None:
    path = write_config(tmp_path, database_url, 2525)
    assert cli(path, "note", "set", "-", stdin="Hello *there*\n").exit_code == 0
    assert cli(path, "note", "show").stdout == "Hello *there*\n"
    assert cli(path, "note", "clear").exit_code == 0
    assert cli(path, "note", "show").stdout == ""
    too_long = cli(path, "note", "set", "-", stdin="x" * 5001)
    assert too_long.exit_code == 2 and "at most 5000" in too_long.output


def test_the_note_is_sanitised_markdown() -> None:
    html = str(
        note_html("**Hi** <script>x()</script> [x](javascript:x()) <b>b</b> [ok](https://e.com)")
    )
    assert "<strong>Hi</strong>" in html and '<a href="https://e.com"' in html
    assert "<script" not in html and "&lt;script&gt;" in html  # shown as text, never run
    assert 'href="javascript' not in html and "<b>" not in html
    assert str(note_html("   ")) == ""
