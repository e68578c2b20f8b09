"""Commands that watch sending: `status` (now and next) and `report` (per issue)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from digest.cli.base import error, escape_markup, get_config, get_database, main
from digest.errors import DigestError

COLUMNS = ("Sent", "Deferred", "Failed", "Bounced", "Unknown")
RETURNED = {"Hard": "hard", "Soft": "soft", "Complaints": "complaint"}  # what came back later


@main.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report(ctx: click.Context, issue: str | None, as_json: bool) -> None:
    """Sent, failed, bounced, bounces and complaints that came back, and unsubscribes per
    issue (the latest ones, or ISSUE)."""
    from digest.store.report import reports

    with get_database(ctx).session() as session:
        found = reports(session, issue)
    if issue is not None and not found:
        raise DigestError(f"there is no issue {issue!r}.")
    if as_json:
        payload: Any = [r.as_json() for r in found]
        click.echo(json.dumps(payload[0] if issue else payload, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo("No issues yet.")
        return
    table = Table()
    for column in ("Issue", "Status", "Posts", "Recipients", *COLUMNS, *RETURNED, "Unsubscribes"):
        table.add_column(column, justify="left" if column in ("Issue", "Status") else "right")
    for r in found:
        by_method = ", ".join(f"{m} {n}" for m, n in sorted(r.unsubscribes.items()))
        unsubscribes = f"{sum(r.unsubscribes.values())}" + (f" ({by_method})" if by_method else "")
        table.add_row(
            r.key,
            r.status,
            str(r.posts),
            str(r.recipients),
            *(str(r.count(c.lower())) for c in COLUMNS),
            *(str(r.returned.get(kind, 0)) for kind in RETURNED.values()),
            unsubscribes,
        )
    out = Console(highlight=False)
    out.print(table)
    _explain_unknown(out, found)


def _explain_unknown(out: Console, reports: list[Any]) -> None:
    for r in reports:
        if r.count("unknown"):
            out.print(
                f"Issue {r.key}: {r.count('unknown')} deliveries are unknown (they were in "
                "flight when a send stopped and may have arrived); "
                f"`digest send --resend-unknown {r.key}` sends them again."
            )


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Last issues, next scheduled run, who is sending, deferred retries, posts waiting."""
    from digest.status import current_status

    config = get_config(ctx)
    now = current_status(config, get_database(ctx))
    if as_json:
        click.echo(json.dumps(now.as_json(), ensure_ascii=False, indent=2))
        return
    runs, holder, workers, latest = now.next_runs, now.holder, now.workers, now.latest
    out = Console(highlight=False)
    tz = config.schedule_tz
    for frequency_name, moment in runs.items():
        out.print(f"Next {frequency_name} run: {moment.strftime('%Y-%m-%d %H:%M %Z (%A)')}")
    if holder:
        since = holder.since.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        out.print(
            f"Sending now: {escape_markup(holder.name)} holds the send lease (since {since})."
        )
    else:
        out.print("Nobody is sending right now.")
    for w in workers:
        since = w.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        out.print(f"Worker {escape_markup(w.name)} is sending (since {since}).")
    out.print(f"Posts waiting for the next digest: {now.posts_waiting}")
    active = now.audience.get("active", 0)
    out.print(f"Subscribers: {active} active, {sum(now.audience.values()) - active} other.")
    for issue in now.unfinished:
        why = f": {escape_markup(issue.reason)}" if issue.reason else ""
        out.print(f"[bold yellow]Issue {issue.key} is {issue.status}{why}[/]")
    if now.next_retry is not None:
        local = now.next_retry.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        out.print(f"Deferred deliveries: {now.waiting}; the next retry at {local}.")
    for failure in now.source_failures:
        error(escape_markup(failure))
    if latest:
        table = Table(title="Latest issues")
        for column in ("Issue", "Status", "Recipients", *COLUMNS):
            table.add_column(column)
        for r in latest:
            table.add_row(
                r.key, r.status, str(r.recipients), *(str(r.count(c.lower())) for c in COLUMNS)
            )
        out.print(table)
        _explain_unknown(out, latest)
    else:
        out.print("No issues sent yet.")
