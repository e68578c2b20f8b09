"""Where the configuration file is, its text, and the environment's overrides applied to it,
as `load_config` reads them.

Standard library only, so that digest.config.snapshot can read the file as validation does
without loading the schema (pydantic); digest.config.load validates what this reads.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from digest.errors import ConfigError

ENV_PREFIX = "DIGEST_"
ENV_RESERVED = frozenset({"DIGEST_CONFIG", "DIGEST_DEBUG"})
# The documented demo config.yaml is 12 KB; nothing real comes near this.
MAX_CONFIG_BYTES = 1024 * 1024


def find_config(explicit: str | os.PathLike[str] | None) -> Path:
    """`--config`, else ./config.yaml, else $DIGEST_CONFIG (DESIGN.md section 6)."""
    if explicit is not None:
        return Path(explicit)
    local = Path("config.yaml")
    from_env = os.environ.get("DIGEST_CONFIG", "")
    return local if local.exists() or not from_env else Path(from_env)


def read_config_text(file: Path) -> str:
    """The file's text: at most MAX_CONFIG_BYTES, and UTF-8 (the line of a bad byte named)."""
    try:
        if file.exists() and not file.is_file():
            raise ConfigError(f"{file}: the configuration is not a regular file.")
        with file.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{file}: configuration file not found.") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the configuration file: {exc.strerror}.") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{file}: the configuration file is larger than {MAX_CONFIG_BYTES // 1024} KB."
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{file}, line {line}: the configuration is not valid UTF-8 (byte "
            f"0x{data[exc.start]:02x}); save it as UTF-8."
        ) from None


def text_sha256(text: str) -> str:
    """The SHA-256 of the configuration's text as read (its UTF-8 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def apply_environment(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], str]:
    """Apply DIGEST_A__B=value overrides in place; return which key paths came from which var."""
    applied: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
        if not all(parts):
            raise ConfigError(f"environment variable {name} does not name a configuration key.")
        value: Any = environ[name]
        if value.lstrip().startswith(("[", "{")):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(f"environment variable {name} is not valid JSON.") from None
        target = data
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        target[parts[-1]] = value
        applied[parts] = name
    return applied
