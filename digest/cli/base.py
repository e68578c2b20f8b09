"""The `digest` command group and what every command shares: config, database, messages.

Exit codes: 0 success (including "nothing new"), 1 runtime failure, 2 bad usage or invalid
configuration. Errors are one sentence on stderr; a traceback only with DIGEST_DEBUG=1.

Start-up matches the work: this module and every command module import, at the top, only
click, the standard library and light modules of digest; the configuration's schema, the
database layer, Rich and the stages are imported by the command that uses them, when it runs.
`digest --help` and `digest --version` load nothing else (tests/cli/test_startup.py keeps an
allowlist of what they may import).
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import __version__
from digest.cli.output import error, plain, warn
from digest.errors import DigestError

if TYPE_CHECKING:
    import logging

    from digest.config.schema import Config
    from digest.config.snapshot import Known
    from digest.models import SourceResult
    from digest.store.database import Database

__all__ = ["error", "escape_markup", "warn"]  # re-exported: commands print through these

# pydantic looks for plugins when it builds the configuration's models: it reads the entry
# points of every installed distribution, a good part of loading the configuration, for
# plugins digest does not use. Off unless the user's environment says otherwise (setting
# PYDANTIC_DISABLE_PLUGINS, even to nothing, keeps their choice).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


# Which module of digest.cli defines each command. A command's module is imported when the
# command runs (or --help lists them all), so `digest posts` does not load the send engine:
# start-up is most of a warm `digest posts` (issue 15). tests/test_cli.py checks the map.
COMMAND_MODULES = {
    "admin": "admin",
    "bounces": "bounces",
    "db": "db",
    "dkim": "dkim",
    "doctor": "doctor",
    "excerpt": "posts",
    "form": "form",
    "hold": "editorial",
    "init": "init",
    "note": "editorial",
    "posts": "posts",
    "preview": "posts",
    "render": "posts",
    "report": "status",
    "schedule": "send",
    "send": "send",
    "serve": "serve",
    "status": "status",
    "subscribers": "subscribers",
    "unhold": "editorial",
    "webhooks": "webhooks",
}


class DigestGroup(click.Group):
    """Turns every DigestError into one sentence and its exit code, never a traceback.

    Commands are loaded on first use from COMMAND_MODULES."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"digest.cli.{COMMAND_MODULES[cmd_name]}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(COMMAND_MODULES.values())):
            importlib.import_module(f"digest.cli.{module}")
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            error(exc.message)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            error("interrupted.")
            ctx.exit(130)
        except Exception as exc:  # the last line of defence: no traceback reaches a user
            if os.environ.get("DIGEST_DEBUG"):
                raise
            error(unexpected(exc))
            ctx.exit(1)


def unexpected(exc: BaseException) -> str:
    """One sentence of ours for an exception nothing else explained: never the text of a
    driver or a library, which may be SQL, a path of theirs or a half-sentence."""
    from sqlalchemy.exc import SQLAlchemyError

    from digest.store.database import refusal

    if isinstance(exc, SQLAlchemyError):
        return f"the database failed: {refusal(exc)} (set DIGEST_DEBUG=1 for details)."
    return f"unexpected {type(exc).__name__} (set DIGEST_DEBUG=1 for details)."


