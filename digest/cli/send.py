"""Commands that send and watch sending: `send`, `schedule`, `status` and `report`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from digest.cli.base import error, escape_markup, get_config, get_database, main
from digest.errors import DigestError
from digest.pipeline import gather


@main.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report(ctx: click.Context, issue: str | None, as_json: bool) -> None:
    """Sent, failed, bounced and unsubscribes per issue (the latest ones, or ISSUE)."""
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
    for column in (
        "Issue",
        "Status",
        "Posts",
        "Recipients",
        "Sent",
        "Failed",
        "Bounced",
        "Unknown",
        "Unsubscribes",
    ):
        table.add_column(column, justify="left" if column in ("Issue", "Status") else "right")
    for r in found:
        by_method = ", ".join(f"{m} {n}" for m, n in sorted(r.unsubscribes.items()))
        unsubscribes = f"{sum(r.unsubscribes.values())}" + (f" ({by_method})" if by_method else "")
        table.add_row(
            r.key,
            r.status,
            str(r.posts),
            str(r.recipients),
            str(r.count("sent")),
            str(r.count("failed")),
            str(r.count("bounced")),
            str(r.count("unknown")),
            unsubscribes,
        )
    Console(highlight=False).print(table)


@main.command()
@click.pass_context
def schedule(ctx: click.Context) -> None:
    """Run the scheduler in the foreground (stop with Ctrl-C or SIGTERM)."""
    import logging

    from digest.config import find_config
    from digest.schedule import rhythms, serve_forever

    config = get_config(ctx)
    config.check_files()  # a missing password file or key is named before anything starts
    rhythms(config)  # a bad cron or preset is a configuration error before anything starts
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    serve_forever(config, find_config(ctx.find_root().obj["config_path"]))


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Last issues, next scheduled run, who holds the send lease, posts waiting."""
    from digest.schedule import next_runs
    from digest.store import lease, ledger
    from digest.store import subscribers as people
    from digest.store.report import reports

    config = get_config(ctx)
    database = get_database(ctx)
    frequency = config.schedule.frequency
    with database.session() as session:
        latest = reports(session, limit=5)
        sent = ledger.sent_post_ids(session, frequency)
        unfinished = ledger.unfinished_issue(session)
        audience = people.counts(session)
    gathered = gather(config, sent=sent)
    holder = lease.current_holder(database, lease.SEND_LEASE)
    runs = next_runs(config, database)
    data: dict[str, Any] = {
        "issues": [r.as_json() for r in latest],
        "next_runs": {f: moment.isoformat() for f, moment in runs.items()},
        "lease": {"holder": holder.name, "expires_at": holder.expires_at.isoformat()}
        if holder
        else None,
        "posts_waiting": len(gathered.new),
        "unfinished": {
            "key": unfinished.key,
            "status": unfinished.status,
            "reason": unfinished.paused_reason,
        }
        if unfinished
        else None,
        "subscribers": audience,
        "source_failures": gathered.source.failures,
    }
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    out = Console(highlight=False)
    for frequency_name, moment in runs.items():
        out.print(f"Next {frequency_name} run: {moment.strftime('%Y-%m-%d %H:%M %Z (%A)')}")
    if holder:
        local = holder.expires_at.astimezone(config.schedule_tz).strftime("%H:%M %Z")
        out.print(
            f"Sending now: {escape_markup(holder.name)} holds the send lease (until {local})."
        )
    else:
        out.print("No scheduler is sending right now.")
    out.print(f"Posts waiting for the next digest: {len(gathered.new)}")
    active = audience.get("active", 0)
    out.print(f"Subscribers: {active} active, {sum(audience.values()) - active} other.")
    if unfinished:
        why = f": {escape_markup(unfinished.paused_reason)}" if unfinished.paused_reason else ""
        out.print(f"[bold yellow]Issue {unfinished.key} is {unfinished.status}{why}[/]")
    for failure in gathered.source.failures:
        error(escape_markup(failure))
    if latest:
        table = Table(title="Latest issues")
        for column in ("Issue", "Status", "Recipients", "Sent", "Failed", "Bounced", "Unknown"):
            table.add_column(column)
        for r in latest:
            table.add_row(
                r.key,
                r.status,
                str(r.recipients),
                str(r.count("sent")),
                str(r.count("failed")),
                str(r.count("bounced")),
                str(r.count("unknown")),
            )
        out.print(table)
    else:
        out.print("No issues sent yet.")


@main.command()
@click.option("--dry-run", is_flag=True, help="Write the messages to the outbox; send nothing.")
@click.option(
    "--outbox",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dry-run folder (default: <outbox>/<issue>/).",
)
@click.option("--to", "to_address", default=None, help="Send one test copy to this address only.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def send(
    ctx: click.Context, dry_run: bool, outbox: Path | None, to_address: str | None, yes: bool
) -> None:
    """Send the next digest to every active subscriber (or resume an unfinished one)."""
    from digest import sending

    config = get_config(ctx)
    database = get_database(ctx)
    try:
        if to_address is not None:
            sending.test_send(config, database, to_address, echo=click.echo)
        elif dry_run:
            sending.dry_run(config, database, outbox, echo=click.echo)
        else:
            code = sending.real_send(config, database, confirm=not yes, echo=click.echo)
            ctx.exit(code)
    except sending.NothingToSend as exc:
        click.echo(str(exc))
