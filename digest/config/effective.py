"""The configuration in force, key by key, with where each value came from: the file, the
environment (naming the variable) or the default; secrets masked. The desk's Settings page
shows it; nothing here changes anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

from digest.config.schema import Config

MASK = "••••••••"
SECRET_WORDS = ("password", "secret", "token")


@dataclass(frozen=True, slots=True)
class Setting:
    key: str  # dotted: smtp.port, sources.0.path
    value: str
    origin: str  # "file", "environment (DIGEST_SMTP__PORT)", "default"


def _secret(name: str) -> bool:
    return any(word in name for word in SECRET_WORDS) and not name.endswith("_file")


def _shown(value: Any, name: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, SecretStr) or _secret(name):
        return MASK
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "[]"
    return _without_password(str(value))


def _without_password(text: str) -> str:
    """A URL's password masked (postgresql+psycopg://digest:PASSWORD@db/digest)."""
    parts = urlsplit(text) if "://" in text else None
    if parts is None or parts.password is None:
        return text
    netloc = parts.netloc.replace(":" + parts.password + "@", ":" + MASK + "@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def effective(config: Config) -> list[Setting]:
    """Every leaf key of the configuration in order, with its origin."""
    in_file = config._in_file
    from_env = config._from_env
    settings: list[Setting] = []

    def origin(path: tuple[str, ...]) -> str:
        for end in range(len(path), 0, -1):
            variable = from_env.get(path[:end])
            if variable is not None:
                return f"environment ({variable})"
        if path in in_file or any(path[:end] in in_file for end in range(2, len(path))):
            return "file"
        return "default"

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                field = type(value).model_fields[name]
                key = field.alias or name
                walk(getattr(value, name), (*path, key))
            return
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for index, item in enumerate(value):
                walk(item, (*path, str(index)))
            return
        name = path[-1] if path else ""
        settings.append(Setting(".".join(path), _shown(value, name), origin(path)))

    walk(config, ())
    return settings
