"""No line of any message is longer than 998 octets, whatever the title, name or subject.

Before: a subscriber named with 200 emoji gave a 1,101-octet `To:` line and a 1,420-octet
HTML line (the server answered `500 Line too long`, and the send still exited 0); a long post
title with `subject: "{first_title}"` gave a 2,001-octet Subject and every message failed.
Here the extreme cases go through `digest send` into aiosmtpd (which refuses a line over
1,001 octets itself), and every line of what arrived is measured.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config.load import load_config
from digest.config.stages import issue_settings
from digest.store.database import open_database
from digest.store.tables import Subscriber
from tests.delivery.test_dkim import keygen, resolver, verifies
from tests.issues.test_send import deliveries, write_config
from tests.support import paths
from tests.support.smtp_server import SMTPServer

NAMES = {
    "emoji@example.com": "😀" * 200,
    "family@example.com": "👨‍👩‍👧‍👦" * 28,  # one grapheme of seven code points, 28 times
    "amp@example.com": "&" * 200,  # 1,000 octets once escaped for HTML
    "quote@example.com": '"<>' * 66,
    "ascii@example.com": "x" * 200,  # no space to fold at
    "spaced@example.com": "Ada Lovelace " * 15,
    "zh@example.com": "张" * 200,
    "plain@example.com": "",
}
LONG_TITLE = "A" * 2000
LONG_URL = "https://blog.example.com/" + "segment/" * 180  # some 1,465 characters


def post(folder: Path, name: str, title: str, body: str, extra: str = "") -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(
        f"---\ntitle: '{title}'\ndate: 2026-11-20 09:00:00\n{extra}---\n{body}\n", "utf-8"
    )


def longest_line(data: bytes) -> int:
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    return max(len(line) for line in data.split(b"\r\n"))


def to_header(data: bytes) -> tuple[str, str]:
    """(display name, address) of the To header, decoded as RFC 2047 says: the space between
    two encoded words is not part of the text (Python's address parser keeps it)."""
    raw = message_from_bytes(data, policy=policy.compat32)["To"]
    phrase, _, address = str(raw).rpartition("<")
    return str(make_header(decode_header(phrase.strip()))), address.rstrip(">").strip()


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def run_send(tmp_path: Path, posts: Path, subject: str, dkim: str = "") -> tuple[SMTPServer, str]:
    with SMTPServer() as server:
        path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", server.port)
        text = path.read_text("utf-8") + dkim
        text = text.replace(str(paths.ROOT / "examples" / "blog"), str(posts))
        text = text.replace(
            "  lookback_days: 3650\n", f"  lookback_days: 3650\n  subject: '{subject}'\n"
        )
        path.write_text(text, "utf-8")
        config = load_config(path)
        database = open_database(config.database_url)
        with database.session() as session:
            for email, name in NAMES.items():
                session.add(Subscriber(email=email, name=name, status="active", locale="en"))
        database.dispose()
        result = CliRunner().invoke(main, ["--config", str(path), "send", "--yes"])
        assert result.exit_code == 0, result.output
        assert deliveries(config) == {"sent": len(NAMES)}, result.output
        server.mailbox.wait_for(len(NAMES))
    return server, result.output


@pytest.mark.slow
def test_extreme_titles_subjects_and_links(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a.md", LONG_TITLE, "Body one.")
    post(posts, "b.md", "标题" * 700, "正文。" * 300, f"url: {LONG_URL}\n")
    server, _ = run_send(tmp_path, posts, "{first_title}")
    for received in server.mailbox.messages:
        assert longest_line(received.data) <= 998
        message = parsed(received.data)
        assert message["Subject"] in (LONG_TITLE, "标题" * 700)
        name, address = to_header(received.data)
        assert name == " ".join(NAMES[address].split())
        html_part = message.get_body(("html",))
        assert html_part is not None
        assert LONG_URL in html_part.get_content()  # the long link arrives whole


def test_extreme_names_keep_the_html_part_8bit(tmp_path: Path) -> None:
    """With ordinary posts the parts stay 8bit: the greeting, however long, is cut into lines
    joined by empty comments, which change nothing a reader sees."""
    posts = tmp_path / "posts"
    post(posts, "a.md", "An ordinary title", "An ordinary body.")
    key, record = keygen(
        write_config(tmp_path, "sqlite://", 25), tmp_path / "k", "--selector", "s1"
    )
    dkim = f"dkim:\n  domain: blog.example.com\n  selector: s1\n  key_file: {key}\n"
    server, _ = run_send(tmp_path, posts, "{title} · {long_date}", dkim)
    for received in server.mailbox.messages:
        assert longest_line(received.data) <= 998
        assert verifies(received.data, 0, resolver(record))  # the comments break no signature
        message = parsed(received.data)
        name, address = to_header(received.data)
        assert name == " ".join(NAMES[address].split())
        html_part = message.get_body(("html",))
        assert html_part is not None and html_part["Content-Transfer-Encoding"] == "8bit"
        shown = re.sub(r"<!--\s*-->", "", html_part.get_content())
        if name:
            import html

            assert html.escape(name) in shown


MAX_ID = 2**63 - 1


def test_personal_click_links_with_the_largest_ids_keep_every_line_short(tmp_path: Path) -> None:
    """With `tracking.clicks: personal`, the longest tokens (issue and delivery 2**63 - 1)
    spliced into posts with extreme titles and links, and a name of 200 emoji: every line
    within 998 octets, every link whole and the recipient's own, the DKIM signature good."""
    from datetime import UTC, datetime

    from digest.config.sending import compose_settings
    from digest.delivery.compose import Composer
    from digest.issues.upcoming import gather, next_edition
    from digest.models import Recipient
    from digest.tokens import ClickData, read_click_token

    posts = tmp_path / "posts"
    post(posts, "a.md", LONG_TITLE, "Body one.")
    post(posts, "b.md", "标题" * 700, "正文。" * 300, f"url: {LONG_URL}\n")
    post(posts, "c.md", "Short", "Body three.")
    path = write_config(tmp_path, "sqlite://", 25)
    key, record = keygen(path, tmp_path / "k", "--selector", "s1")
    text = path.read_text("utf-8").replace(str(paths.ROOT / "examples" / "blog"), str(posts))
    text += f"dkim:\n  domain: blog.example.com\n  selector: s1\n  key_file: {key}\n"
    path.write_text(text + "tracking:\n  clicks: personal\n", "utf-8")
    config = load_config(path, environ={})
    now = datetime.now(UTC)
    edition = next_edition(gather(issue_settings(config), now=now), issue_settings(config), now)
    assert len(edition.posts) == 3
    settings = compose_settings(config)
    composer = Composer(settings, edition, issue_id=MAX_ID, database=None)
    for name, locale in (("😀" * 200, "en"), ('"<>' * 66, "zh"), ("", "en")):
        recipient = Recipient(MAX_ID, MAX_ID, "reader@example.com", name, locale, None)
        composed = composer(recipient)
        assert composed is not None
        assert longest_line(composed.message) <= 998
        assert verifies(composed.message, 0, resolver(record))
        message = parsed(composed.message)
        for kind in ("html", "plain"):
            part = message.get_body((kind,))
            assert part is not None
            content = part.get_content()
            tokens = re.findall(r"https://news\.example\.com/c/([A-Za-z0-9._-]+)", content)
            named = {read_click_token(settings.keys, token) for token in tokens}
            assert named == {ClickData(MAX_ID, link, MAX_ID) for link in range(3)}, kind
            assert LONG_URL not in content and "x-digest:" not in content


@pytest.mark.parametrize(("links", "eight_bit"), [(1, True), (3, False)])
def test_click_links_on_one_long_line_choose_the_encoding(links: int, eight_bit: bool) -> None:
    """An HTML line of 790 octets (what fold_html leaves) holding `links` personal click
    links: one fits in 998 octets at its longest and the part stays 8bit; three would not,
    so the part is quoted-printable, and either way no line is longer than 998 octets."""
    import html
    from datetime import UTC, datetime

    from digest.delivery.personalise import Headers, MessageTemplate, Personal
    from digest.models import Rendered, click_url
    from digest.tokens import Keyring, make_click_token

    web = "https://news.example.com"
    keys = Keyring(secret="s")
    room = len(html.escape(f"{web}/c/{make_click_token(keys, MAX_ID, 99, MAX_ID)}").encode())
    anchors = "".join(f'<a href="{click_url(n)}">x</a>' for n in range(links))
    line = anchors + "y" * (790 - len(anchors))
    rendered = Rendered(
        locale="en",
        subject="s",
        preheader="p",
        html=f"<p>x-digest:greeting</p>\n{line}\n",
        text="x-digest:greeting\n" + "".join(f"{click_url(n)}\n" for n in range(links)),
        mjml="",
        greeting_named="Hi %(name)s,",
        greeting_anonymous="Hi,",
    )
    headers = Headers(sender="B <d@blog.example.com>", list_id="B <d.example.com>", link_room=room)
    template = MessageTemplate(rendered, headers)
    assert template.part_8bit == {"text/plain": True, "text/html": eight_bit}
    urls = {n: f"{web}/c/{make_click_token(keys, MAX_ID, n, MAX_ID)}" for n in range(links)}
    message = template.build(
        Personal(
            email="reader@example.com",
            name="",
            message_id="<m@blog.example.com>",
            date=datetime(2026, 11, 23, 9, tzinfo=UTC),
            unsubscribe_url=f"{web}/u/t",
            preferences_url=f"{web}/p/t",
            mailto=None,
            click_urls=urls,
        )
    )
    assert longest_line(message) <= 998
    html_part = parsed(message).get_body(("html",))
    assert html_part is not None
    assert all(f'href="{url}"' in html_part.get_content() for url in urls.values())
