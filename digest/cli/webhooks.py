"""`digest webhooks list|retry|test`: the outgoing webhooks' outbox and receivers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from digest.cli.base import get_config, get_database, main
from digest.cli.output import emit_json, say, table
from digest.errors import DigestError


@main.group()
def webhooks() -> None:
    """Outgoing event webhooks (`webhooks:` in config.yaml)."""


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.pass_context
def listing(ctx: click.Context, as_json: bool, limit: int) -> None:
    """The configured receivers and the latest messages of the outbox, newest first."""
    from digest.store.webhooks import listing as outbox

    config = get_config(ctx)
    with get_database(ctx).session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": row.msg_id,
                "url": row.url,
                "type": row.event_type,
                "attempts": row.attempts,
                "state": "delivered"
                if row.delivered_at
                else "gave up"
                if row.gave_up_at
                else "pending",
                "next_attempt_at": row.next_attempt_at.isoformat(),
                "last_error": row.last_error,
            }
            for row in outbox(session, limit)
        ]
    if as_json:
        emit_json({"receivers": [h.url for h in config.webhooks], "messages": rows})
        return
    if not config.webhooks:
        say("No webhooks are configured.")
    for hook in config.webhooks:
        say(f"{hook.url}  ({', '.join(hook.events) or 'every event'})")
    if rows:
        columns = [{"header": h} for h in ("Id", "Type", "State", "Attempts", "Last error")]
        table(
            columns,
            [
                [str(r[k] or "") for k in ("id", "type", "state", "attempts", "last_error")]
                for r in rows
            ],
        )


@webhooks.command()
@click.pass_context
def retry(ctx: click.Context) -> None:
    """Post every undelivered message now (those still within their 24 hours)."""
    from digest.config.sending import webhook_settings
    from digest.delivery.webhooks import deliver, receivers
    from digest.store.webhooks import retry_all

    config = get_config(ctx)
    hooks = webhook_settings(config)
    database = get_database(ctx)
    with database.session() as session:
        retry_all(session, receivers(hooks), datetime.now(UTC))
    delivered, failed = deliver(database, hooks, lambda: datetime.now(UTC))
    say(f"{delivered} delivered, {failed} failed (tried again later).")
    if failed:
        ctx.exit(1)


@webhooks.command()
@click.pass_context
def test(ctx: click.Context) -> None:
    """Post a signed `test` message to every receiver now and show each answer."""
    import httpx

    from digest.config.sending import webhook_settings
    from digest.delivery.webhooks import TIMEOUT, post
    from digest.store.webhooks import Due

    hooks = webhook_settings(get_config(ctx))
    if not hooks:
        raise DigestError("no webhooks are configured (webhooks: in config.yaml).")
    now = datetime.now(UTC)
    body = json.dumps({"type": "test", "timestamp": now.isoformat(), "data": {}})
    failed = 0
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
        for hook in hooks:
            item = Due(0, hook.url, f"msg_test_{int(now.timestamp())}", body)
            error = post(client, item, hook.secret, now)
            say(f"{hook.url}: {error or 'ok'}")
            failed += error is not None
    if failed:
        ctx.exit(1)
