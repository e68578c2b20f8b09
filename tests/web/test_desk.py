"""The desk over HTTP (issue 24), on SQLite and PostgreSQL: Starlette's TestClient against the
app `digest serve` runs, with a settable clock.

What must hold: the desk is off until an administrator exists, and refused on a non-loopback
http:// base URL; every /admin route but the explicitly public ones answers 401 or a
redirect to the login without a session (enumerated from the route table, so a new route
cannot be forgotten); every state change needs the desk's Origin and the session's own CSRF
token (403 otherwise); "log out everywhere" ends older sessions; sessions end after their
idle and absolute lifetimes; the cookie is `__Host-`, Secure, HttpOnly, SameSite=Strict on
https (a real TLS server with a trustme CA) and plain on a loopback http:// base URL; a name
like `<script>alert(1)</script>` is inert on every page; an export neutralises formula
cells; search matches quotes, %, _ and backslashes literally; every action is audited.
"""

from __future__ import annotations

import csv
import io
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
import trustme
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from digest.access import admins as access
from digest.config.schema import Config
from digest.store import admins
from digest.store.database import Database
from digest.store.tables import Event, Status, Subscriber
from digest.web.public import create_public_app
from tests.support.browser import loopback_socket, serving
from tests.support.desk import (
    NAME,
    PASSWORD,
    Browser,
    Clock,
    add_admin,
    client,
    csrf_of,
    desk_config,
)
from tests.support.smtp_server import SMTPServer

BASE = "http://127.0.0.1:8080"
# Answered without a session. A route added to the desk is refused without one unless it is
# added here too: this list is the test's own, not read from the code it tests.
PUBLIC = {("/admin/login", "GET"), ("/admin/login", "HEAD"), ("/admin/login", "POST")}
PUBLIC_MOUNTS = {"/admin/static"}
EXAMPLE = {"key": "2026-W48", "id:int": "1", "id": "1"}
XSS = "<script>alert(1)</script>"


@dataclass
class Desk:
    app: Starlette
    config: Config
    database: Database
    clock: Clock
    smtp: SMTPServer

    def client(self, address: str = "127.0.0.1") -> Browser:
        return client(self.app, BASE, address)

    def logged_in(self, address: str = "127.0.0.1") -> Browser:
        browser = self.client(address)
        answer = browser.login()
        assert answer.status_code == 303, answer.text
        return browser


@pytest.fixture
def desk(tmp_path: Path, database_url: str, database: Database) -> Iterator[Desk]:
    with SMTPServer() as smtp:
        config = desk_config(tmp_path, database_url, smtp.port, BASE)
        add_admin(database)
        clock = Clock()
        app = create_public_app(config, database, clock=clock)
        yield Desk(app, config, database, clock, smtp)


def desk_routes(app: Starlette) -> list[tuple[str, str]]:
    """(path, method) of every desk route, example values in the parameters."""
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.path == "/admin"]
    found = []
    for route in mount.routes:
        if isinstance(route, Mount):
            found.append((f"/admin{route.path}/desk.css", "MOUNT"))
            continue
        assert isinstance(route, Route)
        path = route.path
        for name, value in EXAMPLE.items():
            path = path.replace("{" + name + "}", value)
        found += [(f"/admin{path}", method) for method in sorted(route.methods or ())]
    return found


def add_person(database: Database, email: str, name: str = "", **values: object) -> int:
    with database.session() as session:
        person = Subscriber(email=email, name=name, status=Status.ACTIVE, **values)
        session.add(person)
        session.flush()
        return person.id


# -- the door -------------------------------------------------------------------------------------


