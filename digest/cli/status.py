"""Commands that watch sending: `status` (now and next) and `report` (per issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from digest.cli.base import get_config, get_database, main
from digest.cli.output import emit_json, error, say, table
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.delivery.journal import Found

COLUMNS = ("Sent", "Deferred", "Failed", "Bounced", "Unknown")
RETURNED = {"Hard": "hard", "Soft": "soft", "Complaints": "complaint"}  # what came back later


@main.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report(ctx: click.Context, issue: str | None, as_json: bool) -> None:
    """Sent, failed, bounced, bounces and complaints that came back, and unsubscribes per
    issue: the latest ones in a table that fits 80 columns, or every figure of ISSUE, one
    a line (--json: everything)."""
    from digest.store.report import reports

    with get_database(ctx).session() as session:
        found = reports(session, issue)
    if issue is not None and not found:
        raise DigestError(f"there is no issue {issue!r}.")
    if as_json:
        payload: Any = [r.as_json() for r in found]
        emit_json(payload[0] if issue else payload)
        return
    if not found:
        say("No issues yet.")
        return
    if issue is not None:
        _vertical(found[0])
    else:
        _issues_table(found)
    _clicks(found)
    _explain_unknown(found)


def _issues_table(found: list[Any], title: str | None = None) -> None:
    """Several issues, one line each, with the essential columns: at most 78 characters for
    the longest keys and counts up to a million, so an 80-column terminal cuts nothing
    (`digest report ISSUE` has every figure; `--json` everything)."""
    from rich import box

    columns = [
        {"header": header, "justify": justify, "no_wrap": True}
        for header, justify in (
            ("Issue", "left"),
            ("Status", "left"),
            ("Sent", "right"),
            ("Failed", "right"),
            ("Bounce", "right"),
            ("Complaint", "right"),
            ("Unsubs", "right"),
        )
    ]
    rows = [
        [
            r.key,
            r.status,
            str(r.count("sent")),
            str(r.count("failed") + r.count("bounced") + r.count("unknown")),
            _percent(r.bounce_rate),
            _percent(r.complaint_rate),
            str(sum(r.unsubscribes.values())),
        ]
        for r in found
    ]
    table(columns, rows, title=title, box=box.SIMPLE_HEAD, pad_edge=False)


def _vertical(r: Any) -> None:
    """One issue, one figure a line: as narrow as its longest label and value."""
    lines: list[tuple[str, str]] = [
        ("Status", r.status + (f" ({r.paused_reason})" if r.paused_reason else "")),
        ("Created", r.created_at.strftime("%Y-%m-%d %H:%M %Z")),
        ("Posts", str(r.posts)),
        ("Recipients", str(r.recipients)),
        *((c, str(r.count(c.lower()))) for c in COLUMNS),
        ("Skipped", str(r.count("skipped"))),
        *((label, str(r.returned.get(kind, 0))) for label, kind in RETURNED.items()),
        ("Bounce rate", _percent(r.bounce_rate)),
        ("Complaint rate", _percent(r.complaint_rate)),
        ("Unsubscribes", str(sum(r.unsubscribes.values()))),
        *((f"  by {method}", str(n)) for method, n in sorted(r.unsubscribes.items())),
        ("Unsubscribe rate", _percent(r.unsubscribe_rate)),
        *((f"Sent by {worker}", str(n)) for worker, n in sorted(r.workers.items())),
    ]
    say(f"Issue {r.key}", style="bold")
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        say(f"  {label.ljust(width)}  {value}")


def _clicks(reports: list[Any]) -> None:
    """Clicks per post (`tracking.clicks`), people and robots apart, for each issue that
    has any."""
    from rich import box

    for r in reports:
        if not r.clicks:
            continue
        columns: list[str | dict[str, Any]] = [
            {"header": f"Issue {r.key}: post", "justify": "left"},
            {"header": "Clicks", "justify": "right", "no_wrap": True},
            {"header": "Robots", "justify": "right", "no_wrap": True},
        ]
        rows = [[c["title"], str(c["human"]), str(c["robot"])] for c in r.clicks]
        table(columns, rows, box=box.SIMPLE_HEAD, pad_edge=False)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2%}"


def _explain_unknown(reports: list[Any]) -> None:
    for r in reports:
        if r.count("unknown"):
            say(
                f"Issue {r.key}: {r.count('unknown')} deliveries are unknown (they were in "
                "flight when a send stopped and may have arrived); "
                f"`digest send --resend-unknown {r.key}` sends them again."
            )


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Last issues, next scheduled run, who is sending, deferred retries, posts waiting."""
    from digest.issues.status import current_status

    config = get_config(ctx)
    now = current_status(config, get_database(ctx))
    if as_json:
        emit_json(now.as_json())
        return
    tz = config.schedule_tz
    for frequency_name, moment in now.next_runs.items():
        say(f"Next {frequency_name} run: {moment.strftime('%Y-%m-%d %H:%M %Z (%A)')}")
    if now.holder:
        since = now.holder.since.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        say(f"Sending now: {now.holder.name} holds the send lease (since {since}).")
    else:
        say("Nobody is sending right now.")
    for w in now.workers:
        since = w.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        say(f"Worker {w.name} is sending (since {since}).")
    for j in now.journals:
        _journal(j)
    say(f"Posts waiting for the next digest: {now.posts_waiting}")
    active = now.audience.get("active", 0)
    say(f"Subscribers: {active} active, {sum(now.audience.values()) - active} other.")
    for issue in now.unfinished:
        why = f": {issue.reason}" if issue.reason else ""
        say(f"Issue {issue.key} is {issue.status}{why}", style="bold yellow")
    if now.next_retry is not None:
        local = now.next_retry.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        say(f"Deferred deliveries: {now.waiting}; the next retry at {local}.")
    for failure in now.source_failures:
        error(failure)
    if now.latest:
        _issues_table(now.latest, title="Latest issues")
        _explain_unknown(now.latest)
    else:
        say("No issues sent yet.")


def _journal(found: Found) -> None:
    """One outcome journal of this machine (digest.delivery.journal), in a sentence."""
    n = found.outcomes
    if found.foreign:
        say(
            f"The outcome journal {found.path} of {found.worker} belongs to another database"
            f" ({n} outcome(s)): left alone; a send with that database's configuration on this"
            " machine records it.",
            style="bold yellow",
        )
    elif found.live:
        say(f"{found.worker} keeps its latest replies in {found.path} ({n} line(s)).")
    else:
        more = [
            f"{found.unknown} message(s) whose reply never came (recorded unknown)"
            if found.unknown
            else "",
            f"{found.unbegun} message(s) it marked in flight and never began (they go back"
            " to the queue)"
            if found.unbegun
            else "",
        ]
        also = "".join(f", with {part}" for part in more if part)
        say(
            f"{n} outcome(s) that {found.worker} read and did not record wait in {found.path}"
            f"{also}: the next digest send, worker or scheduler on this machine records them.",
            style="bold yellow",
        )
