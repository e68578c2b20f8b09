"""`digest bounces`: read what came back and record it (the logic is digest.inbound.process)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from digest.cli.base import escape_markup, get_config, get_database, main, warn
from digest.errors import ConfigError


@main.command()
@click.option("--maildir", type=click.Path(path_type=Path), help="A Maildir to read.")
@click.option("--mbox", type=click.Path(path_type=Path), help="An mbox file to read.")
@click.option("--dry-run", is_flag=True, help="Classify and show; record and mark nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.pass_context
def bounces(
    ctx: click.Context, maildir: Path | None, mbox: Path | None, dry_run: bool, as_json: bool
) -> None:
    """Bounces, complaints and mailed unsubscribes: from --maildir, --mbox or bounces.imap."""
    from digest.inbound.process import open_mailbox, process

    if maildir is not None and mbox is not None:
        raise ConfigError("give either --maildir or --mbox, not both.")
    config = get_config(ctx)
    database = get_database(ctx)
    with open_mailbox(config, maildir, mbox) as mailbox:
        run = process(config, database, mailbox, dry_run=dry_run)
    for skipped in run.skipped:
        warn(escape_markup(f"{run.source}: {skipped.where}: {skipped.reason}"))
    if as_json:
        for row in run.rows:
            click.echo(json.dumps(row.as_dict(), ensure_ascii=False, sort_keys=True))
        return
    out = Console(highlight=False)
    if run.rows:
        table = Table()
        for column in ("Message", "Kind", "Done", "Subscriber", "Issue", "Reason"):
            table.add_column(column)
        for row in run.rows:
            a, c = row.applied, row.classification
            table.add_row(
                escape_markup(row.where),
                c.kind,
                a.action,
                escape_markup(", ".join(a.subscribers) or ", ".join(c.addresses)),
                a.issue or "",
                escape_markup(c.reason),
            )
        out.print(table)
    counts = ", ".join(f"{action} {n}" for action, n in sorted(run.counts().items()))
    prefix = "Dry run, nothing recorded: " if dry_run else ""
    out.print(
        f"{prefix}{len(run.rows)} messages in {escape_markup(run.source)}"
        + (f": {counts}." if counts else ".")
    )
    if run.unknown:
        out.print(f"{run.unknown} could not be classified and stay unseen for you to read.")
    if run.soft_limited:
        out.print(f"Suppressed after too many soft bounces: {', '.join(run.soft_limited)}.")
