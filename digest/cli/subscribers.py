"""`digest subscribers`: add, remove, list, import and export subscribers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from digest.cli.base import get_database, main
from digest.cli.output import emit_data, emit_json, note, say, table, warn
from digest.errors import DigestError

# The statuses `subscribers list --status` offers: digest.store.tables.Status but `erased` (a
# tombstone), written out so that loading the command does not load the database layer
# (tests/cli/test_startup.py checks the two agree).
LISTED_STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")


@main.group()
def subscribers() -> None:
    """Add, remove, list, import and export subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default=None, help="Display name (used in the greeting).")
@click.option("--locale", type=click.Choice(["zh", "en"]), default=None)
@click.option("--categories", default=None, help='Only these categories, e.g. "Python;机器学习".')
@click.pass_context
def subscribers_add(
    ctx: click.Context, email: str, name: str | None, locale: str | None, categories: str | None
) -> None:
    """Add an active subscriber (you vouch for their consent)."""
    from digest.audience.addresses import InvalidAddress, parse_categories
    from digest.store import subscribers as people

    try:
        with get_database(ctx).session() as session:
            person = people.add(
                session,
                email,
                name=name,
                locale=locale,
                categories=parse_categories(categories),
                method="cli",
            )
            address = person.email
    except InvalidAddress as exc:
        raise DigestError(f"{email!r} is not a valid address: {exc}.") from None
    say(f"Added {address}.")


@subscribers.command("remove")
@click.argument("email")
@click.option(
    "--erase", is_flag=True, help="Delete their record entirely instead of unsubscribing."
)
@click.pass_context
def subscribers_remove(ctx: click.Context, email: str, erase: bool) -> None:
    """Unsubscribe someone (kept on the suppression list), or erase them."""
    from digest.audience.addresses import InvalidAddress, normalise_email
    from digest.store import subscribers as people

    try:
        address = normalise_email(email)
    except InvalidAddress as exc:
        raise DigestError(f"{email!r} is not a valid address: {exc}.") from None
    with get_database(ctx).session() as session:
        person = people.find(session, address)
        if person is None:
            raise DigestError(f"{address} is not a subscriber.")
        if erase:
            people.erase(session, person)
            say(
                f"Erased {address} and their personal data (kept: anonymous delivery counts "
                "and a hash of the address, so that it is not added again)."
            )
        elif people.unsubscribe(session, person, "cli"):
            say(f"Unsubscribed {address}.")
        else:
            say(f"{address} was already unsubscribed.")


@subscribers.command("list")
@click.option(
    "--status",
    type=click.Choice(LISTED_STATUSES),
    default=None,
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def subscribers_list(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List subscribers (all, or those with one status); suppressed ones with their reason."""
    from digest.store import subscribers as people
    from digest.store.suppressed import reasons

    with get_database(ctx).session() as session:
        listed = people.listing(session, status)
        why = reasons(session, listed)
        rows: list[dict[str, Any]] = [
            {
                "id": s.id,
                "email": s.email,
                "name": s.name,
                "status": s.status,
                "locale": s.locale,
                "categories": s.categories or [],
                "paused": s.paused,
                "created_at": s.created_at.isoformat(),
                "reason": why[s.id].as_json() if s.id in why else None,
            }
            for s in listed
        ]
    if as_json:
        emit_json(rows)
        return
    with_reason = any(row["reason"] for row in rows)  # the column only when a row has one
    table(
        ("Email", "Name", "Status", "Locale", "Categories", *(["Reason"] if with_reason else [])),
        (
            (
                row["email"],
                row["name"],
                row["status"] + (" (paused)" if row["paused"] else ""),
                row["locale"] or "",
                ";".join(row["categories"]),
                *([_reason(row["reason"])] if with_reason else []),
            )
            for row in rows
        ),
        expand=False,
    )
    say(f"{len(rows)} subscribers.")


def _reason(reason: dict[str, Any] | None) -> str:
    if reason is None:
        return ""
    where = f" ({reason['issue']})" if reason["issue"] else ""
    detail = f": {reason['detail']}" if reason["detail"] else ""
    return f"{reason['kind']} by {reason['method']}{where}{detail}"


@subscribers.command("reactivate")
@click.argument("email")
@click.pass_context
def subscribers_reactivate(ctx: click.Context, email: str) -> None:
    """Restore a wrongly bounced or complained address (recorded as an event)."""
    from digest.store import bounces
    from digest.store.suppressed import reactivate
    from digest.store.tables import Status

    with get_database(ctx).session() as session:
        person = bounces.by_address(session, email)
        if person is None:
            raise DigestError(f"{email.strip()} is not a subscriber.")
        address, was = person.email, person.status
        if not reactivate(session, person):
            if was == Status.UNSUBSCRIBED:
                raise DigestError(
                    f"{address} unsubscribed; only they can subscribe again "
                    "(through a preferences link or the sign-up form)."
                )
            raise DigestError(f"{address} is {was}, not bounced or complained.")
    say(f"Reactivated {address} (was {was}).")


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def subscribers_import(ctx: click.Context, file: Path) -> None:
    """Import a CSV: digest's own (email, name, locale, categories, status) or an export of
    Mailchimp, Substack, Buttondown, listmonk or Ghost. Bad rows are named and skipped."""
    from digest.audience.csvfile import ImportReport
    from digest.audience.imports import read
    from digest.store import subscribers as people

    shape, parsed = read(file)
    problems = parsed.problems
    if shape != "digest":
        note(f"{file}: recognised a {shape} export.")
    report = ImportReport(problems=problems)
    with get_database(ctx).session() as session:
        people.import_rows(session, parsed.rows, report, path=file)
    for problem in report.problems:
        warn(problem)
    skipped = len(report.problems) + problems.total - len(problems)  # import_rows may add
    if problems.total > len(problems):
        warn(f"{file}: {problems.total - len(problems):,} more bad rows, not listed.")
    for left in parsed.left_out:
        note(left)
    if parsed.left_out.total > len(parsed.left_out):
        note(f"{file}: {parsed.left_out.total - len(parsed.left_out):,} more rows left out.")
    left_out = f", {parsed.left_out.total} left out" if parsed.left_out.total else ""
    say(
        f"Imported {file}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {skipped} rows skipped{left_out}."
    )
    if skipped:
        ctx.exit(1)


@subscribers.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.pass_context
def subscribers_export(ctx: click.Context, file: Path | None) -> None:
    """Export every subscriber as CSV, to FILE or standard output."""
    import io

    from digest.audience.csvfile import export_csv
    from digest.store import subscribers as people

    out = io.StringIO()
    with get_database(ctx).session() as session:
        count = export_csv(people.listing(session), out)
    if file is None:
        emit_data(out.getvalue())
        return
    try:
        file.write_text(out.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise DigestError(f"{file}: cannot write: {exc.strerror}.") from None
    note(f"Exported {count} subscribers to {file}.")
