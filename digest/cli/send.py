"""`digest send` and `digest schedule` as a person sees them: prompt, progress, summary.

The work is `pipeline.plan_send` (which only reads) and `pipeline.send_issue`; this module
only talks to the terminal, so the scheduler and the benchmark run the very same send.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli import output
from digest.cli.base import (
    get_config,
    get_database,
    log_format_option,
    main,
    metrics_address_option,
    metrics_port_option,
    use_log_format,
)
from digest.cli.output import say, styled
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.config.schema import Config
    from digest.delivery.engine import Summary
    from digest.issues.send import Outcome, Plan
    from digest.store import lease
    from digest.store.database import Database

FREQUENCIES = click.Choice(["daily", "weekly", "monthly"])


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
@click.option(
    "--frequency", type=FREQUENCIES, default=None, help="Which rhythm (default: schedule's)."
)
@click.option(
    "--resend-unknown",
    "resend",
    metavar="ISSUE",
    default=None,
    help="Queue ISSUE's unknown deliveries again (some may have arrived) and send them.",
)
@click.option(
    "--worker",
    is_flag=True,
    help="Help send the issue another process is sending (PostgreSQL; any machine).",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="With --worker: wait up to SECONDS for an issue to join (default: do not wait).",
)
@log_format_option
@metrics_port_option
@metrics_address_option
@click.pass_context
def send(
    ctx: click.Context,
    dry_run: bool,
    outbox: Path | None,
    to_address: str | None,
    yes: bool,
    frequency: str | None,
    resend: str | None,
    worker: bool,
    wait: float,
    log_format: str,
    metrics_port: int | None,
    metrics_address: str,
) -> None:
    """Send the next digest to every active subscriber (or resume an unfinished one)."""
    if dry_run and to_address is not None:
        raise click.UsageError("--dry-run and --to exclude each other.")
    if resend is not None and (dry_run or to_address is not None):
        raise click.UsageError("--resend-unknown sends for real: not with --dry-run or --to.")
    if worker and (dry_run or to_address or resend or frequency):
        raise click.UsageError(
            "--worker joins the issue being sent: not with --dry-run, --to, --resend-unknown "
            "or --frequency."
        )
    if wait and not worker:
        raise click.UsageError("--wait is for --worker.")
    if metrics_port is not None and not worker:
        raise click.UsageError("--metrics-port is for --worker (and `digest schedule`).")
    from digest.config.presend import check_files, check_sending, check_state_dir
    from digest.issues.send import NothingToSend, plan_send
    from digest.store import lease

    use_log_format(log_format)
    config = get_config(ctx)
    # a missing password file, CA file or DKIM key is named before anything starts (the dry
    # run too: it is the rehearsal of the real send)
    check_files(config)
    if not dry_run:  # a test copy is a real message to a real inbox: the same rules
        check_sending(config)
    if not dry_run and to_address is None:  # where the send keeps each reply it reads
        check_state_dir(config)
    database = get_database(ctx)
    if worker:
        stop_metrics = _metrics(config, database, metrics_port, metrics_address)
        try:
            code = as_worker(config, database, wait)
        finally:
            stop_metrics()
        ctx.exit(code)
    if not dry_run and to_address is None:
        holder = lease.current_holder(database, lease.SEND_LEASE)
        if holder is not None:
            say(_busy(holder))
            return
    try:
        plan = plan_send(config, database, frequency=frequency, resend_unknown=resend)
        if to_address is not None:
            test_copy(config, database, plan, to_address)
        elif dry_run:
            dry_run_to(config, database, plan, outbox)
        else:
            ctx.exit(real_send(config, database, plan, confirm=not yes))
    except NothingToSend as exc:
        say(str(exc))


def _metrics(
    config: Config, database: Database, port: int | None, address: str
) -> Callable[[], None]:
    """Serve this process's metrics on `port` (None: not at all); returns how to stop."""
    if port is None:
        return lambda: None
    from digest.config.credentials import metrics_token
    from digest.issues.schedule import next_runs
    from digest.ops.metrics import process_registry, serve_metrics

    registry = process_registry(database, lambda: next_runs(config, database))
    try:
        return serve_metrics(registry, port, address, config.metrics.allow, metrics_token(config))
    except OSError as exc:
        raise DigestError(
            f"--metrics-port {port}: cannot listen on {address}: {exc.strerror}."
        ) from None


