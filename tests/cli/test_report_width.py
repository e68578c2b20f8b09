"""`digest report` and `digest status` fit an 80-column terminal (issue 24): several issues
as a table of the essential columns, one issue as one figure a line; nothing cut (no `…`),
no line longer than 80 characters; `--json` still has everything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import insert

from digest.cli import main
from digest.store.database import open_database
from digest.store.events import append
from digest.store.tables import (
    Click,
    Delivery,
    Issue,
    IssueStatus,
    ReturnedMail,
    Status,
    Subscriber,
)
from tests.issues.test_send import write_config

KEYS = ("2026-11-30", "2026-W48", "2026-12")  # daily, weekly and monthly keys, the longest
# a post title longer than the terminal, in the clicks table (`tracking.clicks`)
LONG_TITLE = "A very long post title about keyset paging, " * 3 + "the end"


def at_80(path: Path, *args: str) -> Result:
    result = CliRunner().invoke(main, ["--config", str(path), *args], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result


def seed(path: Path) -> None:
    database = open_database(f"sqlite:///{path.parent / 'digest.sqlite3'}")
    with database.session() as session:
        session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"r{n}@example.com",
                    "email_key": f"r{n}@example.com",
                    "status": Status.ACTIVE,
                    "name": "",
                }
                for n in range(12_345)
            ],
        )
        for n, key in enumerate(KEYS):
            issue = Issue(
                key=key,
                status=IssueStatus.PAUSED if n == 0 else IssueStatus.FINISHED,
                paused_reason="the SMTP server refused the login" if n == 0 else None,
                posts=[{"id": "p1", "title": LONG_TITLE, "url": "https://b/p1"}] if n == 1 else [],
                created_at=datetime.now(UTC) - timedelta(days=n),
            )
            session.add(issue)
            session.flush()
            session.execute(
                insert(Delivery),
                [
                    {
                        "issue_id": issue.id,
                        "subscriber_id": s + 1,
                        "status": "sent" if s % 97 else "bounced",
                        "worker": "mail-1:40213",
                    }
                    for s in range(12_345)
                ],
            )
            session.add(
                ReturnedMail(key=f"c{n}", kind="complaint", source="mail", issue_id=issue.id)
            )
            for _ in range(1234 if n == 1 else 3):
                append(session, "unsubscribe", "one-click", issue_id=issue.id)
            if n == 1:
                session.add_all(
                    [Click(issue_id=issue.id, link=0, human=h < 456) for h in range(999)]
                )
    database.dispose()


def test_report_and_status_fit_80_columns(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 2525)
    seed(path)
    for args in (("report",), ("report", "2026-W48"), ("status",)):
        output = at_80(path, *args).output
        for line in output.splitlines():
            assert len(line) <= 80, (args, line)
        assert "…" not in output, args
    several = at_80(path, "report").output
    for key in KEYS:
        assert key in several
    header = next(line for line in several.splitlines() if "Issue" in line)
    assert header.split() == ["Issue", "Status", "Sent", "Failed", "Bounce", "Complaint", "Unsubs"]
    row = next(line for line in several.splitlines() if "2026-W48" in line)
    assert row.split() == ["2026-W48", "finished", "12217", "128", "1.04%", "0.01%", "1234"]
    one = at_80(path, "report", "2026-W48").output
    assert one.splitlines()[0] == "Issue 2026-W48"
    lines = one.splitlines()
    vertical = lines[1 : next(n for n, line in enumerate(lines) if not line.strip())]
    figures = dict(line.strip().rsplit("  ", 1) for line in vertical)  # then the clicks
    figures = {label.strip(): value for label, value in figures.items()}
    assert figures["Recipients"] == "12345" and figures["Sent"] == "12217"
    assert figures["by one-click"] == "1234" and figures["Sent by mail-1:40213"] == "12217"
    assert figures["Unsubscribe rate"] == "10.10%" and figures["Complaints"] == "1"
    every = json.loads(at_80(path, "report", "2026-W48", "--json").stdout)
    assert every["recipients"] == 12345 and every["unsubscribes"] == {"one-click": 1234}
    assert every["unsubscribe_rate"] == 1234 / 12217
    for output in (several, one):  # clicks per post: the long title wraps, no count is cut
        lines = output.splitlines()
        assert "the end" in output, output
        assert any(line.split()[-2:] == ["456", "543"] for line in lines), output
    status = at_80(path, "status").output
    assert "Latest issues" in status and "2026-12" in status
