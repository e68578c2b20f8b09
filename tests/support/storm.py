"""A fault storm against a real send: `digest send --yes` and two `digest send --worker` on
one throwaway PostgreSQL, restarted as systemd would when they exit, while the storm kills
them, restarts the database (`-m fast`, `-m immediate`, or kept down a while), and the SMTP
server drops connections before the data and after the final dot, answers 421 and 451 in
bursts, and stalls its replies. Shared by tests/e2e/test_outage.py (5,000 subscribers, 15
faults) and bench/storm.py (100,000 and 100, against the code before issue 20).

The server tells what it *has* (a body complete after the final dot: `stored`) from what it
said (`acked`), so the figures compare the ledger with the truth: `twice` (anyone stored
more than once), `missed` (stored never), `unknown` (the ledger's), and what the processes
printed that is not ours (a traceback, the driver's text).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.support.paths import ROOT
from tests.support.postgres import PostgresServer
from tests.support.smtp_server import LoopServer

BLOG = ROOT / "examples" / "blog"
DRIVER_TEXT = (
    "Traceback",
    "psycopg",
    "sqlalchemy",
    "OperationalError",
    "SELECT ",
    "UPDATE ",
    "INSERT ",
    "Background on this error",
    "Exception ignored",
)
SMTP_FAULTS = ("drop-before-data", "drop-after-dot", "greet-421", "greylist", "stall")
DATABASE_FAULTS = ("pg-fast", "pg-immediate", "pg-down")
KINDS = ("kill", *DATABASE_FAULTS, *SMTP_FAULTS)


class StormServer(LoopServer):
    """A pipelining SMTP server on 127.0.0.1 that counts what it stored and what it acked,
    and plays the faults armed with `arm(kind, count)` on the next `count` messages (or
    connections, for greet-421). `stall` holds the final reply `stall_seconds`."""

    backlog = 512

    def __init__(self, stall_seconds: float = 1.5) -> None:
        self.stall_seconds = stall_seconds
        self.stored: Counter[str] = Counter()
        self.acked: Counter[str] = Counter()
        self.armed: Counter[str] = Counter()
        self.mails: list[float] = []  # when each MAIL FROM came (time.monotonic())
        self.lock = threading.Lock()
        super().__init__()

    def arm(self, kind: str, count: int) -> None:
        with self.lock:
            self.armed[kind] += count

    def accepted(self) -> int:
        with self.lock:
            return sum(self.acked.values())

    def _take(self, kind: str) -> bool:
        with self.lock:
            if self.armed[kind] > 0:
                self.armed[kind] -= 1
                return True
            return False

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        if self._take("greet-421"):
            say("421 4.3.2 too busy, try later")
            await writer.drain()
            return
        say("220 storm ESMTP")
        await writer.drain()
        rcpt, fault = "", None
        while True:
            line = (await reader.readline()).decode(errors="replace").rstrip("\r\n")
            if not line:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250-storm\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SMTPUTF8")
            elif verb == "MAIL":
                rcpt, fault = "", None
                with self.lock:
                    self.mails.append(time.monotonic())
                say("250 OK")
            elif verb == "RCPT":
                rcpt = line[8:].split(">")[0].lstrip("<")
                fault = next(
                    (
                        f
                        for f in ("drop-before-data", "greylist", "drop-after-dot", "stall")
                        if self._take(f)
                    ),
                    None,
                )
                if fault == "drop-before-data":
                    return
                say("451 4.7.1 greylisted, try later" if fault == "greylist" else "250 OK")
            elif verb == "DATA":
                if fault == "greylist" or not rcpt:
                    say("554 5.5.1 no valid recipients")
                    await writer.drain()
                    continue
                say("354 go ahead")
                await writer.drain()
                while True:
                    chunk = await reader.readline()
                    if not chunk:
                        return
                    if chunk == b".\r\n":
                        break
                with self.lock:
                    self.stored[rcpt] += 1
                if fault == "drop-after-dot":
                    return
                if fault == "stall":
                    await asyncio.sleep(self.stall_seconds)
                with self.lock:
                    self.acked[rcpt] += 1
                say("250 2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                say("250 OK")
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                return
            else:
                say("502 unknown command")
            await writer.drain()


def write_config(folder: Path, url: str, port: int, **smtp: Any) -> Path:
    """A configuration both this code and the code before issue 20 read (no new keys)."""
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "timeout": 5,
        "connections": 2,
        "retries": 3,
        "retry_delay": 0.2,
        "heartbeat": 1,
        "lease_timeout": 20,
        **smtp,
    }
    lines = "\n".join(f"  {key}: {value}" for key, value in settings.items())
    (folder / "web-secret").write_text("storm-secret\n", encoding="utf-8")
    path = folder / "config.yaml"
    path.write_text(
        f"""site:
  title: Incoming Transmission
  base_url: https://blog.example.com
  locale: en
  postal_address: 88 Example Road, Shanghai
