"""A stamp of the code that made a cached result: a cache keyed on it is not used by other code.

digest's version, Python's version, each named library's `__init__.py` (where it is installed,
its size and mtime, found without importing it) and the size and mtime of every one of
digest's own modules: a new release, an upgraded dependency or an edited module (a development
checkout) each give another stamp. The post cache (digest.sources.cache) and the configuration
snapshot (digest.config.snapshot) key on it. Standard library only: computing it imports none
of the libraries it names.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from functools import cache
from pathlib import Path

import digest


def code_stamp(libraries: tuple[str, ...]) -> str:
    """The stamp of digest's code and of `libraries` (module doc)."""
    parts = [digest.__version__, sys.version, *(_library_stamp(name) for name in libraries)]
    return "/".join(parts) + "/" + _module_stamps(Path(digest.__file__).parent)


@cache
def _library_stamp(name: str) -> str:
    """Where a library's package is installed and the size and mtime of its `__init__.py`,
    found without importing it (an upgrade writes that file anew, a reinstall elsewhere moves
    it); its name alone when it cannot be found."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None else None
    if origin is None:
        return name
    try:
        stat = os.stat(origin)
    except OSError:
        return f"{name}:{origin}"
    return f"{name}:{origin}:{stat.st_size}:{stat.st_mtime_ns}"


@cache
def _module_stamps(package: Path) -> str:
    stamps = []
    for root, dirs, files in os.walk(package):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                stat = os.stat(os.path.join(root, name))
                stamps.append(f"{os.path.join(root, name)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()
