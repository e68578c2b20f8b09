"""The web apps: `digest preview` (local, read-only: the next digest and past issues) and
`digest serve` (public: unsubscribe, preferences, sign-up and the archive)."""

from __future__ import annotations

from digest.web.archive import ArchivedIssue, DatabaseArchive, IssueArchive, MemoryArchive
from digest.web.preview import create_preview_app
from digest.web.public import create_public_app

__all__ = [
    "ArchivedIssue",
    "DatabaseArchive",
    "IssueArchive",
    "MemoryArchive",
    "create_preview_app",
    "create_public_app",
]
