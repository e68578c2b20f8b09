"""Benchmark: `digest posts` on a big blog, cold and warm, against the floor of a cold read and
against the code before (a worktree of the baseline commit), all in one run.

    python bench/posts.py                     # 1,000 posts two days apart, 7 rounds
    python bench/posts.py --quick             # 200 posts, one round, no baseline (make test)
    python bench/posts.py --baseline 2675570  # the commit to compare with
    python bench/posts.py --profile           # also: where a cold in-process read spends its time

The blog is bench/fakeblog.py's (Chinese and English posts with code, math, tables and YAML
front matter), one post every `--days` days, the newest yesterday: the default 30-day lookback
holds about fifteen of them, so `digest posts` lists fifteen and `digest posts --all` all.

Each round runs, one after another: the floor (a minimal script that reads every post file and
parses its front matter with libyaml's CSafeLoader, the least a cold read can do), then a cold
`digest --config … posts` and a cold `posts --all` (every cache removed first: the post cache
and the configuration snapshot, as on a first run) of this checkout and of the baseline, then
a cold `posts` of this checkout with only the post cache removed (the configuration snapshot
the run before left is used: a blog read cold, the configuration unchanged since the last
command), then a warm `posts` of this checkout. Every command runs in a
child process, as a user runs it; its CPU time and peak memory come from wait4(). Ratios are
taken round by round (a round's command over the same round's floor), then their median, so
that the machine's drift during the run moves both sides. The baseline is a detached git
worktree of `--baseline` (default: where this branch left `main`), run by the same interpreter
and dependencies; before timing, both print `posts --all --json` once and the run says whether
the two agree. Nothing is asserted: this is a measurement.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from children import child_environment  # noqa: E402
from fakeblog import write_blog  # noqa: E402
from tables import table  # noqa: E402

CONFIG = """\
site:
  title: Bench Blog
  base_url: https://blog.example.com
  locale: zh
sources:
  - type: markdown
    path: posts
"""

# The floor of a cold read: every post file read, its YAML front matter parsed by libyaml.
FLOOR = r"""
import os, sys, yaml
count = 0
for root, _, names in os.walk(sys.argv[1]):
    for name in sorted(names):
        if name.endswith(".md"):
            with open(os.path.join(root, name), encoding="utf-8") as handle:
                text = handle.read()
            if text.startswith("---\n"):
                yaml.load(text[4:text.find("\n---", 4)], Loader=yaml.CSafeLoader)
                count += 1
print(count)
"""


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    cpu: float  # user + system seconds of the child: steadier than wall time on a busy machine
    rss_mb: float
    stdout: bytes


def run(command: list[str], *, pythonpath: Path | None = None, cwd: Path | None = None) -> Run:
    """The command in a child process: its wall time, CPU time and peak RSS."""
    env = child_environment(pythonpath)  # bytecode written and used, as when installed
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)  # wait4: this child's own figures
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench/posts.py: {' '.join(command)} failed: {stderr.decode()[-800:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout)


@dataclass(slots=True)
class Checkout:
    """A tree of digest to run: this one, or the baseline's worktree."""

    name: str
    root: Path

    def digest(self, config: Path, *args: str) -> Run:
        command = [sys.executable, "-m", "digest.cli", "--config", str(config), *args]
        return run(command, pythonpath=self.root, cwd=config.parent)


@dataclass(slots=True)
class Series:
    label: str
    runs: list[Run] = field(default_factory=list)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def baseline_commit(requested: str | None) -> str | None:
    """The commit to compare with: `requested`, else where HEAD left main (None when HEAD is
    on main already, or `none` was asked for)."""
    if requested == "none":
        return None
    ref = requested or _git("merge-base", "HEAD", "main")
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    if requested is None and commit == _git("rev-parse", "HEAD"):
        return None
    return commit


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def cold(checkout: Checkout, config: Path, *args: str, keep_config: bool = False) -> Run:
    """`digest posts` with the post cache removed, and (unless `keep_config`) every other
    cache too: the configuration snapshot as well (digest.config.snapshot), as on a first
    run ever."""
    cache = config.parent / "var" / "cache"
    shutil.rmtree(cache / "posts" if keep_config else cache, ignore_errors=True)
    return checkout.digest(config, "posts", *args)


