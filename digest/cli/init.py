"""`digest init [BLOG_DIR]`: write config.yaml from a Hexo, Hugo or Jekyll blog's own config."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.base import main
from digest.cli.output import say


@main.command()
@click.argument(
    "blog_dir",
    required=False,
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
)
@click.pass_context
def init(ctx: click.Context, blog_dir: Path) -> None:
    """Write config.yaml here from the blog in BLOG_DIR (default: this folder)."""
    from digest.blogs.writer import init_config

    explicit = ctx.find_root().obj.get("config_path")
    target = explicit or Path("config.yaml")
    report = init_config(blog_dir, target)
    say("Found " + report.found[0] + ":")
    for line in report.found[1:]:
        say(f"  {line}")
    say(f"  {report.summary}")
    say("Could not carry over:")
    for line in report.missing:
        say(f"  - {line}")
    say(f"Wrote {target}. Next:")
    option = f"--config {target} " if explicit else ""
    say(f"  digest {option}posts      # the posts the next digest would hold")
    say(f"  digest {option}preview    # the digest in your browser")
