"""`digest admin add-user NAME` (issue 24): the password asked twice on the terminal (two
different answers add nobody), or read once from standard input with `--password-stdin`
(its line ending is not part of it); kept only as an argon2id hash that logs in; too short
a password or a name taken already exit 2 and add nobody; `admin users` lists them;
`admin password` ends the administrator's sessions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from digest.access.admins import current, log_in
from digest.cli import main
from digest.store.database import open_database
from digest.store.tables import Admin
from tests.support import paths


def cli(url: str, *args: str, stdin: str) -> Result:
    return CliRunner().invoke(
        main,
        ["--config", str(paths.ROOT / "config.yaml"), "admin", *args],
        input=stdin,
        env={"DIGEST_DATABASE__URL": url},
    )


def test_add_user_asks_twice_or_reads_stdin_and_keeps_only_an_argon2id_hash(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    differ = cli(url, "add-user", "alice", stdin="first password\nsecond password\n")
    assert differ.exit_code != 0 and "do not match" in differ.output
    asked = cli(url, "add-user", "alice", stdin="typed on a terminal\ntyped on a terminal\n")
    assert asked.exit_code == 0, asked.output
    assert "typed on a terminal" not in asked.output  # hidden input is not echoed
    piped = cli(url, "add-user", "bob", "--password-stdin", stdin="from a script\r\n")
    assert piped.exit_code == 0, piped.output
    short = cli(url, "add-user", "carol", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    taken = cli(url, "add-user", "bob", "--password-stdin", stdin="another password\n")
    assert taken.exit_code == 2 and "exists already" in taken.output
    listed = json.loads(cli(url, "users", "--json", stdin="").stdout)
    assert [(row["name"], row["totp"]) for row in listed] == [("alice", False), ("bob", False)]

    database = open_database(url)
    now = datetime.now(UTC)
    with database.session() as session:
        hashes = {a.name: a.password_hash for a in session.scalars(select(Admin))}
        assert set(hashes) == {"alice", "bob"}
        for name, secret in (("alice", "typed on a terminal"), ("bob", "from a script")):
            assert hashes[name].startswith("$argon2id$") and secret not in hashes[name]
            opened = log_in(session, name, secret, "", now=now, ip="127.0.0.1", user_agent="")
            assert opened is not None, name
        bob = log_in(session, "bob", "from a script", "", now=now, ip="127.0.0.1", user_agent="")
        assert bob is not None
    changed = cli(url, "password", "bob", "--password-stdin", stdin="a new password\n")
    assert changed.exit_code == 0, changed.output
    with database.session() as session:
        assert current(session, bob.secret, now) is None  # the old session ended
        old = log_in(session, "bob", "from a script", "", now=now, ip="127.0.0.1", user_agent="")
        assert old is None
        new = log_in(session, "bob", "a new password", "", now=now, ip="127.0.0.1", user_agent="")
        assert new is not None
    database.dispose()
