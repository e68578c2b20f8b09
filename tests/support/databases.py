"""Databases at the current schema without migrating each one: copies of a template.

Migrating a new database costs a tenth of a second on SQLite and more on PostgreSQL, and the
suite makes about a thousand; a test that is not about migrating gets a copy of one migrated
once per test process instead. Each copy gets an identity of its own (migration 0014), as a
database made by migrating would: outcome journals tell databases apart by it.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

IDENTITY = "UPDATE database_identity SET id = ?"


def new_identity() -> str:
    return uuid.uuid4().hex


def copy_sqlite(template: Path, target: Path) -> None:
    """`template` into a new file `target` through SQLite's backup API (whole whatever the
    template's journal mode), with an identity of its own."""
    source = sqlite3.connect(template)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        with copy:
            copy.execute(IDENTITY, (new_identity(),))
    finally:
        copy.close()
        source.close()
