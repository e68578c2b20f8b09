"""`digest dkim`: signing keys."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.base import get_config, main
from digest.cli.output import note, say


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
    from datetime import date

    from digest.delivery import dkim as keys

    config = get_config(ctx)
    domain = domain or config.sender.domain
    selector = selector or f"digest{date.today().year}{'e' if ed25519 else ''}"
    key = keys.generate("ed25519" if ed25519 else "rsa")
    path = keys.write_private_key(out_dir or config.path("var/dkim"), selector, key)
    note(f"Wrote the private key to {path} (keep it secret).")
    note("Publish this DNS record:")
    say(keys.dns_record(selector, domain, key))
    prefix = "ed25519_" if ed25519 else ""
    note("Then add to config.yaml:")
    note(f"dkim:\n  domain: {domain}\n  {prefix}selector: {selector}\n  {prefix}key_file: {path}")
