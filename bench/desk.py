"""The desk's subscribers page stays flat with size (issue 24).

For each database (SQLite, PostgreSQL) and each audience size (10,000 and 1,000,000 by
default), the real desk app (`digest serve`'s, logged in as an administrator, through
Starlette's TestClient: no network) answers three pages, each timed as the median of several
requests:

- the first page (`/admin/subscribers`),
- a later page (`?after=ID` near the end: a keyset page, never an OFFSET),
- a search by address prefix (`?q=PREFIX&match=prefix`: an index range).

The sizes' requests take turns (the median of `--repeats` each), so that load from elsewhere
on the machine falls on every size alike. It prints the times and, per database, the ratio
of the largest size to the smallest, and exits 1 if a ratio passes `--limit` (1.5). The
times are ratios within one run on one machine: compare nothing across runs.

    python bench/desk.py                      # 10,000 and 1,000,000 on SQLite and PostgreSQL
    python bench/desk.py --quick              # a smoke run of a few seconds (SQLite)
    python bench/desk.py --sizes 10000,200000 --databases sqlite
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from digest.access.admins import add_user  # noqa: E402
from digest.config.load import load_config  # noqa: E402
from digest.store.database import Database, open_database  # noqa: E402
from digest.store.subscribers import insert_many  # noqa: E402
from digest.web.public import create_public_app  # noqa: E402

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BASE = "http://127.0.0.1:8080"
PASSWORD = "correct horse battery staple"
PAGES = ("first page", "later page", "prefix search")


@dataclass
class Timing:
    database: str
    size: int
    seconds: dict[str, float]


def people(count: int) -> Iterator[tuple[str, str, str | None]]:
    """Deterministic, varied addresses: a hashed local part, one of a few dozen domains."""
    for n in range(count):
        digest = hashlib.blake2b(n.to_bytes(8, "little"), digest_size=6).hexdigest()
        yield f"{digest}.{n}@example{n % 37}.com", f"Reader {n}", "zh" if n % 3 else "en"


def config_file(folder: Path, url: str) -> Path:
    blog = ROOT / "examples" / "blog"
    (folder / "web-secret").write_text("bench-secret\n", encoding="utf-8")
    path = folder / "config.yaml"
    path.write_text(
        f"""site:
  title: Bench
  base_url: https://blog.example.com
  postal_address: Bench Street 1
sources:
  - type: markdown
    path: {blog}
database:
  url: {url}
web:
  base_url: {BASE}
  secret_file: web-secret
""",
        encoding="utf-8",
    )
    return path


def fill(database: Database, size: int) -> None:
    started = time.perf_counter()
    with database.transaction() as connection:
        insert_many(connection, people(size))
    with database.engine.connect() as connection:
        if database.engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE subscribers")
            )
        else:
            connection.execute(text("ANALYZE"))
            connection.commit()
    print(f"    filled {size:,} subscribers in {time.perf_counter() - started:.1f} s")


@dataclass
class Prepared:
    """One filled database, its desk logged in, and the three pages' URLs."""

    database: Database
    client: TestClient
    urls: dict[str, str]


def prepare(url: str, size: int, folder: Path) -> Prepared:
    database = open_database(url)
    fill(database, size)
    with database.session() as session:
        add_user(session, "bench", PASSWORD, datetime.now(UTC))
        last = session.execute(text("SELECT max(id) FROM subscribers")).scalar_one()
    config = load_config(config_file(folder, url), environ={})
    client = TestClient(create_public_app(config, database), base_url=BASE, follow_redirects=False)
    login = client.post(
        "/admin/login", data={"name": "bench", "password": PASSWORD}, headers={"Origin": BASE}
    )
    assert login.status_code == 303, login.text
    urls = {
        "first page": "/admin/subscribers",
        "later page": f"/admin/subscribers?after={int(last) - 120}",
        # a prefix that matches about a sixteenth of the audience, whatever its size
        "prefix search": "/admin/subscribers?q=a&match=prefix",
    }
    for page in urls.values():  # warm: the first request of a kind loads templates and plans
        answer = client.get(page)
        assert answer.status_code == 200, (page, answer.status_code)
    found = client.get(urls["prefix search"]).text.count('href="/admin/subscribers/')
    assert found >= 50, f"the prefix search found {found} rows"
    return Prepared(database, client, urls)


def interleaved(kind: str, prepared: dict[int, Prepared], repeats: int) -> list[Timing]:
    """Each page's median time at each size, the sizes' requests taking turns, so that load
    from elsewhere on the machine falls on every size alike."""
    times: dict[tuple[int, str], list[float]] = {}
    for _ in range(repeats):
        for name in PAGES:
            for size, ready in prepared.items():
                started = time.perf_counter()
                answer = ready.client.get(ready.urls[name])
                times.setdefault((size, name), []).append(time.perf_counter() - started)
                assert answer.status_code == 200 and "table" in answer.text
    return [
        Timing(kind, size, {name: statistics.median(times[size, name]) for name in PAGES})
        for size in prepared
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--limit", type=float, default=1.5)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.databases, args.repeats = "2000,20000", "sqlite", 7
    sizes = sorted(int(s) for s in args.sizes.split(","))
    kinds = args.databases.split(",")
    postgres: Any = None
    timings: list[Timing] = []
    root = Path(tempfile.mkdtemp(prefix="digest-bench-desk-"))
    try:
        if "postgresql" in kinds:
            from tests.support.postgres import PostgresServer

            postgres = PostgresServer()
            postgres.start()
        for kind in kinds:
            prepared: dict[int, Prepared] = {}
            for size in sizes:
                folder = Path(tempfile.mkdtemp(dir=root))
                url = (
                    f"sqlite:///{folder / 'bench.sqlite3'}"
                    if kind == "sqlite"
                    else postgres.new_database()
                )
                print(f"  {kind} {size:,} subscribers")
                prepared[size] = prepare(url, size, folder)
            try:
                for timing in interleaved(kind, prepared, args.repeats):
                    timings.append(timing)
                    print(
                        f"  {kind:10} {timing.size:>9,}  "
                        + "  ".join(f"{n} {timing.seconds[n] * 1000:6.1f} ms" for n in PAGES)
                    )
            finally:
                for ready in prepared.values():
                    ready.database.dispose()
    finally:
        if postgres is not None:
            postgres.stop()
    failed = False
    print(f"\nlargest over smallest audience ({sizes[-1]:,} / {sizes[0]:,}), limit {args.limit}x:")
    for kind in kinds:
        small = next(t for t in timings if t.database == kind and t.size == sizes[0])
        large = next(t for t in timings if t.database == kind and t.size == sizes[-1])
        for name in PAGES:
            ratio = large.seconds[name] / small.seconds[name]
            verdict = "ok" if ratio <= args.limit else "TOO SLOW"
            failed = failed or ratio > args.limit
            print(f"  {kind:10} {name:14} {ratio:5.2f}x  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
