"""`digest send` as a person sees it: the prompt, the progress bar, the summary.

The work itself is `pipeline.plan_send`, `start_issue` and `run_send`; this module only talks
to the terminal, so the scheduler can run the same send without any of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.prompt import Confirm
from rich.table import Table

from digest.config import Config
from digest.delivery.engine import Engine, Summary, write_outbox
from digest.errors import DigestError
from digest.models import Recipient
from digest.pipeline import (
    Composer,
    NothingToSend,
    Plan,
    audience_of,
    plan_send,
    run_send,
    smtp_settings,
    start_issue,
)
from digest.render import render
from digest.store import Database, ledger
from digest.store.subscribers import InvalidAddress, find, normalise_email

__all__ = ["NothingToSend", "dry_run", "real_send", "test_send"]

Echo = Callable[[str], None]


def _describe(plan: Plan) -> str:
    posts = len(plan.edition.posts)
    what = "Resuming" if plan.resumed else "New"
    return f"{what} issue {plan.edition.key} ({posts} post{'s' if posts != 1 else ''})"


def dry_run(config: Config, database: Database, outbox: Path | None, echo: Echo) -> None:
    """Every message exactly as it would go out, as .eml files; no state changes."""
    plan = plan_send(config, database, dry_run=True)
    folder = outbox or config.path(config.outbox) / plan.edition.key
    recipients = audience_of(config, database, plan)
    composer = Composer(
        config,
        plan.edition,
        issue_id=plan.issue.id if plan.issue else None,
        database=None,
        now=plan.edition.date,
    )
    messages = []
    skipped = 0
    for recipient in recipients:
        composed = composer(recipient)
        if composed is None:
            skipped += 1
        else:
            messages.append((recipient, composed))
    try:
        written = write_outbox(folder, messages)
        preview = folder / "preview.html"
        preview.write_text(_preview_html(config, plan), encoding="utf-8")
    except OSError as exc:
        raise DigestError(f"{folder}: cannot write the outbox: {exc.strerror}.") from None
    echo(f"Dry run: {_describe(plan)}, {len(recipients)} recipients; nothing was sent.")
    echo(
        f"Wrote {len(written)} messages to {folder}/"
        + (f" ({skipped} skipped: no new posts in their categories)" if skipped else "")
    )
    echo(f"Preview: {preview}")


def _preview_html(config: Config, plan: Plan) -> str:
    from digest.models import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL

    rendered = render(config, plan.edition)
    return (
        rendered.html.replace(UNSUBSCRIBE_URL, "#unsubscribe")
        .replace(PREFERENCES_URL, "#preferences")
        .replace(GREETING, rendered.greeting_anonymous)
    )


def test_send(config: Config, database: Database, address: str, echo: Echo) -> None:
    """One copy of the next issue to one address, outside the ledger."""
    import asyncio

    try:
        email = normalise_email(address)
    except InvalidAddress as exc:
        raise DigestError(f"{address!r} is not a valid address: {exc}.") from None
    plan = plan_send(config, database, dry_run=True)
    with database.session() as session:
        person = find(session, email)
        recipient = Recipient(
            0,
            person.id if person else 0,
            email,
            person.name if person else "",
            person.locale if person else None,
            None,
        )
    composer = Composer(
        config, plan.edition, issue_id=plan.issue.id if plan.issue else None, database=None
    )
    engine = Engine(smtp_settings(config), _OneShot(recipient), composer)
    summary = asyncio.run(engine.run())
    if summary.sent != 1:
        raise DigestError(
            f"the test copy to {email} was not accepted: "
            f"{engine.last_error or summary.paused or 'see the server log'}."
        )
    echo(f"Sent a test copy of {plan.edition.key} to {email}.")


class _OneShot:
    def __init__(self, recipient: Recipient) -> None:
        self.pending = [recipient]

    def claim(self, limit: int) -> list[Recipient]:
        taken, self.pending = self.pending[:limit], self.pending[limit:]
        return taken

    def record(self, results: list[ledger.Result]) -> None:
        pass

    def release(self, recipients: list[Recipient]) -> None:
        pass


def real_send(config: Config, database: Database, *, confirm: bool, echo: Echo) -> int:
    """Create or resume the issue and deliver it; returns the exit code."""
    plan = plan_send(config, database)
    with database.session() as session:
        queued = (
            ledger.count_pending(session, plan.issue)
            if plan.issue is not None
            else ledger.count_audience(session, plan.frequency, config.schedule.frequency)
        )
    target = f"{config.smtp.host}:{config.smtp.port}"
    echo(f"{_describe(plan)} to {queued} subscribers via {target}.")
    if plan.recovered_unknown:
        echo(
            f"{plan.recovered_unknown} messages were in flight when the last send stopped; "
            "they are recorded as unknown, not sent again."
        )
    if confirm and sys.stdin.isatty() and not Confirm.ask("Send now?", default=False):
        echo("Nothing sent.")
        return 0
    issue = start_issue(config, database, plan)
    with database.session() as session:
        total = ledger.remaining(session, issue)
    started = datetime.now(UTC)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(issue.key, total=total, rate="")

        def update(summary: Summary) -> None:
            done = (
                summary.sent + summary.failed + summary.bounced + summary.unknown + summary.skipped
            )
            elapsed = (datetime.now(UTC) - started).total_seconds()
            rate = f"{done / elapsed:,.0f} msg/s" if elapsed > 0 else ""
            progress.update(task, completed=done, rate=rate)

        summary = run_send(config, database, issue, update)
    _print_summary(issue.key, summary)
    if summary.paused:
        echo(
            f"Paused issue {issue.key}: {summary.paused}. Fix the cause and run `digest send` "
            "again to resume where it stopped."
        )
        return 1
    return 0


def _print_summary(key: str, summary: Summary) -> None:
    table = Table(title=f"Issue {key}", show_header=True)
    for column in ("Sent", "Failed", "Bounced", "Unknown", "Skipped", "Elapsed", "Rate"):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.sent),
        str(summary.failed),
        str(summary.bounced),
        str(summary.unknown),
        str(summary.skipped),
        f"{summary.elapsed:.1f} s",
        f"{summary.rate:,.0f}/s",
    )
    Console(highlight=False).print(table)
