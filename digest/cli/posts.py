"""Commands that read the blog: `posts`, `excerpt`, `render` and `preview`."""

from __future__ import annotations

import html
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest.cli.base import (
    editorial_peek,
    get_config,
    get_database,
    get_known,
    main,
    report_sources,
    sent_posts,
)
from digest.cli.output import emit_json, say, styled, table
from digest.errors import DigestError
from digest.excerpt.settings import DEFAULT_LENGTH, MATH_MODES, MathMode

if TYPE_CHECKING:
    from rich.text import Text

    from digest.config.snapshot import Known
    from digest.issues.upcoming import Excerpts, Gathered
    from digest.models import Candidate


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Also list posts that are not new, and why.")
@click.option(
    "--refresh", is_flag=True, help="Parse every post again, ignoring (and rebuilding) the cache."
)
@click.pass_context
def posts(ctx: click.Context, as_json: bool, show_all: bool, refresh: bool) -> None:
    """List the posts the next digest would hold, newest first."""
    from digest.issues.upcoming import nothing_new

    known = get_known(ctx)
    if refresh:
        from digest.sources.cache import forget as forget_posts

        forget_posts(known.issues.sources)
    # Excerpts are made for the posts the digest gives a block (or every post, with --all):
    # the overflow, which the digest names only in its "more posts" line, is listed without.
    excerpts: Excerpts = "all" if show_all else "shown"
    gathered = _next_issue(ctx, known, excerpts)
    report_sources(gathered.source)
    chosen = gathered.candidates if show_all else gathered.new
    max_posts = known.issues.max_posts
    shown_ids = {c.post.id for c in gathered.shown(max_posts)}
    if as_json:
        rows = [_as_json(c, c.post.id in shown_ids, show_all) for c in chosen]
        emit_json(rows)
    else:
        _print_table(chosen, shown_ids, show_all, overflow=len(gathered.overflow(max_posts)))
        if not gathered.new:
            say(nothing_new(gathered, known.issues))
    if gathered.source.failures:
        ctx.exit(1)


def _next_issue(ctx: click.Context, known: Known, excerpts: Excerpts) -> Gathered:
    """The next issue, the posts already sent read without the database layer when it can be
    (cli.base.sent_posts, and the held posts and the note with cli.base.editorial_peek),
    else from the database."""
    from digest.issues.upcoming import next_issue

    settings = known.issues
    frequency = settings.frequency
    sent = sent_posts(ctx, known, frequency)
    said = editorial_peek(ctx, known, frequency) if sent is not None else None
    if sent is None or said is None:
        return next_issue(settings, get_database(ctx), frequency=frequency, excerpts=excerpts)
    held, note = said
    return next_issue(
        settings, None, frequency=frequency, sent=sent, held=held, note=note, excerpts=excerpts
    )


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
        "excerpt": candidate.excerpt or "",
        "shown": shown,
    }
    if with_status:
        row["status"] = candidate.status
    return row


