"""Control characters pasted into posts never fail an issue, and a render error names its post.

Before: one U+0008 in a post made `render`, `send` and `send --dry-run` fail for the whole
issue with mjml's "unable to parse next template in root template", naming no post.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from digest.cli import main
from digest.config.load import load_config
from digest.config.stages import issue_settings, render_settings
from digest.excerpt.clean import clean
from digest.issues.send import gather
from digest.models import Edition, Post
from digest.render.edition import RenderError, render
from digest.sources.document import make_excerpt
from digest.store.database import open_database
from digest.store.tables import Subscriber
from tests.support.smtp_server import SMTPServer

NASTY = "\x00\x01\x08\x0b\x0c\x1b\x7f\x80\x85\x9f\ufdd0\ufdd1\ufffe\uffff\U0010ffff"
TITLE = "Back\x08space \x1b[31m标题\x0c"
BODY = "正文\x08里有\x00控制\x1b字符\ufffe。\r\n\r\n第二段\x85。"


def test_clean_removes_controls_and_noncharacters_but_keeps_tab_newline_and_text() -> None:
    assert clean(NASTY) == ""
    assert clean("a\tb\nc") == "a\tb\nc"
    assert clean("a\r\nb\rc") == "a\nb\nc"
    assert clean("中文 émoji 👩‍💻 \u00a0 \u200b") == "中文 émoji 👩‍💻 \u00a0 \u200b"
    assert clean("lone \ud800 surrogate") == "lone  surrogate"


@pytest.mark.slow
@given(st.text())
def test_clean_leaves_no_control_character_and_is_idempotent(text: str) -> None:
    cleaned = clean(text)
    assert clean(cleaned) == cleaned
    for char in cleaned:
        assert char in "\t\n" or unicodedata.category(char) not in ("Cc", "Cs")
        assert not (0xFDD0 <= ord(char) <= 0xFDEF or (ord(char) & 0xFFFE) == 0xFFFE)


def test_excerpt_drops_control_characters_and_they_cannot_forge_a_label() -> None:
    assert make_excerpt(BODY, locale="zh") == "正文里有控制字符。 第二段。"
    assert make_excerpt("a \ufdd0 b", locale="en") == "a b"  # a marker in the input is no label


def write_blog(tmp_path: Path, port: int = 2) -> Path:
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "2026-01-11-nasty.md").write_text(
        f'---\ntitle: {json.dumps(TITLE)}\ncategories: ["Py\\bthon"]\n'
        f'summary: "摘要\\b"\n---\n{BODY}\n',
        encoding="utf-8",
    )
    (posts / "2026-01-10-fine.md").write_text("---\ntitle: Fine\n---\nAll fine.\n", "utf-8")
    (tmp_path / "web-secret").write_text("s\n", encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""site:
  title: Nasty
  base_url: https://blog.example.com
  postal_address: 1 Road
sources:
  - type: markdown
    path: posts
digest:
  lookback_days: 0
database:
  url: sqlite:///{tmp_path / "d.sqlite3"}
smtp:
  host: 127.0.0.1
  port: {port}
  timeout: 5
web:
  secret_file: web-secret
""",
        encoding="utf-8",
    )
    database = open_database(load_config(path).database_url)
    with database.session() as session:
        session.add(Subscriber(email="r@example.com", name="Reader", status="active"))
    database.dispose()
    return path


def assert_clean(text: str) -> None:
    for char in text:
        assert char in "\t\n\r" or unicodedata.category(char) != "Cc", repr(char)
    assert "\ufffe" not in text and "\ufdd0" not in text


def test_a_post_with_control_characters_is_read_clean(tmp_path: Path) -> None:
    config = load_config(write_blog(tmp_path))
    post = next(c.post for c in gather(issue_settings(config)).candidates if c.post.title != "Fine")
    assert post.title == "Backspace [31m标题"
    assert post.categories == ("Python",)
    assert post.summary == "摘要"
    assert_clean(post.body)