def test_the_desk_is_off_until_an_administrator_exists(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    with SMTPServer() as smtp:
        config = desk_config(tmp_path, database_url, smtp.port, BASE)
        browser = client(create_public_app(config, database), BASE)
        assert browser.get("/admin/login").status_code == 404
        assert browser.get("/admin/").status_code == 404
        add_admin(database)
        assert browser.get("/admin/login").status_code == 200


def test_refused_on_a_non_loopback_http_base_url(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    with SMTPServer() as smtp:
        config = desk_config(tmp_path, database_url, smtp.port, "http://news.example.com")
        add_admin(database)
        browser = client(create_public_app(config, database), "http://news.example.com")
        answer = browser.get("/admin/login")
        assert answer.status_code == 403
        assert "web.base_url" in answer.text and "https://" in answer.text
        assert browser.login().status_code == 403


def test_every_desk_route_needs_a_session_but_the_public_ones(desk: Desk) -> None:
    browser = desk.client()
    routes = desk_routes(desk.app)
    assert len(routes) > 30
    for path, method in routes:
        if method == "MOUNT":
            prefix = path.rsplit("/", 1)[0]
            assert prefix in PUBLIC_MOUNTS, f"{prefix} is a mount the test does not know"
            assert browser.get(path).status_code == 200
            continue
        if (path, method) in PUBLIC:
            continue
        answer = browser.client.request(method, path, headers={"Origin": BASE})
        if method in ("GET", "HEAD"):
            assert answer.status_code == 303, (path, method, answer.status_code)
            assert answer.headers["location"].startswith("/admin/login?next="), path
        else:
            assert answer.status_code == 401, (path, method, answer.status_code)
    # the public list is not stale: each entry is a route of the desk
    assert set(routes) >= PUBLIC


def test_the_login_returns_only_to_a_page_of_the_desk(desk: Desk) -> None:
    for target, expected in (
        ("/subscribers?q=a", "/admin/subscribers?q=a"),
        ("//evil.example/", "/admin/"),
        ("https://evil.example/", "/admin/"),
        ("/\\evil.example", "/admin/"),
    ):
        answer = desk.client().post(
            "/admin/login",
            {"name": NAME, "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert answer.status_code == 303 and answer.headers["location"] == expected, target


def test_state_changes_need_the_origin_and_the_sessions_own_token(desk: Desk) -> None:
    mine, theirs = desk.logged_in(), desk.logged_in()
    token, foreign = mine.csrf(), theirs.csrf()
    assert token != foreign
    posts = [p for p, m in desk_routes(desk.app) if m == "POST" and (p, m) not in PUBLIC]
    assert "/admin/next/note" in posts and "/admin/logout-everywhere" in posts
    for path in posts:
        for headers, data in (
            ({}, {"csrf": token}),  # no Origin at all
            ({"Origin": "https://evil.example"}, {"csrf": token}),
            ({"Origin": "null"}, {"csrf": token}),
            ({"Origin": BASE}, {}),  # no token
            ({"Origin": BASE}, {"csrf": foreign}),  # another session's token
            ({"Origin": BASE}, {"csrf": token[:-1]}),
        ):
            answer = mine.client.post(path, data=data, headers=headers)
            assert answer.status_code == 403, (path, headers, data, answer.status_code)
    # the same request with both goes through, and the header form of the token does too
    answer = mine.post("/admin/next/note", {"csrf": token, "note": "Hello"})
    assert answer.status_code == 303
    answer = mine.post("/admin/next/note", {"note": "Again"}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 303
    # a cross-site login attempt (login CSRF) is refused before any password is checked
    answer = desk.client().client.post(
        "/admin/login", data={"name": NAME, "password": PASSWORD}, headers={"Origin": "null"}
    )
    assert answer.status_code == 403


def test_log_out_everywhere_refuses_every_earlier_session(desk: Desk) -> None:
    laptop, phone = desk.logged_in(), desk.logged_in("127.0.0.2")
    assert phone.get("/admin/").status_code == 200
    answer = laptop.post("/admin/logout-everywhere", {"csrf": laptop.csrf()})
    assert answer.status_code == 303
    for browser in (laptop, phone):
        assert browser.get("/admin/").status_code == 303
        assert browser.post("/admin/next/note", {"csrf": "x", "note": "n"}).status_code == 401
    again = desk.logged_in()
    assert again.get("/admin/").status_code == 200


def test_sessions_end_after_their_idle_and_absolute_lifetimes(desk: Desk) -> None:
    idle = desk.logged_in()
    desk.clock.advance(seconds=access.IDLE.total_seconds() + 1)
    assert idle.get("/admin/").status_code == 303
    busy = desk.logged_in()
    for _ in range(int(access.ABSOLUTE / (access.IDLE / 2)) - 1):
        desk.clock.advance(seconds=access.IDLE.total_seconds() / 2)
        assert busy.get("/admin/").status_code == 200
    desk.clock.advance(seconds=access.IDLE.total_seconds() / 2 + 1)
    assert busy.get("/admin/").status_code == 303


def test_too_many_failed_logins_answer_429_with_a_doubling_retry_after(desk: Desk) -> None:
    attacker = desk.client("203.0.113.9")
    for _ in range(access.LIMIT):
        assert attacker.login(password="wrong password!").status_code == 401
    answer = attacker.login()
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "60"
    # the owner, elsewhere, still gets in
    assert desk.client("198.51.100.7").login().status_code == 303
    waits = []
    for _ in range(6):
        desk.clock.advance(seconds=int(attacker.login().headers["retry-after"]))
        assert attacker.login(password="wrong again!!").status_code == 401
        waits.append(int(attacker.login().headers["retry-after"]))
    assert waits == [120, 240, 480, 900, 900, 900]


# -- cookies -------------------------------------------------------------------------------------


def test_the_cookie_on_a_loopback_http_base_url(desk: Desk) -> None:
    answer = desk.client().login()
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("digest-desk=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=strict"} <= attributes
    assert "secure" not in attributes


def test_the_cookie_on_https_is_host_prefixed_and_secure(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    chain, key, ca = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.private_key_pem.write_to_path(str(key))
    with chain.open("wb") as out:
        for blob in certificate.cert_chain_pems:
            out.write(blob.bytes())
    authority.cert_pem.write_to_path(str(ca))
    sock = loopback_socket()
    base = f"https://127.0.0.1:{sock.getsockname()[1]}"
    with SMTPServer() as smtp:
        config = desk_config(tmp_path, database_url, smtp.port, base)
        add_admin(database)
        app = create_public_app(config, database)
        trust = ssl.create_default_context(cafile=str(ca))
        with (
            serving(app, tls=(chain, key), sock=sock) as url,
            httpx.Client(base_url=url, verify=trust) as http,
        ):
            answer = http.post(
                "/admin/login",
                data={"name": NAME, "password": PASSWORD},
                headers={"Origin": base},
            )
            assert answer.status_code == 303
            cookie = answer.headers["set-cookie"]
            assert cookie.startswith("__Host-digest-desk=")
            attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
            assert {"secure", "httponly", "path=/", "samesite=strict"} <= attributes
            assert not any(a.startswith("domain=") for a in attributes)
            assert http.get("/admin/").status_code == 200


# -- what pages show ------------------------------------------------------------------------------


def test_a_script_in_a_name_is_inert_on_every_page(desk: Desk) -> None:
    person = add_person(desk.database, "xss@example.com", XSS)
    browser = desk.logged_in()
    token = browser.csrf()
    browser.post("/admin/next/note", {"csrf": token, "note": XSS + " **bold**"})
    pages = [p for p, m in desk_routes(desk.app) if m == "GET" and "progress.json" not in p]
    pages = [p.replace("/subscribers/1", f"/subscribers/{person}") for p in pages]
    pages += ["/admin/subscribers?q=xss", f"/admin/subscribers/{person}"]
    shown = 0
    for path in pages:
        answer = browser.get(path)
        if answer.status_code != 200 or "text/html" not in answer.headers["content-type"]:
            continue
        shown += 1
        assert XSS not in answer.text, path
        policy = answer.headers["Content-Security-Policy"]
        # scripts from the desk's own files only, or none at all (the email preview)
        assert "script-src 'self';" in policy or (
            "default-src 'none'" in policy and "script-src" not in policy
        ), path
    assert shown >= 10
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;" in browser.get(f"/admin/subscribers/{person}").text
    )


def test_the_export_neutralises_formula_cells_and_streams(desk: Desk) -> None:
    for n, name in enumerate(('=HYPERLINK("http://evil")', "+1+2", "-3", "@SUM(A1)", "Plain")):
        add_person(desk.database, f"p{n}@example.com", name)
    answer = desk.logged_in().get("/admin/subscribers/export.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    names = {row[0]: row[1] for row in rows[1:]}
    assert names == {
        "p0@example.com": '\'=HYPERLINK("http://evil")',
        "p1@example.com": "'+1+2",
        "p2@example.com": "'-3",
        "p3@example.com": "'@SUM(A1)",
        "p4@example.com": "Plain",
    }
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_search_takes_every_character_literally(desk: Desk) -> None:
    for email, name in (
        ("o'brien@example.com", "O'Brien"),
        ("100%@example.com", "Percent"),
        ("a_b@example.com", "Under_score"),
        ("axb@example.com", "Not an underscore"),
        ("back\\slash@example.com", 'Say "hi"'),
    ):
        add_person(desk.database, email, name)
    browser = desk.logged_in()

    def found(query: str, match: str) -> set[str]:
        page = browser.get("/admin/subscribers", params={"q": query, "match": match}).text
        return set(re.findall(r'href="/admin/subscribers/\d+">([^<]+)</a>', page))

    assert found("a_", "prefix") == {"a_b@example.com"}
    assert found("100%", "prefix") == {"100%@example.com"}
    assert found("%", "prefix") == set()
    assert found("o&#39;b", "prefix") == set()
    assert found("O'B", "prefix") == {"o&#39;brien@example.com"}
    assert found("back\\", "prefix") == {"back\\slash@example.com"}
    assert found("_", "contains") == {"a_b@example.com"}
    assert found('"hi"', "contains") == {"back\\slash@example.com"}
    assert found("%", "contains") == {"100%@example.com"}


def test_keyset_pages_show_everyone_once(desk: Desk) -> None:
    for n in range(130):
        add_person(desk.database, f"reader{n:03}@example.com")
    browser = desk.logged_in()
    for query in ({}, {"q": "reader", "match": "prefix"}):
        seen: list[str] = []
        url: str | None = "/admin/subscribers"
        params: dict[str, str] | None = query
        while url:
            page = browser.get(url, params=params).text
            seen += re.findall(r'href="/admin/subscribers/\d+">([^<]+)</a>', page)
            found = re.search(r'href="([^"]+)" rel="next"', page)
            url = found.group(1).replace("&amp;", "&") if found else None
            params = None
        assert sorted(seen) == [f"reader{n:03}@example.com" for n in range(130)], query


def test_every_administrative_action_is_an_audit_event(desk: Desk) -> None:
    person = add_person(desk.database, "someone@example.com")
    browser = desk.logged_in("192.0.2.44")
    token = browser.csrf()
    browser.post("/admin/next/note", {"csrf": token, "note": "Hi"})
    browser.post(f"/admin/subscribers/{person}/unsubscribe", {"csrf": token})
    browser.post("/admin/subscribers/add", {"csrf": token, "email": "new@example.com"})
    browser.post("/admin/settings/tokens", {"csrf": token, "name": "zapier", "scope": "read"})
    browser.get("/admin/subscribers/export.csv")
    browser.post("/admin/logout", {"csrf": token})
    with desk.database.session() as session:
        rows = session.execute(
            select(Event.method, Event.actor, Event.ip).where(Event.kind == admins.AUDIT)
        ).all()
    actions = {method for method, actor, ip in rows if actor == NAME and ip == "192.0.2.44"}
    assert {
        "login",
        "note-set",
        "subscriber-unsubscribe",
        "subscriber-add",
        "token-create",
        "subscribers-export",
        "logout",
    } <= actions
    page = desk.logged_in().get("/admin/settings").text
    assert "subscriber-unsubscribe" in page and "192.0.2.44" in page


def test_a_second_factor_once_on_is_asked_for_and_a_code_works_once(desk: Desk) -> None:
    browser = desk.logged_in()
    browser.post("/admin/settings/totp", {"csrf": browser.csrf()})
    page = browser.get("/admin/settings").text
    assert "<svg" in page  # the QR code, drawn here
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert secret is not None
    totp = pyotp.TOTP(secret.group(1))
    wrong = browser.post("/admin/settings/totp/confirm", {"csrf": csrf_of(page), "code": "000000"})
    assert "problem=" in wrong.headers["location"]
    code = totp.at(desk.clock())
    answer = browser.post("/admin/settings/totp/confirm", {"csrf": csrf_of(page), "code": code})
    assert answer.headers["location"].endswith("done=totp-on")
    other = desk.client()
    assert other.login().status_code == 401  # no code
    assert other.login(code=code).status_code == 401  # the code already used
    desk.clock.advance(seconds=30)
    assert other.login(code=totp.at(desk.clock())).status_code == 303
    # a code from long ago is no code
    desk.clock.advance(minutes=5)
    late = desk.client().login(code=totp.at(desk.clock() - timedelta(minutes=3)))
    assert late.status_code == 401


def test_filters_and_what_an_administrator_does_to_one_subscriber(desk: Desk) -> None:
    ann = add_person(desk.database, "ann@example.com", "Ann", locale="en", frequency="daily")
    bo = add_person(desk.database, "bo@example.com", "Bo", locale="zh", categories=["Python"])
    cy = add_person(desk.database, "cy@example.com", "Cy")
    with desk.database.session() as session:
        found = session.get(Subscriber, cy)
        assert found is not None
        found.status = Status.BOUNCED
    browser = desk.logged_in()

    def listed(**query: str) -> set[str]:
        page = browser.get("/admin/subscribers", params=query).text
        return set(re.findall(r'href="/admin/subscribers/\d+">([^<]+)</a>', page))

    assert listed(status="bounced") == {"cy@example.com"}
    assert listed(language="en") == {"ann@example.com"}
    assert listed(language="zh") == {"bo@example.com"}
    # `?locale=` is the desk's own language (its switch links keep the page's query): it
    # filters nobody, and the language filter leaves the desk's language alone
    assert listed(locale="en") == {"ann@example.com", "bo@example.com", "cy@example.com"}
    page = browser.get("/admin/subscribers", params={"language": "zh", "locale": "en"}).text
    assert 'lang="en"' in page and '<option value="zh" selected>' in page
    switch = re.search(r'href="([^"]*locale=zh[^"]*)"', page)  # the desk in Chinese
    assert switch is not None and "language=zh" in switch.group(1)  # keeps the filter
    assert listed(frequency="daily") == {"ann@example.com"}
    # no choice of their own means the schedule's rhythm (weekly here)
    assert listed(frequency="weekly") == {"bo@example.com", "cy@example.com"}
    # no categories chosen means all of them
    assert listed(category="Python") == {"ann@example.com", "bo@example.com", "cy@example.com"}
    assert listed(category="Rust") == {"ann@example.com", "cy@example.com"}

    token = browser.csrf()
    answer = browser.post(f"/admin/subscribers/{cy}/reactivate", {"csrf": token})
    assert answer.headers["location"].endswith("done=reactivate")
    browser.post(f"/admin/subscribers/{ann}/unsubscribe", {"csrf": token})
    refused = browser.post(f"/admin/subscribers/{ann}/reactivate", {"csrf": token})
    shown = browser.get(refused.headers["location"] + "&locale=en").text
    assert "only they can subscribe again" in shown
    # a problem sentence is shown only when the desk made it (signed), never from a link
    forged = browser.get(f"/admin/subscribers/{ann}?problem=Call+us+at+555").text
    assert "Call us at 555" not in forged
    unconfirmed = browser.post(f"/admin/subscribers/{bo}/erase", {"csrf": token})
    assert "problem=" in unconfirmed.headers["location"]
    erased = browser.post(f"/admin/subscribers/{bo}/erase", {"csrf": token, "confirm": "yes"})
    assert erased.headers["location"].endswith("done=erased")
    assert browser.get(f"/admin/subscribers/{bo}").status_code == 404
    assert "bo@example.com" not in listed()
    again = browser.post("/admin/subscribers/add", {"csrf": token, "email": "BO@example.com"})
    assert "erased" in browser.get(again.headers["location"] + "&locale=en").text
    with desk.database.session() as session:
        statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert statuses["cy@example.com"] == "active" and statuses["ann@example.com"] == "unsubscribed"


def test_returned_mail_and_the_warnings_that_need_the_owner(desk: Desk) -> None:
    from digest.store.tables import Delivery, Issue, IssueStatus, ReturnedMail

    person = add_person(desk.database, "dee@example.com")
    with desk.database.session() as session:
        issue = Issue(key="2026-W48", status=IssueStatus.FINISHED, posts=[])
        session.add(issue)
        session.flush()
        session.add(Delivery(issue_id=issue.id, subscriber_id=person, status="unknown"))
        session.add(
            ReturnedMail(key="n1", kind="notice", source="mail", reason="Delivery delayed?")
        )
        session.add(
            ReturnedMail(
                key="h1",
                kind="hard",
                source="mail",
                subscriber_id=person,
                issue_id=issue.id,
                reason="550 5.1.1 no such user",
            )
        )
    browser = desk.logged_in()
    overview = browser.get("/admin/?locale=en").text
    assert "Issue 2026-W48 has 0 deferred and 1 unknown deliveries." in overview
    assert "1 returned messages of the last 30 days could not be classified." in overview
    unclassified = browser.get("/admin/returned?kind=notice&locale=en").text
    assert "Delivery delayed?" in unclassified and "550 5.1.1" not in unclassified
    everything = browser.get("/admin/returned?locale=en").text
    assert "550 5.1.1 no such user" in everything and "dee@example.com" in everything
    issue_page = browser.get("/admin/issues/2026-W48?locale=en").text
    assert "Send the unknown ones again" in issue_page
    assert "550 5.1.1 no such user" in issue_page
