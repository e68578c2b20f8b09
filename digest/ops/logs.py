"""`--log-format json`: one JSON object per log line (python-json-logger), for journald,
Loki or any collector that reads structured lines; `text` keeps the readable default.

Each object has `time` (ISO 8601, UTC), `level`, `logger` and `message`, and `exc_info`
when there is a traceback; a message never spans lines, whatever it holds.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT = "%(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ["asctime", "levelname", "name", "message"]
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter(
        JSON_FIELDS, rename_fields=RENAMED, json_ensure_ascii=False, datefmt="%Y-%m-%dT%H:%M:%S%z"
    )
    formatter.converter = _utc
    return formatter


def _utc(seconds: float | None) -> Any:
    import time

    return time.gmtime(seconds)


def configure(log_format: LogFormat, level: int = logging.INFO) -> None:
    """Send every log record of this process to stderr in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if log_format == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def uvicorn_config(log_format: LogFormat) -> dict[str, Any] | None:
    """uvicorn's `log_config` for `digest serve`: None keeps uvicorn's own for `text`; for
    `json` its loggers and ours write JSON objects to stderr."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "digest.ops.logs.json_formatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "INFO", "propagate": True},
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
    }
