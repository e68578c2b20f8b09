"""The HTTP API over HTTP (issue 23), on SQLite and PostgreSQL: Starlette's TestClient (httpx)
against the app `digest serve` runs, confirmation mails delivered to a real SMTP server on
127.0.0.1, tokens made as `digest admin token create` makes them.

What must hold: every /api route but the explicitly public ones refuses a request without a
valid token; an upsert is 201 then 200, never 409; a new address gets exactly one
confirmation mail, and a pending one again only after a day; `confirmed: true` needs a token
made with --allow-confirmed; nobody who left is brought back; an erased address is 410; a
read token cannot write; limits answer 429 with Retry-After; errors are JSON; the reports are
`digest report --json`'s; the feed hands out every event once while events keep coming.
"""

from __future__ import annotations

import random
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from digest.access import tokens
from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.delivery.mailer import SmtpMailer
from digest.models import Edition, Post
from digest.store import events as event_log
from digest.store import ledger
from digest.store import subscribers as people
from digest.store.database import Database
from digest.store.tables import ApiToken, Delivery, Event, IssueStatus, Status, Subscriber
from digest.web.api.limits import TokenLimiter
from digest.web.public import create_public_app
from tests.issues.test_send import write_config
from tests.support.smtp_server import SMTPServer
from tests.web.test_public_web import Clock, confirm_link

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

# Answered without a token. A route added to the API is refused without one unless it is
# added here too: this list is the test's own, not read from the code it tests.
PUBLIC = {("/api/v1/openapi.json", "GET"), ("/api/v1/openapi.json", "HEAD")}
EXAMPLE_PARAMS = {"email": "reader@example.com", "key": "2026-W48"}


class Ticks:
    """A monotonic clock for the per-token limiter that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    client: TestClient
    app: Starlette
    config: Config
    config_path: Path
    database: Database
    smtp: SMTPServer
    clock: Clock
    ticks: Ticks
    write: str
    read: str
    vouch: str

    def call(self, method: str, path: str, token: str | None, **options: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.request(method, f"/api/v1{path}", headers=headers, **options)

    def put(self, email: str, token: str | None = None, **body: Any) -> Any:
        return self.call("PUT", f"/subscribers/{email}", token or self.write, json=body)

    def person(self, email: str) -> Subscriber:
        with self.database.session() as session:
            found = people.find(session, email)
            assert found is not None
            return found


@pytest.fixture
def api(tmp_path: Path, database: Database, database_url: str) -> Iterator[Api]:
    with SMTPServer() as smtp:
        path = write_config(tmp_path, database_url, smtp.port)
        environ = {"DIGEST_WEB__CONFIRM_LIMIT_PER_IP": "4"}
        config = load_config(path, environ=environ)
        clock, ticks = Clock(), Ticks()
        with database.session() as session:
            write = tokens.create(session, "form", scope="write")
            read = tokens.create(session, "dashboard", scope="read")
            vouch = tokens.create(session, "crm", scope="write", allow_confirmed=True)
        app = create_public_app(
            config,
            database,
            clock=clock,
            mailer=SmtpMailer(
                smtp_settings(config), sender_settings(config), dkim_settings(config)
            ),
            api_limiter=TokenLimiter(clock=ticks),
        )
        with TestClient(app, follow_redirects=False) as client:
            yield Api(client, app, config, path, database, smtp, clock, ticks, write, read, vouch)


def found(session: Session, email: str) -> Subscriber:
    person = people.find(session, email)
    assert person is not None
    return person


def api_routes(app: Starlette) -> list[tuple[str, str]]:
    """Every (path, method) of the API, read from the app's own route table."""
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.path == "/api/v1"]
    found = []
    for route in mount.routes:
        assert isinstance(route, Route)
        path = route.path
        for name, value in EXAMPLE_PARAMS.items():
            path = path.replace("{" + name + "}", value)
        found += [(f"/api/v1{path}", method) for method in sorted(route.methods or ())]
    return found


# -- tokens --------------------------------------------------------------------------------------