def as_worker(config: Config, database: Database, wait: float) -> int:
    """`digest send --worker`: join the issue being sent; returns the exit code."""
    from digest.issues.join import work
    from digest.ops.metrics import process_metrics
    from digest.store import lease

    tracker = process_metrics().track()
    worked = work(
        config,
        database,
        wait=wait,
        on_join=lambda key: say(f"Joined issue {key} as worker {lease.worker_name()}."),
        on_progress=tracker,
    )
    tracker.finish(worked.summary)
    if worked.key is None:
        waited = f" (waited {wait:g} s)" if wait else ""
        say(f"No issue is being sent{waited}: nothing to join.")
        return worked.exit_code
    summary = worked.summary
    say(
        f"Worker {worked.name} sent {summary.sent} messages of issue {worked.key} "
        f"({summary.deferred} deferred, {summary.failed} failed, {summary.bounced} bounced, "
        f"{summary.unknown} unknown)."
    )
    if summary.paused or summary.stopped:
        say(f"It stopped: {summary.paused or summary.stopped}.")
    return worked.exit_code


def _busy(holder: lease.Holder) -> str:
    return f"Another send is running ({holder.describe()}); nothing was done."


def describe(plan: Plan, config: Config) -> list[str]:
    """What the plan is about to do, in a few lines."""
    lines = []
    target = f"{config.smtp.host}:{config.smtp.port}"
    if plan.edition is not None:
        posts = len(plan.edition.posts)
        held = f"{plan.edition.key} ({posts} post{'s' if posts != 1 else ''})"
        if plan.resumed:
            lines.append(f"Resuming issue {held}: {plan.recipients} to send via {target}.")
            if plan.reason:
                lines.append(f"It was {plan.status}: {plan.reason}.")
        else:
            lines.append(f"New issue {held} to {plan.recipients} subscribers via {target}.")
    elif plan.note:
        lines.append(plan.note)
    if plan.journalled:
        lines.append(
            f"{plan.journalled} messages were in flight when the last send stopped and their "
            "replies are in its journal on this machine: they are recorded from it first."
        )
    if plan.given_back:
        lines.append(
            f"{plan.given_back} messages were marked in flight and never begun, its journal "
            "says: they go back to the queue."
        )
    if plan.lost_in_flight:
        lines.append(
            f"{plan.lost_in_flight} messages were in flight when the last send stopped: they "
            "are recorded as unknown, not sent again (`digest send --resend-unknown` would)."
        )
    if plan.requeued_failed:
        lines.append(
            f"It delivered nothing so far: its {plan.requeued_failed} failed deliveries are "
            "tried again."
        )
    if plan.resend_unknown:
        lines.append(
            f"{plan.resend_unknown} unknown deliveries are sent again, as asked "
            "(some of them may have arrived already)."
        )
    for retry in plan.retries:
        if retry.issue_id != plan.issue_id:
            lines.append(f"Retrying the deferred deliveries of issue {retry.key}.")
    return lines


