"""A database and config for the bounce fixtures: subscriber 42, issue 7 and delivery 1234
(the ids the fixtures' tokens name), plus a subscriber for every address a fixture names."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select

from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.store.database import open_database
from digest.store.tables import Delivery, Event, Issue, ReturnedMail, Subscriber
from tests.support.bounce_fixtures import (
    DELIVERY,
    ISSUE,
    KEYS,
    RETURN_PATH,
    SUBSCRIBER,
    fixture_bytes,
)

VERP_EMAIL = "reader42@example.net"


def write_config(tmp_path: Path, database_url: str, **bounces: Any) -> Path:
    (tmp_path / "web-secret").write_text(KEYS.secret + "\n", "utf-8")
    extra = "".join(f"  {key}: {value}\n" for key, value in bounces.items())
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""site:
  title: Bounce Test
  base_url: https://blog.example.com
sources:
  - type: markdown
    path: {tmp_path}
database:
  url: {database_url}
sender:
  from: "Bounce Test <digest@blog.example.com>"
web:
  base_url: https://news.example.com
  secret_file: web-secret
bounces:
  return_path: {RETURN_PATH}
{extra}""",
        "utf-8",
    )
    return path


def seed(config: Config, addresses: tuple[str, ...] = ()) -> None:
    """Subscriber 42 with issue 7 and its delivery 1234 (sent), and active `addresses`."""
    database = open_database(config.database_url)
    with database.session() as session:
        session.add(Subscriber(id=SUBSCRIBER, email=VERP_EMAIL, status="active"))
        session.add(Issue(id=ISSUE, key="2026-W47", posts=[], status="finished"))
        session.flush()
        session.add(
            Delivery(
                id=DELIVERY,
                issue_id=ISSUE,
                subscriber_id=SUBSCRIBER,
                status="sent",
                sent_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        for n, address in enumerate(dict.fromkeys(addresses)):
            session.add(Subscriber(id=100 + n, email=address, status="active"))
    database.dispose()


def maildir(folder: Path, *names: str) -> Path:
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(names):
        (folder / "new" / f"{1700000000 + n}.M{n}P1.test").write_bytes(fixture_bytes(name))
    return folder


def copy_maildir(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def cli(path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(path), *args])


def standing(config: Config) -> dict[str, str]:
    database = open_database(config.database_url)
    with database.session() as session:
        result = {e: s for e, s in session.execute(select(Subscriber.email, Subscriber.status))}
    database.dispose()
    return result


def events(config: Config) -> list[tuple[str, str, str, int | None, int | None]]:
    """(email, kind, method, issue_id, delivery_id) of every event, in order."""
    database = open_database(config.database_url)
    with database.session() as session:
        rows = session.execute(
            select(Subscriber.email, Event.kind, Event.method, Event.issue_id, Event.delivery_id)
            .join(Subscriber, Subscriber.id == Event.subscriber_id)
            .order_by(Event.id)
        )
        result = [(e, k, m, i, d) for e, k, m, i, d in rows]
    database.dispose()
    return result


def returned(config: Config) -> int:
    database = open_database(config.database_url)
    with database.session() as session:
        count = len(session.scalars(select(ReturnedMail.id)).all())
    database.dispose()
    return count


def load(path: Path) -> Config:
    return load_config(path)
