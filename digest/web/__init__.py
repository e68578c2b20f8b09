"""The web apps: `digest preview` (the next digest and past issues, local and read-only)."""

from __future__ import annotations

from digest.web.archive import ArchivedIssue, IssueArchive, MemoryArchive
from digest.web.preview import create_preview_app

__all__ = ["ArchivedIssue", "IssueArchive", "MemoryArchive", "create_preview_app"]
