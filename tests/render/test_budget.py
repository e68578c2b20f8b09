"""The HTML part stays under 100,000 bytes as it goes out, so Gmail never clips the footer.

A 30-post Chinese blog with `max_posts: 30` would make a 180 KB digest: the posts that do not
fit move into the "N more posts" line (text part too), a warning names how many, and every
recipient's copy, the longest name and the largest ids included, stays under the limit.
"""

from __future__ import annotations

import email
import html
import logging
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.audience.addresses import clean_name
from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import compose_settings
from digest.config.stages import issue_settings, render_settings
from digest.issues.schedule import scheduled_send
from digest.issues.send import Composer, gather, next_edition
from digest.models import Edition, Post, Recipient, Rendered, click_url
from digest.render import edition as render_module
from digest.render.budget import HTML_LIMIT, MAX_ID, NAME_MAX_CHARS, longest_values, outgoing_size
from digest.render.edition import render
from digest.store.database import open_database
from digest.store.tables import Subscriber
from digest.tokens import ClickData, Keyring, make_click_token, read_click_token
from tests.support.smtp_server import SMTPServer

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
POSTS = 30
WORST_NAME = '"' * NAME_MAX_CHARS  # every character escapes to &quot;, six bytes
SENTENCES = [
    "这一周我们把推理服务从单机迁到了三台机器上，",
    "最大的麻烦不是网络，而是显存碎片，",
    "批处理的大小一旦超过十六，延迟就开始抖动，",
    "于是我们给调度器加了一个按序列长度分桶的队列，",
    "结果吞吐提高了将近一倍，尾延迟也稳定了下来。",
    "缓存命中率是另一个值得盯住的指标，",
    "它直接决定了首个 token 出来得有多快。",
    "量化到八位以后，精度的损失比预想的小，",
    "但校准数据集的选择对结果影响很大。",
]


