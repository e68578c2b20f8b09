"""What a command that only reads the next issue needs from the database, without the database
layer: the identities of the posts already sent.

`digest posts` and `digest render` need that one set. Loading SQLAlchemy and the models to read
it costs several times the rest of a warm `digest posts`, so for a SQLite database this module
reads it with the standard library's sqlite3, the same query as digest.store.ledger
.sent_post_ids (tests/store/test_peek.py compares them), on a connection that writes nothing:

- a database file that does not exist yet recorded nothing: no post was sent (and nothing is
  created);
- a file whose schema is not the newest revision (digest.store.revisions), or that cannot be
  read so (locked past the busy timeout, damaged, not a database): None, and the caller opens
  the database the usual way, which migrates it or says what is wrong;
- any other database (PostgreSQL): None.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from digest.store.revisions import head_from_files

SQLITE_PREFIX = "sqlite:///"
BUSY_SECONDS = 30.0  # as digest.store.database.SQLITE_BUSY_SECONDS

# digest.store.tables.IssueStatus.FINISHED and DeliveryStatus.SENT (test_peek.py checks)
FINISHED = "finished"
SENT = "sent"
_SENT_POSTS = """
SELECT issue_posts.post_id FROM issue_posts JOIN issues ON issues.id = issue_posts.issue_id
WHERE issues.frequency = ? AND (
    issues.status = ?
    OR EXISTS (SELECT 1 FROM deliveries
               WHERE deliveries.issue_id = issues.id AND deliveries.status = ?)
)
"""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (`sqlite:///var/digest.sqlite3`, `sqlite:////abs/path`);
    None for any other database, an in-memory one, or a URL with options (`?...`)."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url[len(SQLITE_PREFIX) :]
    if not path or ":memory:" in path or "?" in path or path.startswith("file:"):
        return None
    return Path(path)


def sent_post_ids(url: str, frequency: str) -> set[str] | None:
    """The identities of the posts an issue of `frequency` covered (see the module docstring:
    None when only the database layer can tell)."""
    file = sqlite_file(url)
    if file is None:
        return None
    if not file.exists():
        return set()
    head = head_from_files()
    if head is None:
        return None
    try:
        # mode=rw: never creates the file; query_only: this connection writes nothing
        connection = sqlite3.connect(
            f"{file.resolve().as_uri()}?mode=rw", uri=True, timeout=BUSY_SECONDS
        )
    except sqlite3.Error:
        return None
    try:
        connection.execute("PRAGMA query_only=1")
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        if [row[0] for row in revisions] != [head]:
            return None
        rows = connection.execute(_SENT_POSTS, (frequency, FINISHED, SENT)).fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return {str(row[0]) for row in rows}
