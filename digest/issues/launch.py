"""Starting `digest send` from the desk, and reading how it goes.

`launch` runs the very command a person would type, `digest --config FILE send --yes`, as a
process of its own in a session of its own (`start_new_session`): it takes the send lease
like any send, and stopping or restarting `digest serve` does not stop it (the example
systemd unit of serve uses KillMode=process for this). Its output goes to
`var/desk-send.log` beside the configuration. Before starting, `launch` refuses when another
process holds the send lease, naming it; the send itself refuses the same way if one started
in between.

`progress` reads the ledger, never the process: the latest issue's deliveries by status,
whether it is still sending, and who holds the lease, so any desk page (after a restart of
serve too) shows the same numbers.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.config.schema import Config
from digest.issues.plan import SenderBusy
from digest.store import lease
from digest.store.database import Database
from digest.store.report import reports

LOG_NAME = "desk-send.log"


def send_command(config: Config, resend_unknown: str | None = None) -> list[str]:
    config_file = str(config.file.resolve())
    command = [sys.executable, "-m", "digest.cli", "--config", config_file, "send", "--yes"]
    return command + (["--resend-unknown", resend_unknown] if resend_unknown else [])


def launch(config: Config, database: Database, resend_unknown: str | None = None) -> int:
    """Start `digest send` (with `--resend-unknown KEY` when given) in its own process; its
    pid. Raises SenderBusy when the send lease is held."""
    holder = lease.current_holder(database, lease.SEND_LEASE)
    if holder is not None:
        raise SenderBusy(holder)
    folder = config.path("var")
    folder.mkdir(parents=True, exist_ok=True)
    log = Path(folder / LOG_NAME)
    with log.open("ab") as out:
        process = subprocess.Popen(
            send_command(config, resend_unknown),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(config.root),
            start_new_session=True,
            close_fds=True,
        )
    return process.pid


@dataclass(frozen=True, slots=True)
class Progress:
    key: str | None
    status: str | None
    deliveries: dict[str, int]
    holder: str | None

    @property
    def total(self) -> int:
        return sum(self.deliveries.values())

    @property
    def done(self) -> int:
        waiting = ("queued", "claimed", "in_flight", "deferred")
        return self.total - sum(self.deliveries.get(s, 0) for s in waiting)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "deliveries": self.deliveries,
            "total": self.total,
            "done": self.done,
            "sent": self.deliveries.get("sent", 0),
            "holder": self.holder,
        }


def progress(database: Database) -> Progress:
    """The latest issue's deliveries by status, and the send lease's holder."""
    holder = lease.current_holder(database, lease.SEND_LEASE)
    with database.session() as session:
        latest = reports(session, limit=1)
    return Progress(
        key=latest[0].key if latest else None,
        status=latest[0].status if latest else None,
        deliveries=dict(latest[0].deliveries) if latest else {},
        holder=holder.describe() if holder else None,
    )
