"""The `digest` command: thin commands over the library (DESIGN.md section 6).

`base` holds the group and what commands share; each other module holds one command group.
Importing one registers its commands on `main`; `main` imports a command's module when the
command is used (base.COMMAND_MODULES), so a command loads only what it needs.
"""

from __future__ import annotations

import sys

from digest.cli.base import main

__all__ = ["main", "run"]


def run() -> None:
    main(prog_name="digest")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