def measure(args: argparse.Namespace, folder: Path, baseline: Checkout | None) -> str:
    load_before = os.getloadavg()[0]
    blog = folder / "blog"
    newest = datetime.now(UTC) - timedelta(days=1)
    write_blog(blog / "posts", args.posts, newest=newest, spacing=timedelta(days=args.days))
    config = blog / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    this = Checkout("this checkout", ROOT)
    checkouts = [this] + ([baseline] if baseline else [])
    agree = ""
    answers = [c.digest(config, "posts", "--all", "--json").stdout for c in checkouts]
    if baseline is not None:  # also the warm-up: the baseline creates its database here
        same = json.loads(answers[0]) == json.loads(answers[1])
        verdict = "the same" if same else "DIFFERENT"
        agree = f"`posts --all --json`: the two checkouts print {verdict} posts and excerpts."
    floor = Series("floor: read the files, libyaml front matter")
    series: dict[tuple[str, str], Series] = {}
    for checkout in checkouts:
        for what in ("posts", "posts --all"):
            series[(checkout.name, what)] = Series(f"cold `digest {what}` ({checkout.name})")
    known = Series("cold `digest posts`, configuration snapshot kept (this checkout)")
    warm = Series("warm `digest posts` (this checkout)")
    for _ in range(args.repeat):
        floor.runs.append(run([sys.executable, "-c", FLOOR, str(blog / "posts")]))
        for checkout in checkouts:
            series[(checkout.name, "posts")].runs.append(cold(checkout, config))
            series[(checkout.name, "posts --all")].runs.append(cold(checkout, config, "--all"))
            if checkout is this:  # before the baseline's cold runs remove the snapshot
                known.runs.append(cold(this, config, keep_config=True))
        this.digest(config, "posts")  # fill the cache for the warm run
        warm.runs.append(this.digest(config, "posts"))
    rows = [("", "wall", "CPU", "wall / floor", "CPU / floor", "peak RSS")]
    for item in [floor, *series.values(), known, warm]:
        pairs = list(zip(item.runs, floor.runs, strict=True))
        rows.append(
            (
                item.label,
                f"{median(r.seconds for r in item.runs):.3f} s",
                f"{median(r.cpu for r in item.runs):.3f} s",
                f"{median(r.seconds / f.seconds for r, f in pairs):.2f}x",
                f"{median(r.cpu / f.cpu for r, f in pairs):.2f}x",
                f"{max(r.rss_mb for r in item.runs):.0f} MB",
            )
        )
    lines = [
        f"`digest posts` on a generated blog of {args.posts:,} posts, one every {args.days:g} "
        f"days (newest yesterday); median of {args.repeat} round(s); load average "
        f"{load_before:.2f} before the run, {os.getloadavg()[0]:.2f} after.",
        f"baseline: {baseline.root.name if baseline else 'none'}",
        "",
        table(rows),
        "",
        "Ratios are per round (the command over that round's floor), then the median.",
        "Targets (issue 22): cold `posts` <= 3x the floor, cold `posts --all` <= 12x.",
    ]
    if agree:
        lines.append(agree)
    return "\n".join(lines)


def profile_cold(posts: int, days: float, folder: Path) -> str:
    """The top of a cProfile of one cold in-process `gather` (this checkout), by own time."""
    sys.path.insert(0, str(ROOT))
    from digest.config.load import load_config
    from digest.config.stages import issue_settings
    from digest.excerpt.memo import remember_excerpts
    from digest.issues.upcoming import gather

    blog = folder / "profiled"
    write_blog(
        blog / "posts",
        posts,
        newest=datetime.now(UTC) - timedelta(days=1),
        spacing=timedelta(days=days),
    )
    (blog / "config.yaml").write_text(CONFIG, encoding="utf-8")
    settings = issue_settings(load_config(blog / "config.yaml", environ={}))
    remember_excerpts({})
    profiler = cProfile.Profile()
    profiler.runcall(gather, settings)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--posts", type=int, default=1000, help="posts in the blog")
    parser.add_argument("--days", type=float, default=2.0, help="days between two posts")
    parser.add_argument("--repeat", type=int, default=7, help="rounds (medians shown)")
    parser.add_argument(
        "--baseline",
        default=None,
        help="commit to compare with (default: git merge-base HEAD main; none: no baseline)",
    )
    parser.add_argument("--quick", action="store_true", help="200 posts, one round: a smoke test")
    parser.add_argument("--profile", action="store_true", help="profile one cold read")
    args = parser.parse_args(argv)
    if args.quick:
        args.posts, args.repeat = 200, 1
        args.baseline = args.baseline or "none"
    with tempfile.TemporaryDirectory(prefix="digest-bench-posts-") as temporary:
        folder = Path(temporary)
        commit = baseline_commit(args.baseline)
        baseline = None
        if commit is not None:
            tree = folder / f"baseline-{commit[:10]}"
            _git("worktree", "add", "--detach", str(tree), commit)
            baseline = Checkout(f"baseline {commit[:10]}", tree)
        try:
            report = measure(args, folder, baseline)
            profile = profile_cold(args.posts, args.days, folder) if args.profile else ""
        finally:
            if baseline is not None:
                _git("worktree", "remove", "--force", str(baseline.root))
    print(report)
    if profile:
        print(f"\nA cold read of {args.posts:,} posts, by own time:\n{profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
