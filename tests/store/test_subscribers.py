"""Subscribers: addresses, CSV import/export with bad rows, consent and never re-activating."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.audience.addresses import InvalidAddress, mask, normalise_email
from digest.audience.csvfile import ImportReport, export_csv, read_csv
from digest.errors import DigestError
from digest.store.database import Database
from digest.store.subscribers import add, find, import_rows, listing, resubscribe, unsubscribe
from digest.store.tables import Event, Status, Subscriber
from tests.support import paths

EXAMPLE = paths.ROOT / "subscribers" / "example.csv"


def test_normalise_lowercases_the_domain_only() -> None:
    assert normalise_email("  Zhang.Wei@Example.COM ") == "Zhang.Wei@example.com"
    assert normalise_email("用户@例子.广告") == "用户@例子.广告"
    for bad in ["", "no-at-sign", "a@", "@b.com", "a b@c.com", "a@b.com\r\nBcc: x@y.com"]:
        with pytest.raises(InvalidAddress):
            normalise_email(bad)


def test_mask() -> None:
    assert mask("zhang.wei@example.com") == "z******i@example.com"
    assert mask("ab@example.com") == "a*@example.com"


def import_file(database: Database, path: Path) -> ImportReport:
    rows, problems = read_csv(path)
    report = ImportReport(problems=problems)
    with database.session() as session:
        import_rows(session, rows, report)
    return report


def test_example_csv_imports_cleanly_and_idempotently(database: Database) -> None:
    first = import_file(database, EXAMPLE)
    assert first.problems == [] and first.added >= 30
    second = import_file(database, EXAMPLE)
    assert second.added == 0 and second.updated == 0 and second.unchanged == first.added
    with database.session() as session:
        people = listing(session)
        assert len(people) == first.added
        assert {s.locale for s in people} >= {"zh", "en"}
        assert any(s.name == "张伟" for s in people)
        assert sum(s.status == Status.UNSUBSCRIBED for s in people) == 1


def test_bad_rows_are_named_and_good_rows_imported(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(
        "email,name,locale,categories,status\n"  # line 1
        "good@example.com,好人,zh,Python;机器学习,active\n"  # 2
        "not-an-address,Bad,en,,active\n"  # 3
        "GOOD@EXAMPLE.com,Dup,zh,,active\n".encode()  # 4: the same address in another case
        + b"good@example.com,Again,zh,,active\n"  # 5: duplicate of line 2
        + b"short@example.com,Short\n"  # 6: missing columns
        + b"gbk@example.com,"
        + "王芳".encode("gbk")
        + b",zh,,active\n"  # 7: not UTF-8
        + b"wrong@example.com,W,fr,,active\n"  # 8: bad locale
        + b"state@example.com,S,en,,sleeping\n"  # 9: bad status
        + b"\n"  # 10: blank line, ignored
        + b"last@example.org,Last,en,,\n"  # 11
    )
    report = import_file(database, path)
    problems = "\n".join(report.problems)
    assert f"{path}, line 3: 'not-an-address' is not a valid address" in problems
    assert f"{path}, line 4: GOOD@example.com repeats line 2" in problems
    assert f"{path}, line 5: good@example.com repeats line 2" in problems
    assert f"{path}, line 6: missing column locale, categories, status" in problems
    assert f"{path}, line 7: not valid UTF-8" in problems
    assert f"{path}, line 8: locale 'fr' is not one of zh, en" in problems
    assert f"{path}, line 9: status 'sleeping' is not one of" in problems
    assert len(report.problems) == 7
    assert report.added == 2
    with database.session() as session:
        emails = {s.email for s in listing(session)}
        good = session.scalars(
            select(Subscriber).where(Subscriber.email == "good@example.com")
        ).one()
        assert good.categories == ["Python", "机器学习"] and good.name == "好人"
        assert good.consent_source == "import" and good.consent_at is not None
    assert emails == {"good@example.com", "last@example.org"}


def test_header_without_email_column_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("name,locale\nA,zh\n", "utf-8")
    with pytest.raises(DigestError, match=r"line 1: the header has no email column"):
        read_csv(path)


def test_import_never_reactivates_the_suppressed(database: Database, tmp_path: Path) -> None:
    with database.session() as session:
        gone = add(session, "gone@example.com", name="Gone")
        unsubscribe(session, gone, "link")
    path = tmp_path / "again.csv"
    path.write_text("email,status\ngone@example.com,active\n", "utf-8")
    import_file(database, path)
    with database.session() as session:
        assert session.scalars(select(Subscriber)).one().status == Status.UNSUBSCRIBED
        with pytest.raises(DigestError, match="only they can subscribe again"):
            add(session, "gone@example.com")


def test_import_can_suppress(database: Database, tmp_path: Path) -> None:
    with database.session() as session:
        add(session, "bouncy@example.com")
    path = tmp_path / "bounces.csv"
    path.write_text("email,status\nbouncy@example.com,bounced\n", "utf-8")
    assert import_file(database, path).updated == 1
    with database.session() as session:
        assert session.scalars(select(Subscriber)).one().status == Status.BOUNCED


def test_export_round_trips(database: Database, tmp_path: Path) -> None:
    import_file(database, EXAMPLE)
    out = io.StringIO()
    with database.session() as session:
        count = export_csv(listing(session), out)
    exported = tmp_path / "out.csv"
    exported.write_text(out.getvalue(), "utf-8")
    rows, problems = read_csv(exported)
    original, _ = read_csv(EXAMPLE)
    assert problems == [] and count == len(original)
    assert {(r.email, r.name, r.locale, tuple(r.categories or ()), r.status) for r in rows} == {
        (r.email, r.name, r.locale, tuple(r.categories or ()), r.status) for r in original
    }


def test_unsubscribe_is_idempotent_and_recorded(database: Database) -> None:
    with database.session() as session:
        person = add(session, "p@example.com")
        assert unsubscribe(session, person, "one-click", ip="127.0.0.1") is True
        assert unsubscribe(session, person, "one-click") is False
        assert resubscribe(session, person, "preferences") is True
    with database.session() as session:
        kinds = [(e.kind, e.method) for e in session.scalars(select(Event).order_by(Event.id))]
    assert kinds == [
        ("subscribe", "cli"),
        ("unsubscribe", "one-click"),
        ("resubscribe", "preferences"),
    ]


def test_insert_many_adds_every_row_in_batches(database: Database) -> None:
    from digest.store.subscribers import insert_many

    people = ((f"bulk{n}@example.com", f"Bulk {n}", "en" if n % 2 else None) for n in range(25))
    with database.transaction() as connection:
        assert insert_many(connection, people, batch=10) == 25
    with database.session() as session:
        rows = session.scalars(select(Subscriber).order_by(Subscriber.id)).all()
        assert [r.email for r in rows] == [f"bulk{n}@example.com" for n in range(25)]
        assert {r.status for r in rows} == {Status.ACTIVE}
        assert [r.locale for r in rows[:2]] == [None, "en"]
        assert find(session, "BULK7@Example.com") is not None  # compared as any other address
        assert len({r.token_key for r in rows}) == 25  # each its own link key
        assert session.scalars(select(Event)).all() == []  # no events: the caller vouches
