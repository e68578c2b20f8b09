"""`digest form`: print the sign-up form to paste into the blog's template."""

from __future__ import annotations

import click

from digest.cli.base import get_config, get_database, main
from digest.cli.output import emit_data
from digest.errors import DigestError


@main.command()
@click.option(
    "--style",
    type=click.Choice(["plain", "minimal"]),
    default="plain",
    show_default=True,
    help="plain: styled inline; minimal: bare markup for the blog's own CSS.",
)
@click.pass_context
def form(ctx: click.Context, style: str) -> None:
    """Print the sign-up form snippet (HTML) for a Hexo, Hugo or Jekyll template."""
    from digest.web.snippet import form_snippet

    config = get_config(ctx)
    try:
        database = get_database(ctx)
    except DigestError:  # no database reachable: a form without category choices
        database = None
    emit_data(form_snippet(config, database, style))  # type: ignore[arg-type]
