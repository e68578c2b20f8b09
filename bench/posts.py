"""Benchmark: `digest posts` on a big blog, cold (nothing cached) and warm (the post cache).

    python bench/posts.py                 # 1,000 and 5,000 posts, median of 3 runs each
    python bench/posts.py --quick         # a smoke run of a few seconds (make test runs it)
    python bench/posts.py --profile       # also: where a cold read spends its time (cProfile)

For each size it writes a generated blog (bench/fakeblog.py: Chinese and English posts with
code, math, tables and YAML front matter, the newest yesterday) and runs the real command,
`digest --config … posts`, in a child process: cold (the cache folder removed first), then
warm (the same command again), then after editing one post. Each child's peak RSS comes from
wait4(). In the same run it measures the baseline that no cache can remove, the start-up of
the command (`digest --version`), and the in-process read alone (`gather`), cold and warm.
It prints seconds (wall and CPU), the warm/cold ratio (the issue asks for at most 0.35 at
1,000 posts) and peak memory. Nothing is asserted beyond warm output == cold output: this
is a measurement.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fakeblog import write_blog  # noqa: E402
from tables import table  # noqa: E402

from digest.config.load import load_config  # noqa: E402
from digest.config.schema import Config  # noqa: E402
from digest.excerpt.rules import remember_excerpts  # noqa: E402
from digest.issues.send import gather  # noqa: E402

CONFIG = """\
site:
  title: Bench Blog
  base_url: https://blog.example.com
  locale: zh
sources:
  - type: markdown
    path: posts
"""


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    cpu: float  # user + system seconds of the child: steadier than wall time on a busy machine
    rss_mb: float
    stdout: bytes


def run_command(*args: str) -> Run:
    """The command in a child process, as a user runs it: its wall time and peak RSS."""
    command = [sys.executable, "-m", "digest.cli", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # wait4: this child's own peak RSS
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"bench/posts.py: {' '.join(args)} failed: {stderr.decode()[-500:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout)


@dataclass(slots=True)
class Size:
    posts: int
    startup: list[float]
    cold: list[Run]
    warm: list[Run]
    edited: list[Run]
    read_cold: list[float]
    read_warm: list[float]
    cache_mb: float

    @property
    def ratio(self) -> float:
        return median(r.seconds for r in self.warm) / median(r.seconds for r in self.cold)

    @property
    def cpu_ratio(self) -> float:
        return median(r.cpu for r in self.warm) / median(r.cpu for r in self.cold)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def measure(posts: int, repeat: int, folder: Path) -> Size:
    blog = folder / f"blog-{posts}"
    newest = datetime.now(UTC) - timedelta(days=1)
    files = write_blog(blog / "posts", posts, newest=newest)
    config = blog / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    cache = blog / "var" / "cache"
    size = Size(posts, [], [], [], [], [], [], 0.0)
    for number in range(repeat):
        size.startup.append(run_command("--version").seconds)
        shutil.rmtree(cache, ignore_errors=True)
        size.cold.append(run_command("--config", str(config), "posts"))
        size.warm.append(run_command("--config", str(config), "posts"))
        if size.warm[-1].stdout != size.cold[-1].stdout:
            raise SystemExit("bench/posts.py: the warm run printed something else than the cold")
        edited = files[number % len(files)]
        edited.write_text(edited.read_text("utf-8") + "\nOne more line.\n", "utf-8")
        size.edited.append(run_command("--config", str(config), "posts"))
    size.cache_mb = sum(f.stat().st_size for f in cache.rglob("*.json")) / 2**20
    loaded = load_config(config, environ={})
    for _ in range(repeat):
        size.read_cold.append(timed_gather(loaded, cold=True))
        size.read_warm.append(timed_gather(loaded, cold=False))
    return size


def timed_gather(config: Config, *, cold: bool) -> float:
    if cold:
        shutil.rmtree(config.path(config.cache_dir), ignore_errors=True)
        remember_excerpts({})  # nor the excerpts this process remembers from its last read
    start = time.perf_counter()
    gather(config)
    return time.perf_counter() - start


def profile_cold(posts: int, folder: Path) -> str:
    """The top of a cProfile of one cold in-process read, by cumulative time."""
    config = load_config(folder / f"blog-{posts}" / "config.yaml", environ={})
    shutil.rmtree(config.path(config.cache_dir), ignore_errors=True)
    remember_excerpts({})
    profiler = cProfile.Profile()
    profiler.runcall(gather, config)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median shown)")
    parser.add_argument("--quick", action="store_true", help="200 posts, one run: a smoke test")
    parser.add_argument("--profile", action="store_true", help="profile one cold read")
    args = parser.parse_args(argv)
    sizes = [200] if args.quick else args.sizes
    repeat = 1 if args.quick else max(1, args.repeat)
    with tempfile.TemporaryDirectory(prefix="digest-bench-posts-") as temporary:
        folder = Path(temporary)
        results = [measure(posts, repeat, folder) for posts in sizes]
        profile = profile_cold(sizes[0], folder) if args.profile else ""
    print(f"`digest posts` on a generated blog; median of {repeat} run(s) per size.\n")
    rows = [
        (
            "posts",
            "start-up",
            "cold",
            "warm",
            "warm/cold",
            "CPU cold",
            "CPU warm",
            "CPU w/c",
            "1 edited",
            "read cold",
            "read warm",
            "read w/c",
            "RSS cold",
            "RSS warm",
            "cache file",
        )
    ]
    for size in results:
        read_cold, read_warm = median(size.read_cold), median(size.read_warm)
        rows.append(
            (
                f"{size.posts:,}",
                f"{median(size.startup):.2f} s",
                f"{median(r.seconds for r in size.cold):.2f} s",
                f"{median(r.seconds for r in size.warm):.2f} s",
                f"{size.ratio:.2f}",
                f"{median(r.cpu for r in size.cold):.2f} s",
                f"{median(r.cpu for r in size.warm):.2f} s",
                f"{size.cpu_ratio:.2f}",
                f"{median(r.seconds for r in size.edited):.2f} s",
                f"{read_cold:.2f} s",
                f"{read_warm:.3f} s",
                f"{read_warm / read_cold:.3f}",
                f"{max(r.rss_mb for r in size.cold):.0f} MB",
                f"{max(r.rss_mb for r in size.warm):.0f} MB",
                f"{size.cache_mb:.1f} MB",
            )
        )
    print(table(rows))
    print(
        "\nstart-up: `digest --version`, the floor of any command. cold/warm/1 edited: the whole"
        "\ncommand (CPU: its user + system time). read: `gather` in this process (no start-up),"
        "\ncold then warm."
    )
    if profile:
        print(f"\nA cold read of {sizes[0]:,} posts, by own time:\n{profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
