"""The migrations' revisions, read from the files in migrations/versions/ without Alembic.

Which revision is the newest (`head_from_files`) and which ones exist (`known_revisions`):
every command compares the database's revision with the newest, and loading Alembic to say
so cost most of a warm `digest posts`. Standard library only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(.+)$", re.MULTILINE)


def known_revisions() -> set[str]:
    """Every revision of digest/store/migrations/versions/ (a database at another one was made
    by a newer digest)."""
    found: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for key, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            if key == "revision":
                found.add(ast.literal_eval(value))
    return found


def head_from_files() -> str | None:
    """The one revision no other revises, read from the files (None when unsure: Alembic
    decides then)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = {key: ast.literal_eval(value) for key, value in _REVISION.findall(text)}
        if not isinstance(found.get("revision"), str):
            return None
        revisions.add(found["revision"])
        down = found.get("down_revision")
        revised.update([down] if isinstance(down, str) else list(down or ()))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None
