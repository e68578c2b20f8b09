"""Benchmark the send path against the wire's ceiling and against the naive path.

    python bench/send.py            # 10,000 and 100,000 subscribers, SQLite and PostgreSQL
    python bench/send.py --quick    # a smoke run (make test runs it)
    python bench/send.py --sizes 10000,100000,1000000 --databases sqlite --dkim no
    python bench/send.py --sizes 100000 --databases postgresql --dkim no --workers 1,2
    python bench/send.py --tracking aggregate   # only with click tracking on (default: both)
    python bench/send.py --sizes 10000 --databases sqlite --tracking off,personal

For each database and audience size it creates the subscribers, creates the issue, and times
the real per-recipient path in a child process (claim from the database, personalise, DKIM-sign,
deliver over SMTP, record) into Postfix's `smtp-sink`, with and without DKIM, reading the
child's peak RSS. In the same run it measures two baselines: `smtp-source` pushing messages of
the same size over the same number of connections (the wire's ceiling here), and the naive path
that renders and builds each message from scratch per recipient (render, EmailMessage, dkimpy,
smtplib). It prints messages per second, the two ratios, peak memory and the CPU time per
message (which depends less than msg/s on what else the machine runs). Nothing is asserted:
this is a measurement, not a test.

Each run is made with click tracking off and with `tracking.clicks: aggregate` (`--tracking`,
a comma-separated list of off, aggregate and personal; `both` is off,aggregate and `all` the
three): with aggregate, every post link is rewritten to a signed `/c/TOKEN` link once per
issue; with personal, each recipient's message gets its own (one HMAC per link and message).
The table shows each, and a line per database, DKIM and size gives the rate with tracking on
over the rate with it off (when off was run too).

Subscribers are created in bulk (store.subscribers.insert_many: one executemany per 10,000),
so a million take a minute or two, not the hours of one validated `add` each. With
`--workers 1,2` each PostgreSQL size is also sent by a `digest send` and one `--worker`
process on the same issue (digest.issues.join.work): their messages per second together, from
the first start to the last finish.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.config.load import load_config  # noqa: E402
from digest.config.schema import Config  # noqa: E402
from digest.config.sending import compose_settings  # noqa: E402
from digest.config.stages import render_settings  # noqa: E402
from digest.delivery.compose import Composer  # noqa: E402
from digest.issues.send import plan_send, send_issue  # noqa: E402
from digest.models import (  # noqa: E402
    GREETING,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    Edition,
    Recipient,
)
from digest.store import recipients as audience  # noqa: E402
from digest.store.database import (  # noqa: E402
    Database,
    open_database,
)
from digest.store.subscribers import insert_many  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise SystemExit(
        f"bench/send.py: {name} not found: install Debian's postfix package "
        "(scripts/system-deps does)"
    )


class Sink:
    """Postfix's smtp-sink: a C SMTP server that accepts and discards everything."""

    def __init__(self) -> None:
        self.port = free_port()
        command = [find_tool("smtp-sink")]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        command += [f"127.0.0.1:{self.port}", "1024"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("bench/send.py: smtp-sink did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def write_config(
    folder: Path, url: str, port: int, connections: int, dkim: Path | None, tracking: str = "off"
) -> Path:
    text = f"""site:
  title: Incoming Transmission
  base_url: https://blog.example.com
  locale: zh
  postal_address: 上海市徐汇区示例路 88 号
sources:
  - type: markdown
    path: {ROOT / "examples" / "blog"}
digest:
  lookback_days: 3650
database:
  url: {url}
smtp:
  host: 127.0.0.1
  port: {port}
  connections: {connections}
  messages_per_connection: 100000
  timeout: 30
sender:
  from: "Incoming Transmission <digest@blog.example.com>"
web:
  base_url: https://news.example.com
  secret_file: web-secret
"""
    if dkim is not None:
        text += f"dkim:\n  domain: blog.example.com\n  selector: bench\n  key_file: {dkim}\n"
    text += f"tracking:\n  clicks: {tracking}\n"
    (folder / "web-secret").write_text("bench-secret\n", encoding="utf-8")
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def add_subscribers(config: Config, count: int) -> float:
    """Create `count` subscribers in bulk; returns the seconds it took."""
    database = open_database(config.database_url)
    started = time.perf_counter()
    people = (
        (f"reader{n}@example.com", f"读者{n}", "en" if n % 4 == 0 else "zh") for n in range(count)
    )
    with database.transaction() as connection:
        insert_many(connection, people)
    seconds = time.perf_counter() - started
    database.dispose()
    return seconds


# -- the measured child -------------------------------------------------------------------------


def _cpu() -> float:
    """CPU seconds used by this process and its finished children (the sending processes):
    per message, a figure that depends less on what else the machine runs than msg/s."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def worker(config_path: str, join: bool = False) -> None:
    """Child process: send the prepared issue (or, with `join`, help send it as a `--worker`
    once it exists); print rate, sizes and peak RSS as JSON."""
    from digest.issues.join import work

    config = load_config(config_path)
    database = open_database(config.database_url)
    plan = None if join else plan_send(config, database)
    cpu_before = _cpu()
    started, wall = time.perf_counter(), time.time()
    if plan is None:
        summary = work(config, database, wait=600).summary
    else:
        summary = send_issue(config, database, plan).outcomes[0].summary
    elapsed = time.perf_counter() - started
    cpu = _cpu() - cpu_before
    database.dispose()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "sent": summary.sent,
                "failed": summary.failed,
                "elapsed": elapsed,
                "started": wall,
                "ended": wall + elapsed,
                "cpu": cpu,
                "rss_mb": (peak_kb + children_kb) / 1024,
            }
        )
    )


@dataclass
class Run:
    database: str
    subscribers: int
    dkim: bool
    sent: int
    elapsed: float
    rss_mb: float
    cpu: float = 0.0
    workers: int = 1
    create_seconds: float = 0.0
    tracking: str = "off"

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0


def measure(
    kind: str,
    url: str,
    count: int,
    dkim_key: Path | None,
    port: int,
    connections: int,
    folder: Path,
    workers: int = 1,
    tracking: str = "off",
) -> Run:
    path = write_config(folder, url, port, connections, dkim_key, tracking)
    config = load_config(path)
    create_seconds = add_subscribers(config, count)
    command = [sys.executable, __file__, "--worker", str(path)]
    helpers = [  # started first: each waits for the issue, then joins it
        subprocess.Popen(
            [*command, "--join"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(workers - 1)
    ]
    child = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    outputs = [(child.returncode, child.stdout, child.stderr)]
    for helper in helpers:
        out, err = helper.communicate(timeout=3600)
        outputs.append((helper.returncode, out, err))
    results = []
    for code, out, err in outputs:
        if code != 0:
            raise SystemExit(f"bench/send.py: the send failed:\n{err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    main = results[0]
    return Run(
        kind,
        count,
        dkim_key is not None,
        sum(r["sent"] for r in results),
        max(r["ended"] for r in results) - main["started"],
        max(r["rss_mb"] for r in results),
        sum(r["cpu"] for r in results),
        workers,
        create_seconds,
        tracking,
    )


# -- baselines ----------------------------------------------------------------------------------


def first_audience(
    config: Config, database: Database, count: int
) -> tuple[Edition, list[Recipient]]:
    """The next edition and the first `count` of its audience, read without writing."""
    plan = plan_send(config, database)
    assert plan.edition is not None
    with database.session() as session:
        people = audience.audience_recipients(session, plan.frequency, config.schedule.frequency)
    return plan.edition, people[:count]


def message_size(config_path: Path) -> int:
    """The average size of one of our messages, to give smtp-source the same load."""
    config = load_config(config_path)
    database = open_database(config.database_url)
    edition, recipients = first_audience(config, database, 50)
    composer = Composer(compose_settings(config), edition, issue_id=None, database=None)
    sizes = [len(c.message) for r in recipients if (c := composer(r)) is not None]
    database.dispose()
    return int(statistics.mean(sizes)) if sizes else 100_000


def smtp_source_rate(port: int, size: int, connections: int, count: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            find_tool("smtp-source"),
            "-s",
            str(connections),
            "-l",
            str(size),
            "-m",
            str(count),
            f"127.0.0.1:{port}",
        ],
        check=True,
        capture_output=True,
    )
    return count / (time.perf_counter() - started)


def naive_rate(config_path: Path, port: int, sample: int, dkim_key: Path | None) -> float:
    """Render and build every message from scratch, sign with dkimpy, send with smtplib."""
    from digest.render.edition import render

    config = load_config(config_path)
    database = open_database(config.database_url)
    edition, recipients = first_audience(config, database, sample)
    database.dispose()
    key = dkim_key.read_bytes() if dkim_key else None
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for recipient in recipients:
            rendered = render(render_settings(config), edition, recipient.locale or "zh")
            message = EmailMessage()
            message["From"] = config.sender.from_
            message["To"] = recipient.email
            message["Subject"] = rendered.subject
            message["List-Unsubscribe"] = f"<https://news.example.com/u/{recipient.subscriber_id}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            values = {
                UNSUBSCRIBE_URL: "https://news.example.com/u/x",
                PREFERENCES_URL: "https://news.example.com/p/x",
                GREETING: "你好",
            }
            text, html = rendered.text, rendered.html
            for placeholder, value in values.items():
                text, html = text.replace(placeholder, value), html.replace(placeholder, value)
            message.set_content(text)
            message.add_alternative(html, subtype="html")
            data = message.as_bytes()
            if key is not None:
                import dkim as dkimpy

                data = (
                    dkimpy.sign(
                        data,
                        b"bench",
                        b"blog.example.com",
                        key,
                        canonicalize=(b"relaxed", b"relaxed"),
                    )
                    + data
                )
            smtp.sendmail(config.sender.address, [recipient.email], data)
    return len(recipients) / (time.perf_counter() - started)


# -- main ---------------------------------------------------------------------------------------

TRACKINGS = ("off", "aggregate", "personal")


def tracking_modes(value: str) -> tuple[str, ...]:
    """`--tracking`: modes separated by commas; `both` is off and aggregate, `all` all three."""
    named = {"both": "off,aggregate", "all": ",".join(TRACKINGS)}.get(value, value)
    chosen = tuple(dict.fromkeys(mode.strip() for mode in named.split(",")))
    if not all(mode in TRACKINGS for mode in chosen):
        raise argparse.ArgumentTypeError(f"{value!r}: choose from {', '.join(TRACKINGS)}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--join", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dkim", choices=("no", "yes", "both"), default="both")
    parser.add_argument(
        "--workers", default="1", help="e.g. 1,2: also send PostgreSQL issues with 2 workers"
    )
    parser.add_argument(
        "--tracking",
        type=tracking_modes,
        default="both",
        help="click tracking: off, aggregate, personal (comma-separated), both or all",
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--naive-sample", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, join=args.join)
        return
    if args.quick:
        args.sizes, args.databases, args.naive_sample = "300", "sqlite", 10
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.databases.split(",")
    signing = {"no": (False,), "yes": (True,), "both": (False, True)}[args.dkim]
    worker_counts = [int(n) for n in args.workers.split(",")]
    trackings: tuple[str, ...] = args.tracking
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    from digest.delivery import dkim

    key_file = folder / "bench.pem"
    key_file.write_bytes(dkim.private_pem(dkim.generate("rsa")))
    sink = Sink()
    postgres: Any = None
    runs: list[Run] = []
    try:
        if "postgresql" in kinds:
            from tests.support.postgres import PostgresServer

            postgres = PostgresServer()
            postgres.start()
        for kind in kinds:
            for count in sizes:
                for signed, tracking in itertools.product(signing, trackings):
                    for workers in worker_counts if kind == "postgresql" else [1]:
                        run_folder = Path(tempfile.mkdtemp(dir=folder))
                        url = (
                            f"sqlite:///{run_folder / 'bench.sqlite3'}"
                            if kind == "sqlite"
                            else postgres.new_database()
                        )
                        run = measure(
                            kind,
                            url,
                            count,
                            key_file if signed else None,
                            sink.port,
                            args.connections,
                            run_folder,
                            workers,
                            tracking,
                        )
                        runs.append(run)
                        print(
                            f"  {kind:10} {count:>9,} subscribers  DKIM "
                            f"{'yes' if signed else 'no ':3}  clicks {tracking:9}"
                            f"  workers {workers}"
                            f"  {run.rate:8,.0f} msg/s  peak RSS {run.rss_mb:6.1f} MB"
                            f"  CPU {run.cpu / max(run.sent, 1) * 1e6:5.0f} us/msg"
                            f"  (created in {run.create_seconds:.0f} s)",
                            flush=True,
                        )
                        if run.sent != count:
                            raise SystemExit(f"bench/send.py: sent {run.sent} of {count}")
        baseline_folder = Path(tempfile.mkdtemp(dir=folder))
        path = write_config(
            baseline_folder,
            f"sqlite:///{baseline_folder / 'b.sqlite3'}",
            sink.port,
            args.connections,
            None,
        )
        add_subscribers(load_config(path), max(args.naive_sample, 50))
        size = message_size(path)
        source = smtp_source_rate(sink.port, size, args.connections, min(max(sizes), 20_000))
        naive = naive_rate(path, sink.port, args.naive_sample, None)
        naive_dkim = naive_rate(path, sink.port, args.naive_sample, key_file)
    finally:
        sink.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)
    report(runs, size, source, naive, naive_dkim, args.connections)


def report(
    runs: list[Run], size: int, source: float, naive: float, naive_dkim: float, connections: int
) -> None:
    print()
    print(
        f"message size {size / 1024:.1f} KB, {connections} SMTP connections, "
        f"{os.cpu_count()} CPU cores"
    )
    print(f"baseline smtp-source (C, same size and connections): {source:8,.0f} msg/s")
    print(f"baseline naive path (render + EmailMessage + smtplib): {naive:8,.1f} msg/s")
    print(f"baseline naive path with dkimpy signing:               {naive_dkim:8,.1f} msg/s")
    print()
    header = (
        f"{'database':10} {'subscribers':>11} {'DKIM':>4} {'clicks':>9} {'workers':>7} "
        f"{'msg/s':>8} "
        f"{'/ smtp-source':>13} {'/ naive':>8} {'peak RSS':>9} {'CPU/msg':>8} {'created':>8}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        against = naive_dkim if run.dkim else naive
        print(
            f"{run.database:10} {run.subscribers:>11,} {'yes' if run.dkim else 'no':>4} "
            f"{run.tracking:>9} {run.workers:>7} {run.rate:>8,.0f} {run.rate / source:>13.2f} "
            f"{run.rate / against:>7.0f}x {run.rss_mb:>7.1f} MB "
            f"{run.cpu / max(run.sent, 1) * 1e6:>5.0f} us {run.create_seconds:>6.1f} s"
        )
    by_key: dict[tuple[str, bool, int, str], dict[int, Run]] = {}
    for run in runs:
        key = (run.database, run.dkim, run.workers, run.tracking)
        by_key.setdefault(key, {})[run.subscribers] = run
    for (database, signed, workers, tracking), sized in sorted(by_key.items()):
        ordered = sorted(sized)
        what = f"{database} DKIM {'yes' if signed else 'no'} clicks {tracking} workers {workers}"
        for small, large in itertools.pairwise(ordered):
            print(
                f"{what}: {large:,} / {small:,} subscribers: peak memory "
                f"{sized[large].rss_mb / sized[small].rss_mb:.2f}x, "
                f"rate {sized[large].rate / sized[small].rate:.2f}x"
            )
    for (database, signed, workers, tracking), sized in sorted(by_key.items()):
        single = by_key.get((database, signed, 1, tracking), {})
        untracked = by_key.get((database, signed, workers, "off"), {})
        for count, run in sorted(sized.items()):
            what = f"{database} DKIM {'yes' if signed else 'no'} {count:,}"
            if workers > 1 and count in single:
                print(
                    f"{what} clicks {tracking}: {workers} workers "
                    f"on one issue / 1: rate {run.rate / single[count].rate:.2f}x"
                )
            if tracking != "off" and count in untracked:
                print(
                    f"{what} workers {workers}: clicks {tracking} / off: rate "
                    f"{run.rate / untracked[count].rate:.2f}x, peak memory "
                    f"{run.rss_mb / untracked[count].rss_mb:.2f}x"
                )


if __name__ == "__main__":
    main()
