"""`digest serve`: the public web app and the HTTP API."""

from __future__ import annotations

import click

from digest.cli.base import get_config, get_database, main
from digest.cli.output import say
from digest.config.presend import check_files, check_sending


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Run the public web app: unsubscribe, preferences, sign-up, the archive, the
    provider bounce webhooks (/hooks/ses, /hooks/postmark) and the HTTP API (/api/v1/,
    bearer tokens from `digest admin token create`)."""
    import uvicorn

    from digest.web.public import create_public_app

    config = get_config(ctx)
    check_files(config)  # the DKIM key and SMTP password of the confirmation mails
    check_sending(config, links=False)  # and that password never in clear
    app = create_public_app(config, get_database(ctx))
    shown = f"[{host}]" if ":" in host else host
    say(f"Serving {config.web.base_url} at http://{shown}:{port}/ (Ctrl+C to stop).")
    # proxy headers are the app's own business (digest.web.hosts: web.trusted_proxies only)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