sources:
  - type: markdown
    path: {BLOG}
digest:
  lookback_days: 3650
database:
  url: {url}
smtp:
{lines}
sender:
  from: "Incoming Transmission <digest@blog.example.com>"
web:
  base_url: https://news.example.com
  secret_file: web-secret
""",
        encoding="utf-8",
    )
    return path


def add_subscribers(url: str, count: int) -> None:
    """`count` active subscribers in bulk (the table is the same for both codes)."""
    from digest.store.database import connect
    from digest.store.subscribers import insert_many

    database = connect(url)
    try:
        with database.transaction() as connection:
            insert_many(
                connection, ((f"reader{n}@example.com", f"Reader {n}", "en") for n in range(count))
            )
    finally:
        database.dispose()


@dataclass
class Role:
    """One supervised process (the lease holder or a worker), restarted when it exits."""

    name: str
    args: tuple[str, ...]
    process: subprocess.Popen[str] | None = None
    outputs: list[str] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    starts: int = 0
    _chunks: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None


class Supervisor:
    """Runs the roles as systemd would (Restart=always, RestartSec=`pause`) until stopped."""

    def __init__(
        self,
        config: Path,
        root: Path,
        roles: list[Role],
        pause: float = 1.0,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        """`ready`: the first role is started alone until it says yes (the issue exists), so
        that a worker's `--wait` is no race with a slow start of the send on a busy machine."""
        self.config, self.root, self.roles, self.pause = config, root, roles, pause
        self.ready = ready
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Supervisor:
        first, *others = self.roles
        self._start(first)
        if self.ready is not None:
            deadline = time.monotonic() + 600  # a hang guard, not a timing
            while not self.ready():
                assert first.process is not None and first.process.poll() is None, "".join(
                    first._chunks
                )
                assert time.monotonic() < deadline, "the send never created its issue"
                time.sleep(0.05)
        for role in others:
            self._start(role)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(30)
        for role in self.roles:
            if role.process is not None and role.process.poll() is None:
                role.process.kill()
            self._reap(role, 60)

    def finish(self, timeout: float = 300) -> None:
        """Stop restarting and wait for every role to end on its own (a hang guard)."""
        self.stopping.set()
        self.thread.join(30)
        deadline = time.monotonic() + timeout
        for role in self.roles:
            self._reap(role, max(1.0, deadline - time.monotonic()))

    def _start(self, role: Role) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DIGEST_DEBUG", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "--config", str(self.config), *role.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.root,
            env=env,
        )
        chunks: list[str] = []
        reader = threading.Thread(target=lambda: chunks.extend(process.stdout or []), daemon=True)
        reader.start()
        role.process, role._chunks, role._reader = process, chunks, reader
        role.starts += 1

    def _reap(self, role: Role, timeout: float) -> None:
        process = role.process
        if process is None:
            return
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(30)
        if role._reader is not None:
            role._reader.join(30)
        role.codes.append(code)
        role.outputs.append("".join(role._chunks))
        role.process = None

    def _run(self) -> None:
        while not self.stopping.wait(0.1):
            for role in self.roles:
                with self.lock:
                    if role.process is not None and role.process.poll() is not None:
                        self._reap(role, 30)
                        restart_at = time.monotonic() + self.pause
                        while time.monotonic() < restart_at and not self.stopping.is_set():
                            time.sleep(0.05)
                        if not self.stopping.is_set():
                            self._start(role)

    def kill(self, rng: random.Random) -> str | None:
        """SIGKILL one running role; returns its name."""
        with self.lock:
            live = [r for r in self.roles if r.process is not None and r.process.poll() is None]
            if not live:
                return None
            role = rng.choice(live)
            assert role.process is not None
            role.process.send_signal(signal.SIGKILL)
            return role.name

    @property
    def output(self) -> str:
        return "".join(text for role in self.roles for text in role.outputs)


@dataclass
class Figures:
    subscribers: int
    twice: int
    missed: int
    unknown: int
    statuses: dict[str, int]
    foreign: list[str]  # lines that are not ours
    faults: list[str]
    seconds: float
    exits: dict[str, list[int]]
    starts: dict[str, int]
    missed_not_unknown: int
    outages: list[tuple[float, float]] = field(default_factory=list)  # (down, up), monotonic
    outputs: list[str] = field(default_factory=list)  # each role's, in the order of `exits`
    mails: list[float] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)
    ledger: dict[str, str] = field(default_factory=dict)
    dsn: str = ""
    output: str = ""
    twice_emails: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscribers": self.subscribers,
            "twice": self.twice,
            "missed": self.missed,
            "unknown": self.unknown,
            "missed_not_unknown": self.missed_not_unknown,
            "statuses": self.statuses,
            "foreign_lines": len(self.foreign),
            "faults": len(self.faults),
            "seconds": round(self.seconds, 1),
        }