@cache
def _library_warnings() -> logging.Handler:
    """The handler that prints the library's logged warnings (logger `digest`, e.g. posts moved
    out of an oversized digest) as `digest: warning:` lines, each message once per command
    (made, and logging loaded, when a command first runs: `--help` needs neither)."""
    import logging

    class LibraryWarnings(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.seen: set[str] = set()

        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message not in self.seen:
                self.seen.add(message)
                warn(message + ("" if message.endswith(".") else "."))

    return LibraryWarnings()


def report_library_warnings(enabled: bool) -> None:
    """Print the library's warnings on stderr for this command, or leave them to the log
    (`digest schedule` sets up logging: its log has them)."""
    import logging

    handler = _library_warnings()
    handler.seen.clear()  # type: ignore[attr-defined]
    logger = logging.getLogger("digest")
    if enabled and handler not in logger.handlers:
        logger.addHandler(handler)
    elif not enabled:
        logger.removeHandler(handler)


def escape_markup(text: str) -> str:
    """Text made `plain` and escaped for a Rich markup string (prefer `output.styled`)."""
    from rich.markup import escape

    return escape(plain(text))


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
    report_library_warnings(ctx.invoked_subcommand != "schedule")


log_format_option = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text, or one JSON object per line.",
)
metrics_port_option = click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve Prometheus metrics on this port (loopback, metrics.allow, or the token).",
)
metrics_address_option = click.option(
    "--metrics-address",
    default="127.0.0.1",
    show_default=True,
    help="The address --metrics-port listens on.",
)


def use_log_format(log_format: str) -> None:
    """`--log-format json`: every log line a JSON object on stderr, the library's warnings
    among them (not as `digest: warning:` lines)."""
    if log_format == "json":
        from digest.ops.logs import configure

        report_library_warnings(False)
        configure("json")


def get_config(ctx: click.Context) -> Config:
    root = ctx.find_root()
    if "config" not in root.obj:
        from digest.config.load import load_config

        root.obj["config"] = load_config(root.obj["config_path"])
    config: Config = root.obj["config"]
    return config


def report_sources(source: SourceResult) -> None:
    """Warn about every skipped post; failed sources are errors (the caller sets the exit code)."""
    for problem in source.problems:
        warn(str(problem))
    for failure in source.failures:
        error(failure)


def get_database(ctx: click.Context) -> Database:
    """The configured database, migrated to the current schema (once per command)."""
    root = ctx.find_root()
    if "database" not in root.obj:
        from digest.store.database import open_database

        config = get_config(ctx)
        root.obj["database"] = open_database(
            config.database_url, outage_seconds=config.database.outage_seconds
        )
        ctx.call_on_close(root.obj["database"].dispose)
    database: Database = root.obj["database"]
    return database


def get_known(ctx: click.Context, *, keep: bool = True) -> Known:
    """What `digest posts`, `render` and `excerpt` take from the configuration: from the
    snapshot that validating this very file under this environment and code left
    (digest.config.snapshot: no pydantic loaded), else from the configuration validated now,
    then kept as that snapshot (unless not `keep`). The user's templates are checked either
    way."""
    root = ctx.find_root()
    if "known" not in root.obj:
        from digest.config import snapshot

        known = None
        if "config" not in root.obj:
            from digest.config.files import find_config

            known = snapshot.read(find_config(root.obj["config_path"]))
        if known is not None:
            from digest.config.templatecheck import check_templates

            check_templates(known.templates)
        else:
            config = get_config(ctx)
            if keep:
                snapshot.write(config)
            known = snapshot.known_from(config)
        root.obj["known"] = known
    found: Known = root.obj["known"]
    return found


def sent_posts(ctx: click.Context, known: Known, frequency: str) -> set[str] | None:
    """The posts an issue of `frequency` already covered, for a command that only reads the
    next issue, read without the database layer when the database is a SQLite file (none at
    all when it was not created yet); None when the database must be opened to tell
    (`get_database`): see digest.store.peek."""
    from digest.store.peek import sent_post_ids

    if "database" in ctx.find_root().obj or known.sqlite_url is None:
        return None
    return sent_post_ids(known.sqlite_url, frequency)


def editorial_peek(
    ctx: click.Context, known: Known, frequency: str
) -> tuple[dict[str, str], str] | None:
    """The posts the owner held and the editor's note waiting, read as `sent_posts` reads
    (digest.store.peek.editorial); None when the database must be opened to tell."""
    from digest.store.peek import editorial

    if "database" in ctx.find_root().obj or known.sqlite_url is None:
        return None
    return editorial(known.sqlite_url, frequency)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
