"""`digest serve`: the public web app and the HTTP API."""

from __future__ import annotations

from typing import Any

import click

from digest.cli.base import get_config, get_database, log_format_option, main, use_log_format
from digest.cli.output import say


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@log_format_option
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, log_format: str) -> None:
    """Run the public web app: unsubscribe, preferences, sign-up, the archive, the provider
    bounce webhooks (/hooks/ses, /hooks/postmark), the HTTP API (/api/v1/, bearer tokens from
    `digest admin token create`), /healthz, /readyz and /metrics."""
    import uvicorn

    from digest.config.presend import check_files, check_sending
    from digest.ops.logs import uvicorn_config
    from digest.web.public import create_public_app

    use_log_format(log_format)

    config = get_config(ctx)
    check_files(config)  # the DKIM key and SMTP password of the confirmation mails
    check_sending(config, links=False)  # and that password never in clear
    from digest.issues.upkeep import serve_upkeep

    database = get_database(ctx)
    app = create_public_app(config, database)
    serve_upkeep(config, database)  # welcomes, webhooks, stale sign-ups, every 30 s
    shown = f"[{host}]" if ":" in host else host
    say(f"Serving {config.web.base_url} at http://{shown}:{port}/ (Ctrl+C to stop).")
    # proxy headers are the app's own business (digest.web.hosts: web.trusted_proxies only)
    logging: dict[str, Any] = {}
    if log_format == "json":
        logging["log_config"] = uvicorn_config("json")
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, **logging)
