"""A throwaway PostgreSQL server for the test session, from Debian's `postgresql` package.

Started once per session on a free port under a temporary folder (as the `postgres` user when
the tests run as root, since PostgreSQL refuses to run as root); each test gets a new database.
`halt(mode)` and `launch()` stop and start it again on the same port and data, as `pg_ctl
stop -m fast|immediate` and `pg_ctl start` would: the outage tests' database restarts.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests.support.databases import IDENTITY, new_identity
from tests.support.paths import ROOT


def _binaries() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: run scripts/system-deps (Debian package postgresql)"
        )
    return Path(found[-1]).parent


def _memory_folder() -> str | None:
    """Where scripts/memory-tmpdir says the suite's scratch folders go (/dev/shm when it has
    room), else None (the usual temporary folder): a throwaway server's files need not reach
    the disk, and making a database there costs a third of what it does on disk. Asked here
    too for a pytest run without `make`, which sets TMPDIR from the same script."""
    said = subprocess.run(
        [str(ROOT / "scripts" / "memory-tmpdir")], capture_output=True, text=True, check=False
    ).stdout.strip()
    return said or None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """`durable`: commits wait for their WAL write (synchronous_commit on, PostgreSQL's
    default), so an immediate shutdown loses no committed transaction — what the outage tests
    restart it with. Without it a crash forgets the last commits, which no client can help."""

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.bin = _binaries()
        self.root = Path(tempfile.mkdtemp(prefix="digest-pg-", dir=_memory_folder()))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.process: subprocess.Popen[bytes] | None = None
        self.template: str | None = None  # the migrated database `migrated_database` copies
        self.halted_at = 0.0  # time.monotonic() when `halt` last saw the server gone

    def _command(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            self._command(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ),
            check=True,
            capture_output=True,
        )
        self.launch()

    def launch(self) -> None:
        """Start the server (again) on its data and port; returns once it answers."""
        self.process = subprocess.Popen(
            self._command(
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                f"synchronous_commit={'on' if self.durable else 'off'}",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the test PostgreSQL server did not start") from None
                time.sleep(0.1)

    def halt(self, mode: str = "immediate") -> None:
        """Stop the server as `pg_ctl stop -m MODE` does: "fast" (SIGINT: sessions ended,
        a clean shutdown) or "immediate" (SIGQUIT: no shutdown, crash recovery at the next
        start). Returns once it is gone."""
        assert self.process is not None
        subprocess.run(
            self._command(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode),
            check=True,
            capture_output=True,
        )
        self.process.wait(60)
        self.halted_at = time.monotonic()

    def restart(self, mode: str = "immediate", down: float = 0.0) -> None:
        """`pg_ctl restart -m MODE`, kept down `down` seconds in between."""
        self.halt(mode)
        if down:
            time.sleep(down)
        self.launch()

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def migrated_database(self) -> str:
        """A new database at the current schema, copied from one migrated at the first call
        (`CREATE DATABASE … TEMPLATE`; nobody stays connected to the template), with an
        identity of its own; returns its SQLAlchemy URL."""
        if self.template is None:
            from digest.store.database import open_database

            template = self.new_database()
            open_database(template).dispose()
            self.template = template.rsplit("/", 1)[1]
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        with psycopg.connect(self.dsn(name), autocommit=True) as connection:
            connection.execute(IDENTITY.replace("?", "%s"), (new_identity(),))
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # `pg_ctl stop -m immediate`: a client a test left connected does not hold it up
            # (a signal to our child would reach runuser, not the server, when run as root;
            # SIGTERM's smart shutdown waits for every session to end), and no shutdown
            # checkpoint writes out the data of every test's database, deleted just below
            try:
                self.halt("immediate")
            except (subprocess.SubprocessError, OSError):
                self.process.kill()
                self.process.wait(20)
        shutil.rmtree(self.root, ignore_errors=True)
