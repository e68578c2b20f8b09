"""`digest bounces`: read what came back and record it (the logic is digest.inbound.process)."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.base import get_config, get_database, main
from digest.cli.output import emit_json_line, say, table, warn
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
    from digest.config.sending import inbound_settings, mailbox_settings
    from digest.inbound.process import open_mailbox, process

    if maildir is not None and mbox is not None:
        raise ConfigError("give either --maildir or --mbox, not both.")
    config = get_config(ctx)
    database = get_database(ctx)
    with open_mailbox(mailbox_settings(config, maildir, mbox)) as mailbox:
        run = process(inbound_settings(config), database, mailbox, dry_run=dry_run)
    for skipped in run.skipped:
        warn(f"{run.source}: {skipped.where}: {skipped.reason}")
    if as_json:
        for row in run.rows:
            emit_json_line(row.as_dict())
        return
    if run.rows:
        table(
            ("Message", "Kind", "Done", "Subscriber", "Issue", "Reason"),
            [
                (
                    row.where,
                    row.classification.kind,
                    row.applied.action,
                    ", ".join(row.applied.subscribers) or ", ".join(row.classification.addresses),
                    row.applied.issue or "",
                    row.classification.reason,
                )
                for row in run.rows
            ],
        )
    counts = ", ".join(f"{action} {n}" for action, n in sorted(run.counts().items()))
    prefix = "Dry run, nothing recorded: " if dry_run else ""
    say(f"{prefix}{len(run.rows)} messages in {run.source}" + (f": {counts}." if counts else "."))
    if run.unknown:
        say(f"{run.unknown} could not be classified and stay unseen for you to read.")
    if run.soft_limited:
        say(f"Suppressed after too many soft bounces: {', '.join(run.soft_limited)}.")
