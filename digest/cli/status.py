"""Commands that watch sending: `status` (now and next) and `report` (per issue)."""

from __future__ import annotations

from typing import Any

import click

from digest.cli.base import get_config, get_database, main
from digest.cli.output import emit_json, error, say, table
from digest.errors import DigestError
from digest.next_issue import next_issue

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
        emit_json(payload[0] if issue else payload)
        return
    if not found:
        say("No issues yet.")
        return
    columns = [
        {"header": column, "justify": "left" if column in ("Issue", "Status") else "right"}
        for column in (
            "Issue",
            "Status",
            "Posts",
            "Recipients",
            *COLUMNS,
            *RETURNED,
            "Unsubscribes",
        )
    ]
    rows = []
    for r in found:
        by_method = ", ".join(f"{m} {n}" for m, n in sorted(r.unsubscribes.items()))
        unsubscribes = f"{sum(r.unsubscribes.values())}" + (f" ({by_method})" if by_method else "")
        rows.append(
            [
                r.key,
                r.status,
                str(r.posts),
                str(r.recipients),
                *(str(r.count(c.lower())) for c in COLUMNS),
                *(str(r.returned.get(kind, 0)) for kind in RETURNED.values()),
                unsubscribes,
            ]
        )
    table(columns, rows)
    _explain_unknown(found)


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
    from digest.schedule import next_runs
    from digest.store import lease, ledger
    from digest.store import subscribers as people
    from digest.store.report import reports

    config = get_config(ctx)
    database = get_database(ctx)
    with database.session() as session:
        latest = reports(session, limit=5)
        unfinished = ledger.unfinished_issues(session)
        deferred = ledger.deferred(session, [i.id for i in unfinished])
        audience = people.counts(session)
    gathered = next_issue(config, database)
    holder = lease.current_holder(database, lease.SEND_LEASE)
    runs = next_runs(config, database)
    waiting = sum(d.count for d in deferred)
    next_retry = min((d.next_attempt_at for d in deferred), default=None)
    first = unfinished[0] if unfinished else None
    data: dict[str, Any] = {
        "issues": [r.as_json() for r in latest],
        "next_runs": {f: moment.isoformat() for f, moment in runs.items()},
        "lease": {
            "holder": holder.name,
            "since": holder.since.isoformat(),
            "expires_at": holder.expires_at.isoformat(),
        }
        if holder
        else None,
        "posts_waiting": len(gathered.new),
        "unfinished": {"key": first.key, "status": first.status, "reason": first.paused_reason}
        if first
        else None,
        "deferred": {
            "count": waiting,
            "next_retry": next_retry.isoformat() if next_retry else None,
            "issues": {d.key: d.count for d in deferred},
        },
        "subscribers": audience,
        "source_failures": gathered.source.failures,
    }
    if as_json:
        emit_json(data)
        return
    tz = config.schedule_tz
    for frequency_name, moment in runs.items():
        say(f"Next {frequency_name} run: {moment.strftime('%Y-%m-%d %H:%M %Z (%A)')}")
    if holder:
        since = holder.since.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        say(f"Sending now: {holder.name} holds the send lease (since {since}).")
    else:
        say("Nobody is sending right now.")
    say(f"Posts waiting for the next digest: {len(gathered.new)}")
    active = audience.get("active", 0)
    say(f"Subscribers: {active} active, {sum(audience.values()) - active} other.")
    for issue in unfinished:
        why = f": {issue.paused_reason}" if issue.paused_reason else ""
        say(f"Issue {issue.key} is {issue.status}{why}", style="bold yellow")
    if next_retry is not None:
        local = next_retry.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        say(f"Deferred deliveries: {waiting}; the next retry at {local}.")
    for failure in gathered.source.failures:
        error(failure)
    if latest:
        table(
            ("Issue", "Status", "Recipients", *COLUMNS),
            [
                [r.key, r.status, str(r.recipients), *(str(r.count(c.lower())) for c in COLUMNS)]
                for r in latest
            ],
            title="Latest issues",
        )
        _explain_unknown(latest)
    else:
        say("No issues sent yet.")
