"""The `digest` command: thin commands over the library (DESIGN.md section 6).

Exit codes: 0 success (including "nothing new"), 1 runtime failure, 2 bad usage or invalid
configuration. Errors are one sentence on stderr; a traceback only with DIGEST_DEBUG=1.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from digest import __version__
from digest.config import Config, load_config
from digest.db import Database, Status, open_database
from digest.errors import DigestError
from digest.excerpt import make_excerpt
from digest.models import Candidate, SourceResult
from digest.pipeline import gather

err = Console(stderr=True, highlight=False, soft_wrap=True)


class DigestGroup(click.Group):
    """Turns every DigestError into one sentence and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            _error(exc.message)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            _error("interrupted.")
            ctx.exit(130)
        except Exception as exc:  # the last line of defence: no traceback reaches a user
            if os.environ.get("DIGEST_DEBUG"):
                raise
            _error(f"unexpected {type(exc).__name__}: {exc} (set DIGEST_DEBUG=1 for details).")
            ctx.exit(1)


def _error(message: str) -> None:
    err.print(f"[bold red]digest: error:[/] {message}", markup=True, highlight=False)


def _warn(message: str) -> None:
    err.print(f"[yellow]digest: warning:[/] {_escape(message)}", markup=True, highlight=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default: ./config.yaml, then $DIGEST_CONFIG).",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Turn a blog's new posts into an email digest and send it to subscribers."""
    ctx.obj = {"config_path": config_path}


def get_config(ctx: click.Context) -> Config:
    root = ctx.find_root()
    if "config" not in root.obj:
        root.obj["config"] = load_config(root.obj["config_path"])
    config: Config = root.obj["config"]
    return config


def report_sources(source: SourceResult) -> None:
    """Warn about every skipped post; failed sources are errors (the caller sets the exit code)."""
    for problem in source.problems:
        _warn(str(problem))
    for failure in source.failures:
        _error(_escape(failure))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Also list posts that are not new, and why.")
