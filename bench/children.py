"""The environment of a timed child process: the caller's, with bytecode caching on.

An installed digest runs from bytecode (pip compiles every module when it installs the wheel).
With PYTHONDONTWRITEBYTECODE set in the caller's shell, a child never writes a `.pyc`, so a
module edited since its last `.pyc` (or every module of a fresh baseline worktree) is compiled
from source at each start: about 50 ms of CPU for `digest posts`, which no user pays. So the
variable is dropped for the children, and each benchmark runs its commands once before timing
them (the warm-up writes the bytecode).
"""

from __future__ import annotations

import os
from pathlib import Path


def child_environment(pythonpath: Path | None = None, **extra: str) -> dict[str, str]:
    """os.environ without PYTHONDONTWRITEBYTECODE, with PYTHONPATH and `extra` set."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env.update(extra)
    return env