def chinese_blog(folder: Path, posts: int = POSTS, *, smtp_port: int = 25) -> Path:
    """A Chinese blog of `posts` long posts (code, math, categories) and its configuration."""
    (folder / "posts").mkdir()
    for number in range(posts):
        body = "".join(SENTENCES[(number + i) % len(SENTENCES)] for i in range(40))
        (folder / "posts" / f"2026-11-{number % 20 + 1:02d}-note-{number}.md").write_text(
            f"---\ntitle: 工程笔记第 {number + 1} 篇：推理服务的调度与缓存\n"
            f"date: 2026-11-{number % 20 + 1:02d} 10:{number:02d}:00\n"
            f"categories: [工程实践]\n---\n\n{body}\n\n```python\nprint({number})\n```\n\n"
            f"复杂度为 $O(n^2)$。{body}\n",
            encoding="utf-8",
        )
    (folder / "web-secret").write_text("test-secret\n", encoding="utf-8")
    path = folder / "config.yaml"
    path.write_text(
        f"""site:
  title: 行路中
  base_url: https://blog.example.com
  postal_address: 上海市徐汇区示例路 88 号 200030
sources:
  - type: markdown
    path: posts
digest:
  max_posts: {posts}
  lookback_days: 0
database:
  url: sqlite:///digest.sqlite3
smtp:
  host: 127.0.0.1
  port: {smtp_port}
  timeout: 5
sender:
  from: "行路中 <digest@blog.example.com>"
web:
  base_url: https://news.example.com
  secret_file: web-secret
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def blog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chinese_blog(tmp_path_factory.mktemp("blog"))


@pytest.fixture(scope="module")
def config(blog: Path) -> Config:
    return load_config(blog, environ={})


@pytest.fixture(scope="module")
def edition(config: Config) -> Edition:
    found = next_edition(gather(issue_settings(config), now=NOW), issue_settings(config), NOW)
    assert len(found.posts) == POSTS
    return found


def shown_posts(rendered: Rendered) -> tuple[int, int]:
    """Post blocks in the HTML and in the text part."""
    return rendered.html.count("阅读全文 →"), rendered.text.count("阅读全文: ")


def moved_in_warning(records: list[logging.LogRecord]) -> list[int]:
    return [
        int(found.group(1))
        for record in records
        if record.name == "digest.render.edition"
        and (found := re.match(r"(\d+) of \d+ posts moved", record.getMessage()))
    ]


def test_a_30_post_chinese_digest_stays_under_the_limit(
    config: Config, edition: Edition, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="digest.render.edition"):
        rendered = render(render_settings(config), edition, "zh")
    longest = longest_values(config.web.base_url, rendered.greeting_named)
    assert outgoing_size(rendered.html, longest) <= HTML_LIMIT
    html_posts, text_posts = shown_posts(rendered)
    [moved] = moved_in_warning(caplog.records)
    assert 0 < html_posts < POSTS and html_posts == text_posts == POSTS - moved
    line = f"网站上还有 {moved} 篇文章"
    assert line in rendered.html and line in rendered.text
    for post in edition.posts[:html_posts]:  # the newest ones, in both parts
        assert post.url in rendered.html and post.url in rendered.text
    for post in edition.posts[html_posts:]:
        assert post.url not in rendered.html and post.url not in rendered.text
    assert "x-digest:unsubscribe-url" in rendered.html.rsplit("网站上还有", 1)[1]  # the footer


def test_without_the_limit_the_digest_would_be_clipped(
    config: Config, edition: Edition, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the selection prevents: all 30 posts pass Gmail's 102 KB."""
    monkeypatch.setattr(render_module, "HTML_LIMIT", 10**9)
    rendered = render(render_settings(config), edition, "zh")
    assert shown_posts(rendered) == (POSTS, POSTS)
    assert len(rendered.html.encode()) > 102 * 1024


def test_a_digest_that_fits_renders_once_and_warns_nothing(
    config: Config, edition: Edition, caplog: pytest.LogCaptureFixture
) -> None:
    few = Edition(edition.key, edition.date, edition.posts[:5])
    with caplog.at_level(logging.WARNING, logger="digest.render.edition"):
        rendered = render(render_settings(config), few, "zh")
    assert shown_posts(rendered) == (5, 5) and "网站上还有" not in rendered.html
    assert moved_in_warning(caplog.records) == []


@pytest.mark.slow
def test_a_post_too_large_alone_moves_to_the_overflow_line(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """An author's summary has no length cut: one that alone passes the limit is not shown."""
    huge = Post(
        id="huge",
        title="很长的摘要",
        url="https://blog.example.com/posts/huge/",
        date=NOW,
        body="正文。",
        summary="摘要" * 60_000,
    )
    with caplog.at_level(logging.WARNING, logger="digest.render.edition"):
        rendered = render(render_settings(config), Edition("2026-W47", NOW, (huge,)), "zh")
    assert shown_posts(rendered) == (0, 0) and rendered.preheader == "行路中：新文章"
    assert "网站上还有 1 篇文章" in rendered.html and "网站上还有 1 篇文章" in rendered.text
    assert moved_in_warning(caplog.records) == [1]
    assert (
        outgoing_size(rendered.html, longest_values(config.web.base_url, rendered.greeting_named))
        < 20_000
    )


@pytest.mark.slow
def test_the_bound_holds_for_the_worst_recipient(config: Config, edition: Edition) -> None:
    """Through the real send path: the largest ids and the longest, most-escaped name."""
    rendered = render(render_settings(config), edition, "zh")
    composer = Composer(compose_settings(config), edition, issue_id=MAX_ID, database=None, now=NOW)
    worst = Recipient(1, MAX_ID, "reader@example.com", WORST_NAME, "zh", None)
    composed = composer(worst)
    assert composed is not None
    html_part = html_bytes(composed.message)
    bound = outgoing_size(
        rendered.html, longest_values(config.web.base_url, rendered.greeting_named)
    )
    assert len(html_part) <= bound <= HTML_LIMIT
    assert bound - len(html_part) < 64  # the bound is the worst case, not a guess
    assert len(clean_name("x" * 1000)) == NAME_MAX_CHARS


def html_bytes(message: bytes) -> bytes:
    """The HTML part's body as it goes out (8bit, CRLF line ends)."""
    parsed = email.message_from_bytes(message, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("html",))
    assert part is not None and part["Content-Transfer-Encoding"] == "8bit"
    body = message.split(b"Content-Type: text/html; charset=utf-8\r\n", 1)[1]
    body = body.split(b"\r\n\r\n", 1)[1]
    return body.rsplit(b"\r\n--=_digest_", 1)[0]


def add_people(config: Config, name: str = WORST_NAME) -> None:
    """A subscriber with the largest id and `name`, and an English one."""
    database = open_database(config.database_url)
    with database.session() as session:  # Ada first: no id can follow the largest one
        session.add(Subscriber(email="ada@example.org", name="Ada", status="active", locale="en"))
        session.flush()
        session.add(
            Subscriber(
                id=MAX_ID, email="worst@example.com", name=name, status="active", locale="zh"
            )
        )
    database.dispose()


@pytest.mark.slow
def test_render_and_dry_run_warn_and_every_copy_fits(tmp_path: Path) -> None:
    path = chinese_blog(tmp_path)
    config = load_config(path, environ={})
    add_people(config)
    runner = CliRunner()
    rendered = runner.invoke(main, ["--config", str(path), "render", "--out", str(tmp_path / "r")])
    assert rendered.exit_code == 0, rendered.output
    assert re.search(r"digest: warning: \d+ of 30 posts moved", rendered.stderr)
    outbox = tmp_path / "outbox"
    dry = runner.invoke(main, ["--config", str(path), "send", "--dry-run", "--outbox", str(outbox)])
    assert dry.exit_code == 0, dry.output
    warnings = re.findall(
        r"digest: warning: (\d+) of 30 posts moved.*?the (\w+) digest", dry.stderr
    )
    assert {language for _, language in warnings} == {"zh", "en"}
    assert len(warnings) == 2  # each variant's warning once, however often it is rendered
    messages = sorted(outbox.glob("*.eml"))
    assert len(messages) == 2
    for message in messages:
        assert len(html_bytes(message.read_bytes())) <= HTML_LIMIT


@pytest.mark.slow
def test_the_scheduler_logs_the_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with SMTPServer() as server:
        path = chinese_blog(tmp_path, smtp_port=server.port)
        config = load_config(path, environ={})
        # not WORST_NAME: 200 quotes make the greeting's line of the 8bit HTML part longer
        # than 998 octets (digest.delivery.personalise), which the SMTP server refuses
        add_people(config, name="长" * 60)
        database = open_database(config.database_url)
        with caplog.at_level(logging.INFO):
            assert scheduled_send(config, database, "weekly") == 1
        database.dispose()
    assert len(server.mailbox.messages) == 2
    assert len(moved_in_warning(caplog.records)) >= 1
    for received in server.mailbox.messages:
        assert len(html_bytes(received.data)) <= HTML_LIMIT


@pytest.mark.slow
def test_a_real_send_warns_too(tmp_path: Path) -> None:
    with SMTPServer() as server:
        path = chinese_blog(tmp_path, smtp_port=server.port)
        add_people(load_config(path, environ={}), name="读者")
        result = CliRunner().invoke(main, ["--config", str(path), "send", "--yes"])
        assert result.exit_code == 0, result.output
    languages = re.findall(
        r"digest: warning: \d+ of 30 posts moved.*?the (\w+) digest", result.stderr
    )
    assert sorted(languages) == ["en", "zh"]
    assert len(server.mailbox.messages) == 2
    for received in server.mailbox.messages:
        assert len(html_bytes(received.data)) <= HTML_LIMIT


@pytest.mark.slow
def test_click_links_count_in_the_budget(config: Config, edition: Edition) -> None:
    """With `tracking.clicks: aggregate` every post link becomes a longer `/c/TOKEN` link
    (the largest issue id here): the budget measures the tracked HTML, so the copy still fits,
    and the longer links take the room of posts, never the footer's."""
    tracked = config.model_copy(
        update={"tracking": config.tracking.model_copy(update={"clicks": "aggregate"})}
    )
    composer = Composer(compose_settings(tracked), edition, issue_id=MAX_ID, database=None, now=NOW)
    composed = composer(Recipient(1, MAX_ID, "reader@example.com", WORST_NAME, "zh", None))
    assert composed is not None
    html_part = html_bytes(composed.message)
    assert len(html_part) <= HTML_LIMIT
    assert html_part.count(b"https://news.example.com/c/") >= 2
    assert b"https://blog.example.com/posts/" not in html_part  # no post link left untracked
    assert b"/u/" in html_part  # the footer's unsubscribe link is there, and not tracked
    plain = render(render_settings(config), edition, "zh")
    with_clicks = composer.template("zh", None)
    assert with_clicks is not None
    assert "https://blog.example.com/posts/" in plain.html  # what tracking replaces
    assert shown_posts(with_clicks.rendered)[0] <= shown_posts(plain)[0]


def test_personal_click_links_count_at_their_longest() -> None:
    """A personal click link's placeholder (`tracking.clicks: personal`) counts as the
    longest `/c/TOKEN` it can become for its own link index (the largest issue and delivery
    ids), even where one placeholder's text holds another's ("…click-1" in "…click-12");
    left out of `longest`, it is an error, never a bound that forgot it."""
    web = "https://news.example.com/a&b"  # escaped in the HTML part: `&amp;`
    markup = '<a href="x-digest:click-1">a</a>\n<a href="x-digest:click-12">b</a>\n'
    longest = longest_values(web, "Hi %(name)s,", [1, 12])
    keys = Keyring(secret="another secret")  # the signature's length is the same for any
    worst = markup
    for link in (12, 1):
        token = make_click_token(keys, MAX_ID, link, MAX_ID)
        worst = worst.replace(click_url(link), html.escape(f"{web}/c/{token}"))
    assert outgoing_size(markup, longest) == len(worst.encode()) + worst.count("\n")
    assert outgoing_size(markup, longest) > outgoing_size(markup.replace("click", "x"), longest)
    with pytest.raises(KeyError):
        outgoing_size(markup, longest_values(web, "Hi %(name)s,"))


@pytest.mark.slow
def test_personal_click_links_count_in_the_budget(config: Config, edition: Edition) -> None:
    """With `tracking.clicks: personal` every post link becomes the recipient's own
    `/c/TOKEN` (naming their delivery too, so longer than an aggregate one): the budget
    counts each at its longest, so the worst recipient's copy (the largest issue and
    delivery ids, the most-escaped name) fits, within a few bytes of the bound."""
    personal = config.model_copy(
        update={"tracking": config.tracking.model_copy(update={"clicks": "personal"})}
    )
    settings = compose_settings(personal)
    composer = Composer(settings, edition, issue_id=MAX_ID, database=None, now=NOW)
    composed = composer(Recipient(MAX_ID, MAX_ID, "reader@example.com", WORST_NAME, "zh", None))
    assert composed is not None
    html_part = html_bytes(composed.message)
    template = composer.template("zh", None)
    assert template is not None and len(template.links) >= 2
    rendered = template.rendered
    longest = longest_values(config.web.base_url, rendered.greeting_named, template.links)
    bound = outgoing_size(rendered.html, longest)
    assert len(html_part) <= bound <= HTML_LIMIT
    assert bound - len(html_part) < 64  # the bound is the worst case, not a guess
    tokens = set(re.findall(rb"https://news\.example\.com/c/([A-Za-z0-9._-]+)", html_part))
    named = {read_click_token(settings.keys, token.decode()) for token in tokens}
    assert named == {ClickData(MAX_ID, link, MAX_ID) for link in template.links}
    assert b"x-digest:" not in html_part
    # the longer links take the room of posts: no more shown than with aggregate links
    aggregate = personal.model_copy(
        update={"tracking": config.tracking.model_copy(update={"clicks": "aggregate"})}
    )
    plain = Composer(compose_settings(aggregate), edition, issue_id=MAX_ID, database=None)
    with_aggregate = plain.template("zh", None)
    assert with_aggregate is not None
    assert shown_posts(rendered)[0] <= shown_posts(with_aggregate.rendered)[0]
