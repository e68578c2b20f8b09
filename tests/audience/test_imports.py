"""`digest subscribers import` of other services' exports (issue 23): Mailchimp, Substack,
Buttondown, listmonk and Ghost, each from a fixture in the shape that service's export has
(tests/fixtures/imports/), each with bad lines that must be named while the rest imports.

What is checked for each: the format is recognised and said, the right people arrive with the
right status (nobody who left there receives anything here), their consent time is the one
the export gave (or when they subscribed there), tags become categories, rows the service
marked as spam, deleted or disabled are left out and named, and the exit code is 1 because a
line was bad.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from digest.audience.imports import listed, when
from digest.cli import main
from digest.store.database import open_database
from digest.store.tables import Event, Subscriber
from tests.support import paths

ROOT = paths.ROOT
FIXTURES = paths.TESTS / "fixtures" / "imports"


def cli(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["--config", str(ROOT / "config.yaml"), *args],
        env={"DIGEST_DATABASE__URL": database_url},
    )


def people(database_url: str) -> dict[str, dict[str, Any]]:
    database = open_database(database_url)
    with database.session() as session:
        found = {
            s.email: {
                "name": s.name,
                "status": s.status,
                "categories": s.categories,
                "consent_at": s.consent_at,
                "consent_ip": s.consent_ip,
                "source": s.consent_source,
            }
            for s in session.scalars(select(Subscriber))
        }
    database.dispose()
    return found


def at(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def imported(database_url: str, name: str, format_title: str, bad: dict[int, str]) -> Result:
    result = cli(database_url, "subscribers", "import", str(FIXTURES / name))
    assert result.exit_code == 1, result.output  # a bad line: 1, the rest imported
    assert f"recognised a {format_title} export" in result.stderr
    for line, why in bad.items():
        assert f"{name}, line {line}: {why}" in " ".join(result.stderr.split()), result.stderr
    return result


def test_mailchimp_subscribed_unsubscribed_and_cleaned_exports(database_url: str) -> None:
    imported(
        database_url,
        "mailchimp_subscribed.csv",
        "Mailchimp",
        {4: "'not-an-address' is not a valid address", 5: "OPTIN_TIME 'someday' is not a date"},
    )
    for name in ("mailchimp_unsubscribed.csv", "mailchimp_cleaned.csv"):
        result = cli(database_url, "subscribers", "import", str(FIXTURES / name))
        assert result.exit_code == 0, result.output
    found = people(database_url)
    assert found == {
        "ann@example.com": {
            "name": "Ann Lee",
            "status": "active",
            "categories": ["Python", "Rust"],
            "consent_at": at(2021, 3, 4, 5, 10, 0),  # the confirmation, not the opt-in
            "consent_ip": "198.51.100.7",
            "source": "import:mailchimp",
        },
        "bob@example.org": {
            "name": "Bob",
            "status": "active",
            "categories": None,
            "consent_at": at(2019, 12, 31, 23, 59, 59),  # opt-in only (single opt-in)
            "consent_ip": None,
            "source": "import:mailchimp",
        },
        "dee@example.com": {
            "name": "Dee",
            "status": "unsubscribed",
            "categories": ["Python"],
            "consent_at": None,
            "consent_ip": None,
            "source": "import:mailchimp",
        },
        "eve@example.com": {
            "name": "Eve",
            "status": "bounced",  # cleaned: Mailchimp's hard bounces
            "categories": ["Editors"],
            "consent_at": None,
            "consent_ip": None,
            "source": "import:mailchimp",
        },
    }


def test_substack_email_list(database_url: str) -> None:
    result = imported(
        database_url,
        "substack.csv",
        "Substack",
        {5: "email_disabled 'maybe' is neither true nor false"},
    )
    assert "substack.csv, line 4: a Substack deletion request, left out" in result.stderr
    assert "1 left out" in result.stdout
    found = people(database_url)
    assert {e: (p["status"], p["consent_at"]) for e, p in found.items()} == {
        "ann@example.com": ("active", at(2020, 7, 7, 21, 23, 16, micro=83000)),
        "bob@example.org": ("unsubscribed", None),  # turned Substack's emails off
    }


def test_buttondown_export(database_url: str) -> None:
    result = imported(
        database_url,
        "buttondown.csv",
        "Buttondown",
        {7: "type 'vip' is not a Buttondown type"},
    )
    assert "buttondown.csv, line 5: Buttondown marked it 'spammy', left out" in result.stderr
    found = people(database_url)
    assert {e: (p["status"], p["consent_at"], p["categories"]) for e, p in found.items()} == {
        "ann@example.com": ("active", at(2022, 5, 6, 7, 8, 9, micro=123456), ["Python", "Rust"]),
        "bob@example.org": ("unsubscribed", None, None),
        "cy@example.net": ("pending", None, None),  # never confirmed there: nothing here
        "eve@example.com": ("bounced", None, None),
    }
    assert found["ann@example.com"]["consent_ip"] == "198.51.100.9"


def test_listmonk_export(database_url: str) -> None:
    result = imported(
        database_url, "listmonk.csv", "listmonk", {5: "attributes '{not json}' is not JSON"}
    )
    assert "listmonk.csv, line 4: disabled in listmonk, left out" in result.stderr
    found = people(database_url)
    assert {e: (p["name"], p["status"], p["consent_at"]) for e, p in found.items()} == {
        # Go's time format with an offset: 11:01:31.478677 +0530 is 05:31:31.478677 UTC
        "ann@example.com": ("Ann Lee", "active", at(2024, 7, 29, 5, 31, 31, micro=478677)),
        "bob@example.org": ("Bob", "unsubscribed", None),  # blocklisted
    }


def test_ghost_members_export(database_url: str) -> None:
    result = imported(
        database_url, "ghost.csv", "Ghost", {5: "'dee@@example.com' is not a valid address"}
    )
    assert "ghost.csv, line 4: deleted in Ghost, left out" in result.stderr
    found = people(database_url)
    assert {e: (p["status"], p["consent_at"], p["categories"]) for e, p in found.items()} == {
        "ann@example.com": ("active", at(2019, 10, 30, 14, 52, 8), ["vip", "Python"]),
        "bob@example.org": ("unsubscribed", None, None),
    }


def test_an_export_never_brings_back_someone_who_left_here(database_url: str) -> None:
    """Ann unsubscribed from digest; an old Ghost export saying she is subscribed changes
    nothing, while Bob, active here and unsubscribed there, is now out."""
    for address in ("ann@example.com", "bob@example.org"):
        assert cli(database_url, "subscribers", "add", address).exit_code == 0
    assert cli(database_url, "subscribers", "remove", "ann@example.com").exit_code == 0
    cli(database_url, "subscribers", "import", str(FIXTURES / "ghost.csv"))
    found = people(database_url)
    assert (found["ann@example.com"]["status"], found["bob@example.org"]["status"]) == (
        "unsubscribed",
        "unsubscribed",
    )
    database = open_database(database_url)
    with database.session() as session:
        kinds = session.execute(
            select(Event.kind, Event.method)
            .join(Subscriber)
            .where(Subscriber.email == "bob@example.org")
            .order_by(Event.id)
        ).all()
    database.dispose()
    assert [tuple(k) for k in kinds] == [("subscribe", "cli"), ("unsubscribe", "import")]


def test_a_header_that_is_no_known_export_is_named(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("E-Mail,Vorname\na@example.com,Anna\n", encoding="utf-8")
    result = cli(f"sqlite:///{tmp_path / 'db.sqlite3'}", "subscribers", "import", str(path))
    assert result.exit_code == 1
    assert "line 1: the header is neither digest's CSV" in result.stderr
    assert "Mailchimp, Substack, Ghost, listmonk, Buttondown" in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-03-04 05:06:07", at(2021, 3, 4, 5, 6, 7)),
        ("2018-08-27T15:06:27.713Z", at(2018, 8, 27, 15, 6, 27, micro=713000)),
        ("2024-07-29 11:01:31.478677123 +0530 IST", at(2024, 7, 29, 5, 31, 31, micro=478677)),
        ("2023-01-02 03:04:05 +0000 UTC", at(2023, 1, 2, 3, 4, 5)),
        ("2022-05-06T07:08:09.123456+00:00", at(2022, 5, 6, 7, 8, 9, micro=123456)),
        ("", None),
    ],
)
def test_the_times_services_write(value: str, expected: datetime | None) -> None:
    assert when(value, "t") == expected


def test_tags_as_services_write_them() -> None:
    assert listed('"Python","Rust"') == ["Python", "Rust"]  # Mailchimp
    assert listed("vip, Python") == ["vip", "Python"]  # Ghost, Buttondown
    assert listed('["a", "b", "a"]') == ["a", "b"]  # a JSON array
    assert listed("") is None
