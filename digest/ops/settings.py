"""The settings the operations read, built from the configuration by their caller (the CLI),
so that these modules never see the whole `Config`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Secret:
    """A secret a backup does not hold: its setting, where it is kept, and what is lost
    without it."""

    key: str
    where: str
    why: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupSettings:
    database_url: str
    secrets: tuple[Secret, ...] = ()