def ledger(dsn: str) -> dict[str, str]:
    """email -> the status of its delivery."""
    for _ in range(600):
        try:
            with psycopg.connect(dsn, connect_timeout=5) as connection:
                rows = connection.execute(
                    "SELECT s.email, d.status FROM deliveries d "
                    "JOIN subscribers s ON s.id = d.subscriber_id"
                ).fetchall()
            return {email: status for email, status in rows}
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise AssertionError("the database never came back")


def issue_status(dsn: str) -> str | None:
    try:
        with psycopg.connect(dsn, connect_timeout=5) as connection:
            row = connection.execute("SELECT status FROM issues ORDER BY id LIMIT 1").fetchone()
    except psycopg.OperationalError:
        return None
    return None if row is None else str(row[0])


def plan(rng: random.Random, count: int, kinds: tuple[str, ...] = KINDS) -> list[str]:
    """`count` faults, each kind as often as the others, in a seeded order."""
    faults = [kinds[i % len(kinds)] for i in range(count)]
    rng.shuffle(faults)
    return faults


def storm(
    folder: Path,
    postgres: PostgresServer,
    subscribers: int,
    faults: list[str],
    *,
    seed: int = 0,
    root: Path = ROOT,
    down: float = 5.0,
    workers: int = 2,
    smtp: dict[str, Any] | None = None,
    on_fault: Callable[[str], None] | None = None,
    hang_guard: float = 1800,
) -> Figures:
    """One storm: a fresh database of `subscribers`, the send and `workers` workers under a
    supervisor, `faults` spread evenly over the messages the server acks; then (still
    supervised) until the issue is finished. `root`: the code to run (its checkout)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    url = postgres.new_database()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.monotonic()
    with StormServer() as server:
        config = write_config(folder, url, server.port, **(smtp or {}))
        migrate = subprocess.run(
            [sys.executable, "-m", "digest.cli", "--config", str(config), "db", "upgrade"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        add_subscribers(url, subscribers)
        roles = [Role("send", ("send", "--yes"))] + [
            Role(f"worker{n}", ("send", "--worker", "--wait", "10")) for n in range(workers)
        ]
        done: list[str] = []
        outages: list[tuple[float, float]] = []

        def ready() -> bool:  # the issue exists: the workers have something to join
            return issue_status(dsn) is not None

        with Supervisor(config, root, roles, ready=ready) as supervisor:
            for index, fault in enumerate(faults):
                threshold = subscribers * (index + 1) // (len(faults) + 1)
                deadline = time.monotonic() + hang_guard
                while server.accepted() < threshold:
                    assert time.monotonic() < deadline, f"stuck before fault {index}: {fault}"
                    if issue_status(dsn) == "finished":
                        break
                    time.sleep(0.05)
                began = time.monotonic()
                apply(fault, supervisor, postgres, server, rng, down)
                if fault in DATABASE_FAULTS:  # from the moment the server was gone
                    outages.append((max(began, postgres.halted_at), time.monotonic()))
                done.append(fault)
                if on_fault is not None:
                    on_fault(fault)
            deadline = time.monotonic() + hang_guard
            while issue_status(dsn) != "finished":
                assert time.monotonic() < deadline, "the issue never finished"
                time.sleep(0.2)
            supervisor.finish()
        statuses = ledger(dsn)
        received = server.stored
        twice = sum(1 for count in received.values() if count > 1)
        missed = {email for email in statuses if received[email] == 0}
        unknown = {email for email, status in statuses.items() if status == "unknown"}
        output = supervisor.output
        foreign = [line for line in output.splitlines() if any(bad in line for bad in DRIVER_TEXT)]
        return Figures(
            subscribers=subscribers,
            twice=twice,
            missed=len(missed),
            unknown=len(unknown),
            statuses=dict(Counter(statuses.values())),
            foreign=foreign,
            faults=done,
            seconds=time.monotonic() - started,
            exits={role.name: role.codes for role in roles},
            starts={role.name: role.starts for role in roles},
            missed_not_unknown=len(missed - unknown),
            outages=outages,
            outputs=["".join(role.outputs) for role in roles],
            mails=list(server.mails),
            acked=dict(server.acked),
            ledger=statuses,
            dsn=dsn,
            output=output,
            twice_emails=sorted(email for email, count in received.items() if count > 1),
        )


def apply(
    fault: str,
    supervisor: Supervisor,
    postgres: PostgresServer,
    server: StormServer,
    rng: random.Random,
    down: float,
) -> None:
    if fault == "kill":
        supervisor.kill(rng)
    elif fault == "pg-fast":
        postgres.restart("fast")
    elif fault == "pg-immediate":
        postgres.restart("immediate")
    elif fault == "pg-down":
        postgres.restart("immediate", down=down)
    elif fault == "greet-421":
        server.arm(fault, 15)
    elif fault == "greylist":
        server.arm(fault, 30)
    else:
        server.arm(fault, 3)