@click.pass_context
def posts(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """List the posts the next digest would hold, newest first."""
    config = get_config(ctx)
    gathered = gather(config)
    report_sources(gathered.source)
    chosen = gathered.candidates if show_all else gathered.new
    max_posts = config.digest.max_posts
    shown_ids = {c.post.id for c in gathered.new[:max_posts]}
    if as_json:
        rows = [_as_json(c, c.post.id in shown_ids, show_all) for c in chosen]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        _print_table(chosen, shown_ids, show_all, overflow=max(0, len(gathered.new) - max_posts))
    if gathered.source.failures:
        ctx.exit(1)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _as_json(candidate: Candidate, shown: bool, with_status: bool) -> dict[str, Any]:
    post = candidate.post
    row: dict[str, Any] = {
        "id": post.id,
        "title": post.title,
        "url": post.url,
        "date": _iso(post.date),
        "category": post.category,
        "categories": list(post.categories),
        "tags": list(post.tags),
        "excerpt": candidate.excerpt,
        "shown": shown,
    }
    if with_status:
        row["status"] = candidate.status
    return row


def _print_table(
    candidates: list[Candidate], shown_ids: set[str], show_all: bool, overflow: int
) -> None:
    out = Console(highlight=False, soft_wrap=False)
    if not candidates:
        out.print("Nothing new since the last digest.")
        return
    table = Table(show_lines=True, expand=True)
    table.add_column("Date", no_wrap=True)
    table.add_column("Category", no_wrap=True)
    table.add_column("Title / excerpt", ratio=1)
    if show_all:
        table.add_column("Status", no_wrap=True)
    for candidate in candidates:
        post = candidate.post
        date = post.date.strftime("%Y-%m-%d") if post.date else "—"
        title, url, text = (_escape(v) for v in (post.title, post.url, candidate.excerpt))
        cell = f"[bold]{title}[/]\n[dim]{url}[/]\n{text}"
        status: str = candidate.status
        if status == "new" and post.id not in shown_ids:
            status = "new (overflow)"
        row = [date, _escape(post.category or "—"), cell] + ([status] if show_all else [])
        table.add_row(*row)
    out.print(table)
    if overflow:
        out.print(f"+ {overflow} more new posts, listed in the digest's overflow line.")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--length", type=click.IntRange(min=1), default=350, show_default=True)
@click.option("--locale", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def excerpt(file: Path, length: int, locale: str) -> None:
    """Print one Markdown post's excerpt."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DigestError(f"{file}: the file is not valid UTF-8.") from None
    try:
        click.echo(make_excerpt(text, length=length, locale=locale))
    except DigestError as exc:
        raise DigestError(f"{file}: {exc.message}.") from None


def get_database(ctx: click.Context) -> Database:
    """The configured database, migrated to the current schema (once per command)."""
    root = ctx.find_root()
    if "database" not in root.obj:
        root.obj["database"] = open_database(get_config(ctx).database_url)
        ctx.call_on_close(root.obj["database"].dispose)
    database: Database = root.obj["database"]
    return database


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply pending migrations."""
    from digest.db import connect
    from digest.db import upgrade as apply_migrations

    database = connect(get_config(ctx).database_url)
    try:
        before, after = apply_migrations(database)
    except SQLAlchemyError as exc:
        raise DigestError(f"the migration failed: {_first_line(exc)}.") from None
    finally:
        database.dispose()
    if before == after:
        click.echo(f"The database is up to date (revision {after}).")
    else:
        click.echo(f"Upgraded the database from revision {before or 'none'} to {after}.")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
    from digest import subscribers as people

    try:
        with get_database(ctx).session() as session:
            person = people.add(
                session,
                email,
                name=name,
                locale=locale,
                categories=people.parse_categories(categories),
                method="cli",
            )
            address = person.email
    except people.InvalidAddress as exc:
        raise DigestError(f"{email!r} is not a valid address: {exc}.") from None
    click.echo(f"Added {address}.")


@subscribers.command("remove")
@click.argument("email")
@click.option(
    "--erase", is_flag=True, help="Delete their record entirely instead of unsubscribing."
)
@click.pass_context
def subscribers_remove(ctx: click.Context, email: str, erase: bool) -> None:
    """Unsubscribe someone (kept on the suppression list), or erase them."""
    from digest import subscribers as people

    try:
        address = people.normalise_email(email)
    except people.InvalidAddress as exc:
        raise DigestError(f"{email!r} is not a valid address: {exc}.") from None
    with get_database(ctx).session() as session:
        person = people.find(session, address)
        if person is None:
            raise DigestError(f"{address} is not a subscriber.")
        if erase:
            session.delete(person)
            click.echo(f"Erased {address} and their personal data.")
        elif people.unsubscribe(session, person, "cli"):
            click.echo(f"Unsubscribed {address}.")
        else:
            click.echo(f"{address} was already unsubscribed.")


@subscribers.command("list")
@click.option("--status", type=click.Choice([s.value for s in Status]), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def subscribers_list(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List subscribers (all, or those with one status)."""
    from digest import subscribers as people

    with get_database(ctx).session() as session:
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
            }
            for s in people.listing(session, status)
        ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(expand=False)
    for column in ("Email", "Name", "Status", "Locale", "Categories"):
        table.add_column(column)
    for row in rows:
        state = row["status"] + (" (paused)" if row["paused"] else "")
        table.add_row(
            _escape(row["email"]),
            _escape(row["name"]),
            state,
            row["locale"] or "",
            _escape(";".join(row["categories"])),
        )
    Console(highlight=False).print(table)
    click.echo(f"{len(rows)} subscribers.")


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def subscribers_import(ctx: click.Context, file: Path) -> None:
    """Import a CSV (email, name, locale, categories, status); bad rows are named and skipped."""
    from digest import subscribers as people

    rows, problems = people.read_csv(file)
    report = people.ImportReport(problems=problems)
    with get_database(ctx).session() as session:
        people.import_rows(session, rows, report)
    for problem in report.problems:
        _warn(problem)
    click.echo(
        f"Imported {file}: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.problems)} rows skipped."
    )
    if report.problems:
        ctx.exit(1)


@subscribers.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.pass_context
def subscribers_export(ctx: click.Context, file: Path | None) -> None:
    """Export every subscriber as CSV, to FILE or standard output."""
    import io

    from digest import subscribers as people

    out = io.StringIO()
    with get_database(ctx).session() as session:
        count = people.export_csv(people.listing(session), out)
    if file is None:
        click.echo(out.getvalue(), nl=False)
        return
    try:
        file.write_text(out.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise DigestError(f"{file}: cannot write: {exc.strerror}.") from None
    err.print(f"Exported {count} subscribers to {file}.")


@main.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report(ctx: click.Context, issue: str | None, as_json: bool) -> None:
    """Sent, failed, bounced and unsubscribes per issue (the latest ones, or ISSUE)."""
    from digest.report import reports

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


@main.group()
def dkim() -> None:
    """DKIM keys for signing the digest."""


@dkim.command()
@click.option("--selector", default=None, help="DNS selector (default: digest<year>).")
@click.option("--domain", default=None, help="Signing domain (default: the sender's domain).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the private key (default: var/dkim next to the config).",
)
@click.option("--ed25519", is_flag=True, help="An Ed25519 key (a second signature) instead.")
@click.pass_context
def keygen(
    ctx: click.Context,
    selector: str | None,
    domain: str | None,
    out_dir: Path | None,
    ed25519: bool,
) -> None:
    """Write a new key pair and print the DNS TXT record to publish."""
    import os
    from datetime import date

    from digest import dkim as keys

    config = get_config(ctx)
    domain = domain or config.sender.domain
    selector = selector or f"digest{date.today().year}{'e' if ed25519 else ''}"
    folder = out_dir or config.path("var/dkim")
    key = keys.generate("ed25519" if ed25519 else "rsa")
    path = folder / f"{selector}.private.pem"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(keys.private_pem(key))
    except FileExistsError:
        raise DigestError(f"{path} already exists; choose another --selector.") from None
    except OSError as exc:
        raise DigestError(f"{path}: cannot write the key: {exc.strerror}.") from None
    err.print(f"Wrote the private key to {path} (keep it secret).")
    err.print("Publish this DNS record:")
    click.echo(keys.dns_record(selector, domain, key))
    prefix = "ed25519_" if ed25519 else ""
    err.print("Then add to config.yaml:")
    err.print(
        f"dkim:\n  domain: {domain}\n  {prefix}selector: {selector}\n  {prefix}key_file: {path}",
        markup=False,
    )


@main.command()
@click.pass_context
def schedule(ctx: click.Context) -> None:
    """Run the scheduler in the foreground (stop with Ctrl-C or SIGTERM)."""
    import logging

    from digest.config import find_config
    from digest.schedule import rhythms, serve_forever

    config = get_config(ctx)
    rhythms(config)  # a bad cron or preset is a configuration error before anything starts
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    serve_forever(config, find_config(ctx.find_root().obj["config_path"]))


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Last issues, next scheduled run, who holds the send lease, posts waiting."""
    from digest import lease, ledger
    from digest import subscribers as people
    from digest.report import reports
    from digest.schedule import next_runs

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
        out.print(f"Sending now: {_escape(holder.name)} holds the send lease (until {local}).")
    else:
        out.print("No scheduler is sending right now.")
    out.print(f"Posts waiting for the next digest: {len(gathered.new)}")
    active = audience.get("active", 0)
    out.print(f"Subscribers: {active} active, {sum(audience.values()) - active} other.")
    if unfinished:
        why = f": {_escape(unfinished.paused_reason)}" if unfinished.paused_reason else ""
        out.print(f"[bold yellow]Issue {unfinished.key} is {unfinished.status}{why}[/]")
    for failure in gathered.source.failures:
        _error(_escape(failure))
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


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write issue.html, issue.txt and issue.mjml into.",
)
@click.option(
    "--locale", type=click.Choice(["zh", "en"]), default=None, help="Default: site.locale."
)
@click.pass_context
def render(ctx: click.Context, out_dir: Path, locale: str | None) -> None:
    """Write the next digest's HTML, text and MJML (placeholders instead of personal links)."""
    from digest.pipeline import next_edition
    from digest.render import render as render_edition

    config = get_config(ctx)
    gathered = gather(config)
    report_sources(gathered.source)
    if gathered.source.failures:
        ctx.exit(1)
    if not gathered.new:
        click.echo("Nothing new since the last digest; nothing rendered.")
        return
    rendered = render_edition(config, next_edition(gathered, config), locale)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in (
            ("issue.html", rendered.html),
            ("issue.txt", rendered.text),
            ("issue.mjml", rendered.mjml),
        ):
            (out_dir / name).write_text(content, encoding="utf-8")
    except OSError as exc:
        raise DigestError(f"{out_dir}: cannot write the rendered issue: {exc.strerror}.") from None
    size = len(rendered.html.encode())
    click.echo(f"Subject: {rendered.subject}")
    click.echo(f"Wrote {out_dir}/issue.html ({size / 1024:.1f} KB), issue.txt and issue.mjml.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Run the public web app: unsubscribe, preferences, sign-up and the archive."""
    import uvicorn

    from digest.web.public import create_public_app

    config = get_config(ctx)
    app = create_public_app(config, get_database(ctx))
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Serving {config.web.base_url} at http://{shown}:{port}/ (Ctrl+C to stop).")
    uvicorn.run(app, host=host, port=port, log_level="info")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.pass_context
def preview(ctx: click.Context, host: str, port: int) -> None:
    """Show the next digest in a browser (read-only, re-rendered on every reload)."""
    import uvicorn

    from digest.web.archive import DatabaseArchive
    from digest.web.preview import LOOPBACK_NAMES, create_preview_app

    config = get_config(ctx)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    app = create_preview_app(
        config,
        DatabaseArchive(get_database(ctx), config),
        allowed_hosts=LOOPBACK_NAMES if loopback else None,
    )
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Previewing the next digest at http://{shown}:{port}/ (Ctrl+C to stop).")
    uvicorn.run(app, host=host, port=port, log_level="info")


def run() -> None:
    main(prog_name="digest")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
