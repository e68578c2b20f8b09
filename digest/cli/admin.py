"""`digest admin`: the owner's side of digest — API tokens now (`admin token create|list|
revoke`); administrators of the desk join this group later."""

from __future__ import annotations

from typing import Any

import click

from digest.cli.base import get_database, main
from digest.cli.output import emit_json, note, say


@main.group()
def admin() -> None:
    """Who may use the owner's side of digest: API tokens."""


@admin.group()
def token() -> None:
    """Bearer tokens for the HTTP API (/api/v1/)."""


@token.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "write"]),
    required=True,
    help="read: GET only; write: also add, change and remove subscribers.",
)
@click.option(
    "--allow-confirmed",
    is_flag=True,
    help="May add people as already confirmed (you vouch for their consent); needs write.",
)
@click.option(
    "--per-minute",
    type=int,
    default=600,
    show_default=True,
    help="Requests per minute before the API answers 429.",
)
@click.pass_context
def token_create(
    ctx: click.Context, name: str, scope: str, allow_confirmed: bool, per_minute: int
) -> None:
    """Make a token NAME and print it: it is shown this once (only its hash is kept)."""
    from digest.access import tokens

    with get_database(ctx).session() as session:
        secret = tokens.create(
            session, name, scope=scope, allow_confirmed=allow_confirmed, per_minute=per_minute
        )
    may = ", may add confirmed subscribers" if allow_confirmed else ""
    note(f"Token {name} ({scope}{may}, {per_minute} requests a minute); it is not shown again:")
    say(secret)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """Every token made, revoked ones too: name, scope, last use."""
    from digest.access import tokens

    with get_database(ctx).session() as session:
        listed = tokens.listing(session)
    rows: list[dict[str, Any]] = [
        {
            "name": t.name,
            "starts": t.hint,
            "scope": t.scope,
            "allow_confirmed": t.allow_confirmed,
            "per_minute": t.per_minute,
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in listed
    ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        say("No tokens yet: `digest admin token create NAME --scope read|write`.")
        return
    for row in rows:  # one line each: fits 80 columns
        scope = row["scope"] + (" +confirmed" if row["allow_confirmed"] else "")
        used = (row["last_used_at"] or "never")[:16].replace("T", " ")
        state = f"revoked {row['revoked_at'][:10]}" if row["revoked_at"] else "active"
        say(
            f"{row['name']}  {row['starts']}…  {scope}  {row['per_minute']}/min  "
            f"last used {used}  {state}"
        )


@token.command("revoke")
@click.argument("name")
@click.pass_context
def token_revoke(ctx: click.Context, name: str) -> None:
    """Revoke token NAME: its next request is refused (401)."""
    from digest.access import tokens

    with get_database(ctx).session() as session:
        changed = tokens.revoke(session, name)
    say(f"Revoked token {name}." if changed else f"Token {name} was already revoked.")
