"""The sign-up from the blog, over HTTP: a static post (no stamp) lands on the one-click page and
creates nobody until its button is pressed; an instant post, the honeypot, a blocked or
disposable domain create nobody; the challenge appears past the threshold and a solved one
passes; the redirect back goes only to a listed origin; JSON and CORS for listed origins only;
the welcome mail goes once, after the confirmation; one that failed goes with the next upkeep
(`schedule`, any `send`), once; none with `welcome: false`; stale pending sign-ups go."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from altcha import Challenge, Payload, solve_challenge
from sqlalchemy import func, select
from starlette.testclient import TestClient

from digest.audience.guard import GuardSettings, make_stamp
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import sender_settings, smtp_settings
from digest.delivery.mailer import MailError, SmtpMailer
from digest.issues.upkeep import upkeep
from digest.store import challenges
from digest.store.database import Database, open_database
from digest.store.tables import Event, SpentChallenge, Status, Subscriber, Welcome
from digest.web.public import create_public_app
from digest.web.snippet import form_snippet
from tests.issues.test_send import write_config
from tests.support.smtp_server import SMTPServer
from tests.web.test_public_web import Clock, confirm_link

BLOG = "http://blog.test:4000"


def setup(tmp_path: Path, database_url: str, port: int, **signup: object) -> Config:
    path = write_config(tmp_path, database_url, port)
    text = path.read_text("utf-8").replace(
        "  base_url: https://news.example.com\n",
        f"  base_url: https://news.example.com\n  return_to: [{BLOG}]\n"
        "  privacy_url: https://blog.example.com/privacy/\n",
    )
    for key, value in signup.items():
        text = re.sub(rf"  {key}: .*\n", "", text)
        text = text.replace("signup:", f"signup:\n  {key}: {value}", 1)
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def people(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Subscriber)) or 0)


def fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', html))


def test_static_post_gets_one_click_page_then_returns_to_the_blog(
    tmp_path: Path, database_url: str, smtp: SMTPServer
) -> None:
    config = setup(tmp_path, database_url, smtp.port, min_fill_seconds=2)
    database = open_database(config.database_url)
    clock = Clock()
    app = create_public_app(config, database, clock=clock)
    snippet = form_snippet(config, database)
    assert 'action="https://news.example.com/subscribe"' in snippet
    assert f'name="return_to" value="{BLOG}/"' in snippet
    assert "https://blog.example.com/privacy/" in snippet
    with TestClient(app, follow_redirects=False) as client:
        static = {"email": "reader@example.org", "locale": "en", "return_to": f"{BLOG}/p/1"}
        landed = client.post("/subscribe", data=static, headers={"origin": BLOG})
        assert landed.status_code == 200 and 'class="one-click"' in landed.text
        assert people(database) == 0  # nobody before the button
        again = fields(landed.text)
        assert again["return_to"] == f"{BLOG}/p/1"
        instant = client.post("/subscribe", data=again)  # pressed by a script at once
        assert instant.status_code == 200 and people(database) == 0
        clock.advance(seconds=3)
        pressed = client.post("/subscribe", data=again)
        assert pressed.status_code == 303 and pressed.headers["location"] == f"{BLOG}/p/1"
        assert people(database) == 1
        elsewhere = dict(again, email="other@example.org", return_to="https://evil.test/")
        answer = client.post("/subscribe", data=elsewhere)
        assert answer.status_code == 200 and "location" not in answer.headers
    smtp.mailbox.wait_for(2)
    database.dispose()


def test_honeypot_forged_stamp_and_domains_create_nobody(
    tmp_path: Path, database_url: str, smtp: SMTPServer
) -> None:
    config = setup(tmp_path, database_url, smtp.port, blocked_domains="[spam.example]")
    database = open_database(config.database_url)
    old = make_stamp(GuardSettings(secret="test-secret"), datetime.now(UTC) - timedelta(hours=1))
    forged = make_stamp(GuardSettings(secret="not-ours"), datetime.now(UTC) - timedelta(hours=1))
    with TestClient(create_public_app(config, database)) as client:
        caught = client.post(
            "/subscribe", data={"email": "bot@example.org", "website": "x", "stamp": old}
        )
        assert caught.status_code == 200
        fake = client.post("/subscribe", data={"email": "bot@example.org", "stamp": forged})
        assert 'class="one-click"' in fake.text
        for address in ("a@spam.example", "b@mail.spam.example", "c@mailinator.com"):
            refused = client.post("/subscribe", data={"email": address, "stamp": old})
            assert refused.status_code == 400
    assert people(database) == 0
    database.dispose()


def solve(challenge: dict[str, object]) -> str:
    solution = solve_challenge(Challenge.from_dict(challenge))
    assert solution is not None
    return Payload(Challenge.from_dict(challenge), solution).to_base64()


@pytest.mark.slow
def test_challenge_after_the_threshold_and_a_solved_one_passes(
    tmp_path: Path, database_url: str, smtp: SMTPServer
) -> None:
    config = setup(
        tmp_path,
        database_url,
        smtp.port,
        challenge="auto",
        challenge_after=2,
        challenge_cost=100,
    )
    database = open_database(config.database_url)
    old = make_stamp(GuardSettings(secret="test-secret"), datetime.now(UTC) - timedelta(hours=1))
    with TestClient(create_public_app(config, database)) as client:
        for n in range(2):
            client.post("/subscribe", data={"email": f"r{n}@example.org", "stamp": old})
        assert people(database) == 2
        start = client.get("/subscribe/start").json()
        assert start["challenge"] is not None
        blocked = client.post("/subscribe", data={"email": "r2@example.org", "stamp": old})
        assert "altcha-widget" in blocked.text and people(database) == 2
        wrong = base64.b64encode(json.dumps({"challenge": start["challenge"]}).encode()).decode()
        client.post("/subscribe", data={"email": "r2@example.org", "stamp": old, "altcha": wrong})
        assert people(database) == 2
        good = solve(start["challenge"])
        client.post("/subscribe", data={"email": "r2@example.org", "stamp": old, "altcha": good})
        assert people(database) == 3
        # the same solution again, for someone else: spent with the first sign-up
        replay = client.post(
            "/subscribe", data={"email": "r3@example.org", "stamp": old, "altcha": good}
        )
        assert "altcha-widget" in replay.text and people(database) == 3
        fresh = solve(client.get("/subscribe/start").json()["challenge"])
        client.post("/subscribe", data={"email": "r3@example.org", "stamp": old, "altcha": fresh})
        assert people(database) == 4
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(SpentChallenge)) == 2
    database.dispose()


def test_a_challenge_is_spent_once_and_expired_ones_go(tmp_path: Path, database_url: str) -> None:
    """A challenge is spent once (the unique key decides, also between two transactions at
    once); rows past expiry go on the next spend, and only those."""
    database = open_database(database_url)
    now = datetime.now(UTC)
    with database.session() as session:
        assert challenges.spend(session, "a" * 64, now + timedelta(minutes=20), now)
        assert not challenges.spend(session, "a" * 64, now + timedelta(minutes=20), now)
        assert challenges.spend(session, "b" * 64, now + timedelta(minutes=1), now)
    with database.session() as session:  # another transaction: still spent
        assert not challenges.spend(session, "a" * 64, now + timedelta(minutes=20), now)
    # two posts of one answer at once: the first holds its transaction open while the
    # second spends; whichever way they interleave, only the first passes
    second: list[bool] = []
    with database.session() as session:
        assert challenges.spend(session, "d" * 64, now + timedelta(minutes=20), now)

        def other() -> None:
            with database.session() as racing:
                second.append(challenges.spend(racing, "d" * 64, now + timedelta(minutes=20), now))

        thread = threading.Thread(target=other)
        thread.start()
    thread.join(timeout=30)
    assert second == [False]
    later = now + timedelta(minutes=5)  # b expired: removed; a is not
    with database.session() as session:
        assert challenges.spend(session, "c" * 64, later + timedelta(minutes=20), later)
    with database.session() as session:
        keys = set(session.scalars(select(SpentChallenge.key)))
    assert keys == {"a" * 64, "c" * 64, "d" * 64}
    database.dispose()


def test_json_and_cors_for_listed_origins_only(
    tmp_path: Path, database_url: str, smtp: SMTPServer
) -> None:
    config = setup(tmp_path, database_url, smtp.port)
    database = open_database(config.database_url)
    old = make_stamp(GuardSettings(secret="test-secret"), datetime.now(UTC) - timedelta(hours=1))
    json_accept = {"accept": "application/json"}
    with TestClient(create_public_app(config, database)) as client:
        listed = client.get("/subscribe/start", headers={"origin": BLOG, **json_accept})
        assert listed.headers["access-control-allow-origin"] == BLOG
        other = client.get("/subscribe/start", headers={"origin": "https://evil.test"})
        assert "access-control-allow-origin" not in other.headers
        answer = client.post(
            "/subscribe",
            data={"email": "j@example.org", "stamp": old},
            headers={"origin": BLOG, **json_accept},
        )
        assert answer.json() == {"status": "check-inbox"}
        assert answer.headers["access-control-allow-origin"] == BLOG
        unstamped = client.post("/subscribe", data={"email": "k@example.org"}, headers=json_accept)
        assert unstamped.status_code == 202 and unstamped.json()["status"] == "confirm"
    database.dispose()


def test_welcome_once_after_confirming_and_stale_sign_ups_go(
    tmp_path: Path, database_url: str, smtp: SMTPServer
) -> None:
    config = setup(tmp_path, database_url, smtp.port)
    database = open_database(config.database_url)
    old = make_stamp(GuardSettings(secret="test-secret"), datetime.now(UTC) - timedelta(hours=1))
    with TestClient(create_public_app(config, database)) as client:
        client.post("/subscribe", data={"email": "w@example.org", "locale": "en", "stamp": old})
        link = confirm_link(smtp.mailbox.wait_for(1)[0].parsed())
        path = link.removeprefix("https://news.example.com")
        assert client.post(path).status_code == 200
        welcome = smtp.mailbox.wait_for(2)[1].parsed()
        assert client.post(path).status_code == 200  # confirming again: no second welcome
    assert "Welcome to" in str(welcome["Subject"])
    body = welcome.get_body(("plain",))
    assert body is not None and "https://news.example.com/archive/" in body.get_content()
    upkeep(config, database)  # nothing due: the welcome was sent
    with database.session() as session:
        rows = session.scalars(select(Welcome)).all()
        assert [row.status for row in rows] == ["sent"]
        kinds = session.scalars(select(Event.kind).where(Event.kind == "welcome")).all()
        assert kinds == ["welcome"]  # in the reader's history
        session.add(
            Subscriber(
                email="stale@example.org",
                status=Status.PENDING,
                created_at=datetime.now(UTC) - timedelta(days=8),
            )
        )
        session.add(Subscriber(email="fresh@example.org", status=Status.PENDING))
    done = upkeep(config, database)
    assert done.purged == 1
    with database.session() as session:
        left = set(session.scalars(select(Subscriber.email)))
    assert left == {"w@example.org", "fresh@example.org"}
    assert len(smtp.mailbox.messages) == 2
    database.dispose()


class FailingWelcomes:
    """Hands the first message (the confirmation) to the SMTP server and refuses every other
    (the welcome), as a server that went away between the two would."""

    def __init__(self, config: Config) -> None:
        self.inner = SmtpMailer(smtp_settings(config), sender_settings(config), None)
        self.handed = 0

    def send(self, message: EmailMessage) -> None:
        self.handed += 1
        if self.handed > 1:
            raise MailError(f"the SMTP server went away ({message['Subject']})")
        self.inner.send(message)


def test_a_failed_welcome_is_sent_by_the_next_upkeep_once(
    tmp_path: Path, database_url: str, smtp: SMTPServer
) -> None:
    config = setup(tmp_path, database_url, smtp.port)
    database = open_database(config.database_url)
    clock = Clock()
    old = make_stamp(GuardSettings(secret="test-secret"), datetime.now(UTC) - timedelta(hours=1))
    app = create_public_app(config, database, clock=clock, mailer=FailingWelcomes(config))
    with TestClient(app) as client:
        client.post("/subscribe", data={"email": "v@example.org", "locale": "en", "stamp": old})
        path = confirm_link(smtp.mailbox.wait_for(1)[0].parsed())
        assert client.post(path.removeprefix("https://news.example.com")).status_code == 200
    with database.session() as session:
        [row] = session.scalars(select(Welcome)).all()
        assert row.status == "failed"  # the confirmation's answer went; its welcome did not
    assert upkeep(config, database, clock=clock).welcomed == 0  # not due again yet
    clock.advance(minutes=11)
    assert upkeep(config, database, clock=clock).welcomed == 1  # `schedule`, any `send`
    assert upkeep(config, database, clock=clock).welcomed == 0
    clock.advance(days=1)
    assert upkeep(config, database, clock=clock).welcomed == 0  # never twice
    messages = smtp.mailbox.wait_for(2)
    assert [m.rcpt_tos for m in messages] == [["v@example.org"]] * 2
    assert "Welcome to" in str(messages[1].parsed()["Subject"])
    with database.session() as session:
        kinds = session.scalars(select(Event.kind).where(Event.kind == "welcome")).all()
        assert kinds == ["welcome"]
    database.dispose()


def test_no_welcome_when_turned_off(tmp_path: Path, database_url: str, smtp: SMTPServer) -> None:
    config = setup(tmp_path, database_url, smtp.port)
    config = config.model_copy(update={"welcome": False})
    database = open_database(config.database_url)
    old = make_stamp(GuardSettings(secret="test-secret"), datetime.now(UTC) - timedelta(hours=1))
    with TestClient(create_public_app(config, database)) as client:
        client.post("/subscribe", data={"email": "x@example.org", "locale": "en", "stamp": old})
        path = confirm_link(smtp.mailbox.wait_for(1)[0].parsed())
        assert client.post(path.removeprefix("https://news.example.com")).status_code == 200
    upkeep(config, database)
    with database.session() as session:
        assert session.scalars(select(Welcome)).all() == []
        assert session.scalar(select(Subscriber.status)) == Status.ACTIVE
    assert len(smtp.mailbox.messages) == 1  # the confirmation only
    database.dispose()
