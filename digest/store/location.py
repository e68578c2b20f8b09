"""Where the database is, read from its URL without loading the database layer.

A command that only reads the next issue (`posts`, `render`) asks `nothing_recorded` first:
a SQLite database whose file does not exist yet has recorded nothing (no issue was sent), so
there is nothing to read, no reason to create an empty database, and no reason to load
SQLAlchemy (most of such a command's start-up).
"""

from __future__ import annotations

from pathlib import Path

SQLITE_PREFIX = "sqlite:///"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (`sqlite:///var/digest.sqlite3`, `sqlite:////abs/path`);
    None for any other database, an in-memory one, or a URL with options (`?...`)."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url[len(SQLITE_PREFIX) :]
    if not path or ":memory:" in path or "?" in path or path.startswith("file:"):
        return None
    return Path(path)


def nothing_recorded(url: str) -> bool:
    """Whether the database is a SQLite file not created yet (so it holds no issue)."""
    file = sqlite_file(url)
    return file is not None and not file.exists()