def test_render_dry_run_and_a_real_send_succeed(tmp_path: Path) -> None:
    with SMTPServer() as server:
        path = write_blog(tmp_path, server.port)
        runner = CliRunner()
        rendered = runner.invoke(
            main, ["--config", str(path), "render", "--out", str(tmp_path / "out")]
        )
        assert rendered.exit_code == 0, rendered.output
        dry = runner.invoke(main, ["--config", str(path), "send", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        sent = runner.invoke(main, ["--config", str(path), "send", "--yes"])
        assert sent.exit_code == 0, sent.output
    html = (tmp_path / "out" / "issue.html").read_text(encoding="utf-8")
    assert "Backspace [31m标题" in html
    assert_clean(html)
    [eml] = list((tmp_path / "outbox").rglob("*.eml"))
    [received] = server.mailbox.messages
    for raw in (eml.read_bytes(), received.data):
        assert b"\x08" not in raw and b"\x1b" not in raw and b"\x0c" not in raw
    text, html_part = received.parsed().iter_parts()
    assert "Backspace [31m标题" in text.get_content()
    assert "摘要..." in html_part.get_content()  # the cleaned summary is the excerpt


def test_render_cleans_posts_that_bypass_the_sources(tmp_path: Path) -> None:
    config = load_config(write_blog(tmp_path))
    post = Post(
        id="x",
        title=TITLE,
        url="https://blog.example.com/x/",
        date=None,
        body=BODY,
        categories=("Cat\x08",),
        cover_alt="alt\x00",
    )
    rendered = render(
        render_settings(config), Edition("2026-W02", datetime(2026, 1, 11, tzinfo=UTC), (post,))
    )
    assert_clean(rendered.html + rendered.text + rendered.subject + rendered.preheader)
    assert "Backspace [31m标题" in rendered.html


def test_a_render_error_names_the_post_it_came_from(tmp_path: Path) -> None:
    path = write_blog(tmp_path)
    mine = tmp_path / "templates" / "email"
    mine.mkdir(parents=True)
    # a user template that breaks on one post only
    (mine / "post.mjml.j2").write_text(
        "<mj-section><mj-column><mj-text>{{ item.title }}"
        "{% if 'Fine' in item.title %}{{ item.no_such_field }}{% endif %}"
        "</mj-text></mj-column></mj-section>",
        encoding="utf-8",
    )
    config = load_config(path)
    edition_posts = tuple(c.post for c in gather(issue_settings(config)).new)
    edition = Edition("2026-W02", datetime(2026, 1, 11, tzinfo=UTC), edition_posts)
    with pytest.raises(
        RenderError, match=r"post 2026-01-10-fine\.md \('Fine'\) fails: .*no_such_field"
    ):
        render(render_settings(config), edition)
    result = CliRunner().invoke(
        main, ["--config", str(path), "render", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert "post 2026-01-10-fine.md ('Fine') fails" in result.output
    assert "Traceback" not in result.output


def test_a_template_broken_for_every_post_is_not_blamed_on_one(tmp_path: Path) -> None:
    from jinja2 import UndefinedError

    path = write_blog(tmp_path)
    mine = tmp_path / "templates" / "email"
    mine.mkdir(parents=True)
    (mine / "post.mjml.j2").write_text("{{ item.no_such_field }}", encoding="utf-8")
    config = load_config(path)
    edition = Edition(
        "2026-W02",
        datetime(2026, 1, 11, tzinfo=UTC),
        tuple(c.post for c in gather(issue_settings(config)).new),
    )
    with pytest.raises(RenderError) as caught:
        render(render_settings(config), edition)
    assert isinstance(caught.value.__cause__, UndefinedError)
    assert str(caught.value).startswith(
        f"cannot render the digest: {mine / 'post.mjml.j2'}, line 1:"
    )
    assert " post " not in str(caught.value)  # the template is named, not a post


def test_a_feed_entry_with_control_characters_and_a_lone_surrogate_is_read_clean(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text(
        json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "F",
                "items": [
                    {
                        "id": "1",
                        "url": "https://f.example.com/1/",
                        "title": "Feed\b title \ud800",
                        "content_html": "<p>body\u0008 text\uffff</p>",
                        "date_published": "2026-01-11T00:00:00Z",
                        "tags": ["t\u0001ag"],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        f"site:\n  title: T\n  base_url: https://f.example.com\nsources:\n"
        f"  - type: feed\n    url: {feed}\ndigest:\n  lookback_days: 0\n",
        encoding="utf-8",
    )
    [candidate] = gather(issue_settings(load_config(path))).candidates
    assert candidate.post.title == "Feed title "
    assert candidate.post.categories == ("tag",)
    assert_clean(candidate.post.body)
    assert candidate.excerpt == "body text"
