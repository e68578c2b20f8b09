"""`digest doctor`: every check that can fail before a send, one line each."""

from __future__ import annotations

import click

from digest.cli.base import get_config, main
from digest.cli.output import emit_json, say

MARKS = {"pass": ("pass", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "bold red")}


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every check.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the configuration, database, SMTP relay, SPF, DKIM, DMARC, bounce MX and the
    public web address; exit 1 when any check fails (2: invalid configuration)."""
    from digest.issues.doctor import examine

    result = examine(get_config(ctx))
    if as_json:
        emit_json(result.as_json())
    else:
        for check in result.checks:
            mark, style = MARKS[str(check.verdict)]
            line = f"{mark}  {check.name}: {check.summary}"
            if check.fix:
                line += f" → {check.fix}"
            say(line, style=style if check.verdict != "pass" else "")
    ctx.exit(result.exit_code)
