"""`digest note` (the editor's note of the next issue, Markdown shown above the posts) and
`digest hold` / `digest unhold` (posts left out of the next issue or of every issue)."""

from __future__ import annotations

from typing import TextIO

import click

from digest.cli.base import get_config, get_database, main
from digest.cli.output import note as tell
from digest.cli.output import say


@main.group()
def note() -> None:
    """The editor's note of the next issue: a few words of your own above the posts, in both
    the HTML and the text part; kept with the issue when it is created."""


@note.command("set")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.pass_context
def note_set(ctx: click.Context, file: TextIO) -> None:
    """Read the note (Markdown) from FILE ('-' for standard input)."""
    from digest.issues.editorial import Actor, set_note

    kept = set_note(get_config(ctx), get_database(ctx), file.read(), Actor())
    tell(
        f"The next issue carries a note of {len(kept)} characters."
        if kept
        else "The note was empty: the next issue carries none."
    )


@note.command("clear")
@click.pass_context
def note_clear(ctx: click.Context) -> None:
    """Remove the note waiting for the next issue."""
    from digest.issues.editorial import Actor, clear_note

    clear_note(get_config(ctx), get_database(ctx), Actor())
    tell("The next issue carries no note.")


@note.command("show")
@click.pass_context
def note_show(ctx: click.Context) -> None:
    """Print the note waiting for the next issue (nothing when there is none)."""
    from digest.issues.editorial import note as waiting

    text = waiting(get_config(ctx), get_database(ctx))
    if text:
        say(text)


@main.command()
@click.argument("post", required=False)
@click.option("--always", is_flag=True, help="Leave it out of every issue, not just the next.")
@click.option("--list", "listing", is_flag=True, help="List the posts held back.")
@click.pass_context
def hold(ctx: click.Context, post: str | None, always: bool, listing: bool) -> None:
    """Leave POST (its id or URL) out of the next issue; it is new again for the one after,
    unless --always."""
    from digest.errors import UsageError
    from digest.issues.editorial import Actor, held_posts, hold_post

    if listing:
        for post_id, scope, title in held_posts(get_database(ctx)):
            say(f"{scope:6}  {post_id}  {title}")
        return
    if post is None:
        raise UsageError("name a post (its id or URL), or use --list.")
    held = hold_post(get_config(ctx), get_database(ctx), post, Actor(), always=always)
    where = "every issue" if always else "the next issue"
    tell(f"{held.post.title} ({held.post.id}) is left out of {where}.")


@main.command()
@click.argument("post")
@click.pass_context
def unhold(ctx: click.Context, post: str) -> None:
    """Let a held post (its id or URL) back into the next issue."""
    from digest.issues.editorial import Actor, release_post

    released = release_post(get_config(ctx), get_database(ctx), post, Actor())
    tell(f"{post} is back in the next issue." if released else f"{post} was not held.")