def _print_table(
    candidates: list[Candidate], shown_ids: set[str], show_all: bool, overflow: int
) -> None:
    if not candidates:
        return
    columns: list[str | dict[str, Any]] = [
        {"header": "Date", "no_wrap": True},
        {"header": "Category", "no_wrap": True},
        {"header": "Title / excerpt", "ratio": 1},
    ]
    if show_all:
        columns.append({"header": "Status", "no_wrap": True})
    rows: list[list[str | Text]] = []
    for candidate in candidates:
        post = candidate.post
        date = post.date.strftime("%Y-%m-%d") if post.date else "—"
        excerpt = () if candidate.excerpt is None else ("\n", candidate.excerpt)
        cell = styled((post.title, "bold"), "\n", (post.url, "dim"), *excerpt)
        status: str = candidate.status
        if status == "new" and post.id not in shown_ids:
            status = "new (overflow)"
        row: list[str | Text] = [date, post.category or "—", cell]
        rows.append([*row, status] if show_all else row)
    table(columns, rows, show_lines=True, expand=True)
    if overflow:
        say(f"+ {overflow} more new posts, listed in the digest's overflow line.")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--length",
    type=click.IntRange(min=1),
    default=None,
    help=f"Characters before the cut. Default: excerpt.length, else {DEFAULT_LENGTH}.",
)
@click.option(
    "--locale",
    type=click.Choice(["zh", "en"]),
    default=None,
    help="Language of the labels. Default: excerpt.labels, else site.locale, else zh.",
)
@click.option(
    "--math",
    type=click.Choice(MATH_MODES),
    default=None,
    help="Math delimiters the blog renders. Default: excerpt.math, else auto.",
)
@click.pass_context
def excerpt(
    ctx: click.Context, file: Path, length: int | None, locale: str | None, math: MathMode | None
) -> None:
    """Print one Markdown post's excerpt, with config.yaml's excerpt settings when there is one
    (the options override them) and DESIGN.md's defaults when there is none."""
    from digest.config.files import find_config
    from digest.sources.document import make_excerpt

    configured: tuple[int, str, MathMode] = (DEFAULT_LENGTH, "zh", "auto")
    explicit = ctx.find_root().obj.get("config_path")
    if explicit is not None or find_config(None).exists() or os.environ.get("DIGEST_CONFIG"):
        settings = get_known(ctx, keep=False).issues.sources.excerpt  # invalid: exit 2 here
        configured = (settings.length, settings.labels, settings.math)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DigestError(f"{file}: the file is not valid UTF-8.") from None
    try:
        say(
            make_excerpt(
                text,
                length=length or configured[0],
                locale=locale or configured[1],
                math=math or configured[2],
            )
        )
    except DigestError as exc:
        raise DigestError(f"{file}: {exc.message}.") from None


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
    """Write the next digest's HTML, text and MJML (sample links instead of personal ones)."""
    from digest.config.stages import render_settings
    from digest.delivery.personalise import with_sample_values
    from digest.issues.upcoming import next_edition, nothing_new
    from digest.render.budget import HTML_LIMIT, longest_values, outgoing_size
    from digest.render.edition import render as render_edition

    config = get_config(ctx)
    known = get_known(ctx)
    gathered = _next_issue(ctx, known, "shown")
    report_sources(gathered.source)
    if gathered.source.failures:
        ctx.exit(1)
    if not gathered.new:
        say(nothing_new(gathered, known.issues).removesuffix(".") + "; nothing rendered.")
        return
    edition = next_edition(gathered, known.issues)
    rendered = render_edition(render_settings(config), edition, locale)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        greeting = rendered.greeting_anonymous
        for name, content in (
            ("issue.html", with_sample_values(rendered.html, html.escape(greeting))),
            ("issue.txt", with_sample_values(rendered.text, greeting)),
            ("issue.mjml", rendered.mjml),
        ):
            (out_dir / name).write_text(content, encoding="utf-8")
    except OSError as exc:
        raise DigestError(f"{out_dir}: cannot write the rendered issue: {exc.strerror}.") from None
    size = len(rendered.html.encode())
    longest = longest_values(config.web.base_url, rendered.greeting_named)
    sent = outgoing_size(rendered.html, longest)
    say(f"Subject: {rendered.subject}")
    say(
        f"Wrote {out_dir}/issue.html ({size / 1024:.1f} KB; at most {sent:,} bytes as sent, "
        f"limit {HTML_LIMIT:,}), issue.txt and issue.mjml."
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.pass_context
def preview(ctx: click.Context, host: str, port: int) -> None:
    """Show the next digest in a browser (read-only, re-rendered on every reload)."""
    import uvicorn

    from digest.web.hosts import preview_hosts
    from digest.web.preview import database_preview

    config = get_config(ctx)
    allowed = preview_hosts(host, config.preview.allowed_hosts)
    app = database_preview(config, get_database(ctx), allowed_hosts=allowed)
    shown = f"[{host}]" if ":" in host else host
    say(f"Previewing the next digest at http://{shown}:{port}/ (Ctrl+C to stop).")
    uvicorn.run(app, host=host, port=port, log_level="info")
