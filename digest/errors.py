"""Errors a user may see: one sentence each, with the exit code DESIGN.md section 6 fixes."""

from __future__ import annotations


class DigestError(Exception):
    """A failure explained in one sentence; the CLI prints it and exits with `exit_code`."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(DigestError):
    """Invalid or missing configuration: exit code 2, like any other bad usage."""

    exit_code = 2


class SourceError(DigestError):
    """A whole source (a folder or a feed) could not be read."""


class PostError(DigestError):
    """One post or feed entry could not be read; callers report it and go on."""


class UsageError(DigestError):
    """A request the caller can fix (a bad name, a bad combination of options): exit code 2."""

    exit_code = 2