def test_every_api_route_needs_a_token_but_the_public_ones(api: Api) -> None:
    routes = api_routes(api.app)
    assert len(routes) >= 14 and set(routes) >= PUBLIC  # the public ones exist
    with api.database.session() as session:
        revoked = tokens.create(session, "old", scope="write")
        tokens.revoke(session, "old")
    for path, method in routes:
        if (path, method) in PUBLIC:
            assert api.client.request(method, path).status_code == 200, path
            continue
        for token in (None, "dgt_not-a-token", revoked, api.write.upper()):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answer = api.client.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, token, answer.text)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            if method != "HEAD":
                assert answer.json()["error"]["code"] == "unauthorized"
    with api.database.session() as session:  # no refused request touched a subscriber
        assert session.scalars(select(Subscriber)).all() == []


def test_a_token_is_stored_hashed_its_use_recorded_and_revocable(api: Api) -> None:
    with api.database.session() as session:
        stored = session.scalars(select(ApiToken).where(ApiToken.name == "form")).one()
        assert api.write not in (stored.secret_hash, stored.hint) and stored.last_used_at is None
    assert api.call("GET", "/subscribers", api.write).status_code == 200
    with api.database.session() as session:
        used = session.scalars(select(ApiToken).where(ApiToken.name == "form")).one()
        assert used.last_used_at is not None
        tokens.revoke(session, "form")
    assert api.call("GET", "/subscribers", api.write).status_code == 401  # at once


def test_a_read_token_cannot_write(api: Api) -> None:
    with api.database.session() as session:
        people.add(session, "reader@example.com")
    assert api.call("GET", "/subscribers/reader@example.com", api.read).status_code == 200
    for method, extra in (("PUT", {"json": {"name": "X"}}), ("DELETE", {})):
        answer = api.call(method, "/subscribers/reader@example.com", api.read, **extra)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    assert api.put("new@example.com", api.read).status_code == 403
    person = api.person("reader@example.com")
    assert (person.status, person.name) == (Status.ACTIVE, "")
    assert api.smtp.mailbox.recipients() == []