def real_send(config: Config, database: Database, plan: Plan, *, confirm: bool) -> int:
    """Send the plan for real; returns the exit code."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.prompt import Confirm

    from digest.issues.send import SenderBusy, send_issue

    for line in describe(plan, config):
        say(line)
    if (
        confirm
        and sys.stdin.isatty()
        and not Confirm.ask("Send now?", default=False, console=output.console())
    ):
        say("Nothing sent.")
        return 0
    started = datetime.now(UTC)
    console = output.console("stderr")
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
        key = plan.edition.key if plan.edition else "retries"
        task = progress.add_task(key, total=plan.recipients or None, rate="")

        def update(summary: Summary) -> None:
            elapsed = (datetime.now(UTC) - started).total_seconds()
            rate = f"{summary.done / elapsed:,.0f} msg/s" if elapsed > 0 else ""
            progress.update(task, completed=summary.done, rate=rate)

        try:
            sent = send_issue(config, database, plan, on_progress=update)
        except SenderBusy as busy:
            say(_busy(busy.holder))
            return 0
    if sent.note and plan.edition is not None and not sent.outcomes:
        say(sent.note)
    for outcome in sent.outcomes:
        _print_summary(outcome)
        say(_verdict(outcome))
    return sent.exit_code


def _verdict(outcome: Outcome) -> str:
    what = (
        f"deferred deliveries of issue {outcome.key}" if outcome.retry else f"issue {outcome.key}"
    )
    if outcome.status == "finished":
        return f"Finished {what}."
    if outcome.status == "stopped":
        return f"Stopped {what}: {outcome.reason}. Run `digest send` again to resume."
    if outcome.status == "paused":
        return (
            f"Paused {what}: {outcome.reason}. Fix the cause and run `digest send` again to "
            "resume where it stopped."
        )
    return (
        f"Issue {outcome.key} is still sending: {outcome.reason}; `digest send` and "
        "`digest schedule` retry them."
    )


def _print_summary(outcome: Outcome) -> None:
    summary = outcome.summary
    columns = ("Sent", "Deferred", "Failed", "Bounced", "Unknown", "Skipped", "Elapsed", "Rate")
    row = [
        str(summary.sent),
        str(summary.deferred),
        str(summary.failed),
        str(summary.bounced),
        str(summary.unknown),
        str(summary.skipped),
        f"{summary.elapsed:.1f} s",
        f"{summary.rate:,.0f}/s",
    ]
    output.table(
        [{"header": column, "justify": "right"} for column in columns],
        [row],
        title=styled(f"Issue {outcome.key}"),
        show_header=True,
    )


def dry_run_to(config: Config, database: Database, plan: Plan, outbox: Path | None) -> None:
    """Every message exactly as it would go out, as .eml files; no state changes."""
    from digest.issues.send import NothingToSend, send_issue

    if plan.edition is None:
        raise NothingToSend(plan.note or "Nothing to send.")
    folder = outbox or config.path(config.outbox) / plan.edition.key
    sent = send_issue(config, database, plan, outbox=folder)
    summary = sent.outcomes[0].summary
    if summary.paused:
        raise DigestError(f"{summary.paused}.")
    what = describe(plan, config)[0].rstrip(".")
    say(f"Dry run: {what}; nothing was sent.")
    skipped = f" ({summary.skipped} skipped: no new posts in their categories)"
    say(f"Wrote {len(sent.written)} messages to {folder}/" + (skipped if summary.skipped else ""))
    say(f"Preview: {folder / 'preview.html'}")


def test_copy(config: Config, database: Database, plan: Plan, address: str) -> None:
    """One copy of the next issue to one address, outside the ledger."""
    from digest.issues.testcopy import send_test_copy

    email, key = send_test_copy(config, database, plan, address)
    say(f"Sent a test copy of {key} to {email}.")


@main.command()
@log_format_option
@metrics_port_option
@metrics_address_option
@click.pass_context
def schedule(
    ctx: click.Context, log_format: str, metrics_port: int | None, metrics_address: str
) -> None:
    """Run the scheduler in the foreground (stop with Ctrl-C or SIGTERM)."""
    import logging

    from digest.config.cron import rhythms
    from digest.config.files import find_config
    from digest.config.presend import check_files, check_sending, check_state_dir
    from digest.issues.schedule import serve_forever
    from digest.ops.logs import configure

    config = get_config(ctx)
    check_files(config)  # a missing password file or key is named before anything starts
    check_sending(config)  # no plain-http unsubscribe links, no password in clear
    check_state_dir(config)  # where its sends keep each reply they read
    rhythms(
        config.schedule, config.schedule_tz
    )  # a bad cron or preset is a configuration error before anything starts
    configure("json" if log_format == "json" else "text")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop_metrics = _metrics(config, get_database(ctx), metrics_port, metrics_address)
    try:
        serve_forever(config, find_config(ctx.find_root().obj["config_path"]))
    finally:
        stop_metrics()
