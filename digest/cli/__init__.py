"""The `digest` command: thin commands over the library (DESIGN.md section 6).

`base` holds the group and what commands share; each other module holds one command group.
Importing them registers their commands on `main`.
"""

from __future__ import annotations

import sys

from digest.cli import bounces, db, dkim, init, posts, send, serve, status, subscribers
from digest.cli.base import main

__all__ = [
    "bounces",
    "db",
    "dkim",
    "init",
    "main",
    "posts",
    "run",
    "send",
    "serve",
    "status",
    "subscribers",
]


def run() -> None:
    main(prog_name="digest")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