def test_a_token_over_its_requests_a_minute_gets_429_with_retry_after(api: Api) -> None:
    with api.database.session() as session:
        busy = tokens.create(session, "busy", scope="read", per_minute=3)
    answers = [api.call("GET", "/events", busy).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    refused = api.call("GET", "/events", busy)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert api.call("GET", "/events", api.read).status_code == 200  # per token
    api.ticks.now += int(refused.headers["Retry-After"])
    assert api.call("GET", "/events", busy).status_code == 200


# -- upsert --------------------------------------------------------------------------------------


def test_an_upsert_is_201_then_200_with_exactly_one_confirmation_mail(api: Api) -> None:
    first = api.put("Ann@Example.com", name="Ann", locale="en", categories=["Python"])
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["created"] and body["confirmation_sent"]
    assert body["subscriber"]["status"] == "pending"  # double opt-in holds
    again = api.put("ann@EXAMPLE.com", name="Ann Lee")
    assert again.status_code == 200 and not again.json()["created"]
    assert again.json()["subscriber"]["name"] == "Ann Lee"
    assert again.json()["confirmation_sent"] is False  # at most once a day
    assert api.smtp.mailbox.recipients() == ["Ann@example.com"]
    message = api.smtp.mailbox.messages[0].parsed()
    assert "Confirm your subscription" in str(message["Subject"])
    # the mail's link confirms them, as the sign-up form's does
    api.client.post(urlsplit(confirm_link(message)).path)
    confirmed = api.person("ann@example.com")
    assert (confirmed.status, confirmed.consent_source) == (Status.ACTIVE, "web")
    assert api.put("ann@example.com").status_code == 200
    mails = api.smtp.mailbox.wait_for(2)  # the confirmation, then the welcome: no other
    assert "Welcome to" in str(mails[1].parsed()["Subject"]) and len(mails) == 2


def test_a_pending_address_gets_the_mail_again_only_after_a_day(api: Api) -> None:
    api.put("ben@example.com")
    api.clock.advance(hours=23)
    assert api.put("ben@example.com").json()["confirmation_sent"] is False
    api.clock.advance(hours=2)
    assert api.put("ben@example.com").json()["confirmation_sent"] is True
    assert api.smtp.mailbox.recipients() == ["ben@example.com", "ben@example.com"]


def test_confirmed_needs_a_token_made_with_allow_confirmed(api: Api) -> None:
    refused = api.put("cy@example.com", confirmed=True)
    assert refused.status_code == 403 and "allow-confirmed" in refused.json()["error"]["message"]
    with api.database.session() as session:
        assert people.find(session, "cy@example.com") is None  # nothing written
    vouched = api.put("cy@example.com", api.vouch, confirmed=True, name="Cy")
    assert vouched.status_code == 201 and vouched.json()["subscriber"]["status"] == "active"
    person = api.person("cy@example.com")
    assert person.consent_source == "token:crm" and person.consent_at is not None
    with api.database.session() as session:
        logged = session.scalars(select(Event).where(Event.subscriber_id == person.id)).all()
        assert [(e.kind, e.method, e.actor) for e in logged] == [("subscribe", "api", "token:crm")]
    assert api.smtp.mailbox.recipients() == []  # nothing to confirm


@pytest.mark.parametrize("status", [Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED])
def test_nobody_who_left_is_brought_back(api: Api, status: Status) -> None:
    with api.database.session() as session:
        person = people.add(session, "dee@example.com")
        if status == Status.UNSUBSCRIBED:
            people.unsubscribe(session, person, "one-click")
        else:
            person.status = status
            kind = "bounce" if status == Status.BOUNCED else "complaint"
            event_log.append(session, kind, "smtp", subscriber_id=person.id, detail="550")
    for token in (api.write, api.vouch):
        answer = api.put("dee@example.com", token, confirmed=token == api.vouch, name="Dee")
        assert answer.status_code == 200, answer.text
        shown = answer.json()["subscriber"]
        assert shown["status"] == status.value and shown["reason"]["kind"] in (
            "unsubscribe",
            "bounce",
            "complaint",
        )
        assert "their choice stands" in answer.json()["note"]
    assert api.person("dee@example.com").status == status
    assert api.smtp.mailbox.recipients() == []


def test_delete_unsubscribes_with_method_api_and_erase_erases(api: Api) -> None:
    with api.database.session() as session:
        people.add(session, "eve@example.com")
        people.add(session, "fay@example.com")
    gone = api.call("DELETE", "/subscribers/eve@example.com", api.write)
    assert gone.status_code == 200 and gone.json()["changed"] is True
    assert gone.json()["subscriber"]["status"] == "unsubscribed"
    assert gone.json()["subscriber"]["reason"]["method"] == "api"
    assert api.call("DELETE", "/subscribers/eve@example.com", api.write).json()["changed"] is False
    erased = api.call("DELETE", "/subscribers/fay@example.com?erase=true", api.write)
    assert erased.status_code == 200 and erased.json() == {
        "subscriber": None,
        "changed": True,
        "erased": True,
    }
    assert api.call("DELETE", "/subscribers/nobody@example.com", api.write).status_code == 404


def test_an_erased_address_answers_410(api: Api) -> None:
    with api.database.session() as session:
        people.erase(session, people.add(session, "gil@example.com"))
    for method, token in (("PUT", api.vouch), ("GET", api.read), ("DELETE", api.write)):
        body = {"json": {"confirmed": True}} if method == "PUT" else {}
        answer = api.call(method, "/subscribers/Gil@example.com", token, **body)
        assert answer.status_code == 410, (method, answer.text)
        assert answer.json()["error"]["code"] == "gone"
    with api.database.session() as session:
        assert people.find(session, "gil@example.com") is None
    assert api.smtp.mailbox.recipients() == []


def test_the_sign_up_forms_per_ip_limit_applies(api: Api) -> None:
    """web.confirm_limit_per_ip is 4 here: the fifth new address from one IP in an hour is
    refused (nothing written, nothing sent) with the time until the next is allowed."""
    for n in range(4):
        assert api.put(f"p{n}@example.com").status_code == 201
    refused = api.put("p4@example.com")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "signup_limited"
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
    with api.database.session() as session:
        assert people.find(session, "p4@example.com") is None
    assert len(api.smtp.mailbox.messages) == 4
    # the form counts the API's mails and the API the form's: the same events
    api.clock.advance(minutes=61)
    assert api.put("p4@example.com").status_code == 201
    # vouched-for consent sends no mail, so it is not a sign-up to limit
    for n in range(5, 10):
        assert api.put(f"p{n}@example.com", api.vouch, confirmed=True).status_code == 201


# -- errors --------------------------------------------------------------------------------------


def test_errors_are_json_with_their_status(api: Api) -> None:
    cases: list[tuple[tuple[str, str, dict[str, Any]], int, str]] = [
        (("GET", "/nothing-here", {}), 404, "not_found"),
        (("PATCH", "/subscribers/a@example.com", {}), 405, "method_not_allowed"),
        (("GET", "/subscribers/not-an-address", {}), 422, "invalid"),
        (("GET", "/subscribers?limit=0", {}), 422, "invalid"),
        (("GET", "/subscribers?after=-1", {}), 422, "invalid"),
        (("GET", "/subscribers?q=%00", {}), 422, "invalid"),
        (("PUT", "/subscribers/a@example.com", {"content": b"{not json"}), 400, "bad_request"),
        (("PUT", "/subscribers/a@example.com", {"json": {"locale": "fr"}}), 422, "invalid"),
        (("PUT", "/subscribers/a@example.com", {"json": {"colour": "red"}}), 422, "invalid"),
        (("PUT", "/subscribers/a@example.com", {"json": {"name": "a\x00b"}}), 422, "invalid"),
        (("PUT", "/subscribers/a@example.com", {"content": b" " * 20000}), 413, "too_large"),
        (("GET", "/issues/2099-W01", {}), 404, "not_found"),
    ]
    for (method, path, options), status, code in cases:
        answer = api.call(method, path, api.write, **options)
        assert answer.status_code == status, (method, path, answer.text)
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"]["code"] == code
        assert answer.json()["error"]["message"]


# -- reading -------------------------------------------------------------------------------------


def test_the_list_filters_and_pages_with_a_cursor(api: Api) -> None:
    with api.database.session() as session:
        for n in range(7):
            people.add(
                session,
                f"r{n}@example.com",
                name=f"Reader {n}" if n != 3 else "50%_off\\deal",
                locale="zh" if n % 2 else "en",
                categories=["Python"] if n < 3 else (["Rust"] if n < 5 else None),
            )
        people.unsubscribe(session, found(session, "r6@example.com"), "cli")

    def emails(query: str) -> list[str]:
        seen, after = [], 0
        while True:
            page = api.call("GET", f"/subscribers?limit=2&after={after}&{query}", api.read)
            assert page.status_code == 200, page.text
            seen += [s["email"] for s in page.json()["data"]]
            if page.json()["next_after"] is None:
                return seen
            after = page.json()["next_after"]

    assert emails("") == [f"r{n}@example.com" for n in range(7)]
    assert emails("status=unsubscribed") == ["r6@example.com"]
    assert emails("locale=zh") == ["r1@example.com", "r3@example.com", "r5@example.com"]
    # Python's readers, and those who chose no category (they receive every one)
    assert emails("category=Python") == [
        "r0@example.com",
        "r1@example.com",
        "r2@example.com",
        "r5@example.com",
        "r6@example.com",
    ]
    assert emails("q=%25_OFF%5C") == ["r3@example.com"]  # literal %, _ and \, any case
    assert emails("q=_") == ["r3@example.com"]
    assert emails("q=R5%40") == ["r5@example.com"]


def make_issue(database: Database) -> int:
    post = Post(id="a.md", title="A", url="https://blog.example.com/a/", date=None, body="Text.")
    with database.session() as session:
        for n in range(3):
            people.add(session, f"i{n}@example.com")
        issue = ledger.create_issue(
            session,
            Edition(key="2026-W48", date=datetime(2026, 11, 23, tzinfo=UTC), posts=(post,)),
            frequency="weekly",
            default_frequency="weekly",
        )
        rows = session.scalars(select(Delivery).where(Delivery.issue_id == issue.id)).all()
        rows[0].status, rows[1].status = "sent", "failed"
        people.unsubscribe(
            session, found(session, "i0@example.com"), "one-click", issue_id=issue.id
        )
        ledger.set_status(session, issue.id, IssueStatus.FINISHED, None)
        return issue.id


def test_an_issues_report_has_the_numbers_of_digest_report_json(api: Api) -> None:
    import json

    issue_id = make_issue(api.database)
    ours = api.call("GET", "/issues/2026-W48", api.read).json()
    result = CliRunner().invoke(
        main, ["--config", str(api.config_path), "report", "2026-W48", "--json"]
    )
    assert result.exit_code == 0, result.output
    theirs = json.loads(result.stdout)
    assert ours.pop("id") == issue_id
    for report in (ours, theirs):
        report["created_at"] = datetime.fromisoformat(report["created_at"])
    assert ours == theirs
    assert ours["deliveries"] == {"sent": 1, "failed": 1, "queued": 1}
    assert ours["unsubscribes"] == {"one-click": 1}
    listed = api.call("GET", "/issues", api.read).json()
    assert [i["key"] for i in listed["data"]] == ["2026-W48"] and listed["next_before"] is None


def test_the_next_issue_holds_what_digest_posts_shows(api: Api) -> None:
    import json

    ours = api.call("GET", "/next-issue", api.read).json()
    result = CliRunner().invoke(main, ["--config", str(api.config_path), "posts", "--json"])
    theirs = json.loads(result.stdout)
    assert ours["posts"] and [p["id"] for p in ours["posts"]] == [
        p["id"] for p in theirs if p["shown"]
    ]
    assert [p["id"] for p in ours["more"]] == [p["id"] for p in theirs if not p["shown"]]
    assert [p["excerpt"] for p in ours["posts"]] == [p["excerpt"] for p in theirs if p["shown"]]


def test_the_feed_gives_every_event_once_while_events_arrive(api: Api) -> None:
    """Three writers add events (holding their transactions open a moment after taking ids,
    so that on PostgreSQL a later id often commits first) while a client pages the feed over
    HTTP, five at a time; then it reads to the end. Every event is seen exactly once."""
    stop = threading.Event()

    def writer(seed: int) -> None:
        chance = random.Random(seed)
        for n in range(30):
            session = api.database.sessions()
            session.begin()
            person = people.add(session, f"w{seed}-{n}@example.com")  # a subscribe event
            if n % 3 == 0:
                people.unsubscribe(session, person, "api")
            session.flush()
            time.sleep(chance.random() * 0.01)
            session.commit()
            session.close()

    seen: list[int] = []
    cursor = 0

    def page() -> int:
        nonlocal cursor
        answer = api.call("GET", f"/events?after={cursor}&limit=5", api.read)
        assert answer.status_code == 200, answer.text
        ids = [e["id"] for e in answer.json()["data"]]
        seen.extend(ids)
        cursor = answer.json()["next_after"]
        return len(ids)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in writers:
        thread.start()
    while any(thread.is_alive() for thread in writers):
        page()
    for thread in writers:
        thread.join()
    stop.set()
    while page():
        pass
    with api.database.session() as session:
        everything = [p for p in session.scalars(select(Event.position)) if p is not None]
    assert len(everything) == 3 * (30 + 10)
    assert seen == sorted(everything)  # each once, in order


def test_the_readmes_calls_through_uvicorn_on_loopback(api: Api) -> None:
    """The README's curl session, over a real socket to the app `digest serve` runs."""
    import httpx

    from tests.support.browser import serving

    auth = {"Authorization": f"Bearer {api.write}"}
    with serving(api.app) as base, httpx.Client(base_url=f"{base}/api/v1") as http:
        assert http.get("/subscribers").status_code == 401
        added = http.put(
            "/subscribers/ann@example.com",
            headers=auth,
            json={"name": "Ann", "locale": "en", "categories": ["Python"]},
        )
        assert added.status_code == 201 and added.json()["subscriber"]["status"] == "pending"
        listed = http.get("/subscribers", headers=auth, params={"status": "pending"})
        assert [s["email"] for s in listed.json()["data"]] == ["ann@example.com"]
        assert http.delete("/subscribers/ann@example.com", headers=auth).status_code == 200
        kinds = [e["kind"] for e in http.get("/events?after=0", headers=auth).json()["data"]]
        assert kinds == ["confirm-mail", "unsubscribe"]
        assert http.get("/openapi.json").json()["openapi"] == "3.1.0"
    assert api.smtp.mailbox.recipients() == ["ann@example.com"]
