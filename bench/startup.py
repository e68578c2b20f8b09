"""Benchmark: how long `digest` takes to answer, against `python -c "import click"`.

    python bench/startup.py              # 21 paired rounds
    python bench/startup.py --rounds 5   # a quicker look

Each round runs `python -c "import click"` (the yardstick: the interpreter, its site
packages and the command-line library, which any click command pays) and then, right after
it, one of: `digest --version`, `digest --help`, a warm `digest posts` and a warm `digest
status` on the demo blog, each as a user runs it, in a child process. The ratio is taken pair
by pair (the command over the yardstick run just before it), so that the machine's drift moves
both sides, and the median of the ratios is printed with the median seconds (wall, and CPU
from wait4()) and the peak resident memory (wait4()'s ru_maxrss) of each side.

The demo is the repository's config.yaml and examples/blog in a temporary folder, set up as
`make demo` leaves it (its subscribers imported, so the database exists); "warm" means the
post cache is filled by one run before the timed ones. Nothing is asserted: this is a
measurement.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from children import child_environment  # noqa: E402
from tables import table  # noqa: E402


@dataclass(frozen=True, slots=True)
class Timing:
    seconds: float
    cpu: float
    peak_kib: int


def timed(command: list[str], cwd: Path) -> Timing:
    env = child_environment(ROOT)
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    assert child.stderr is not None
    errors = child.stderr.read()
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench/startup.py: {' '.join(command)} failed: {errors.decode()[-800:]}")
    return Timing(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def digest_command() -> list[str]:
    """The `digest` console script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("digest")
    return [str(script)] if script.exists() else [sys.executable, "-m", "digest.cli"]


def demo(folder: Path) -> Path:
    """The repository's demo configuration in `folder`, its paths made absolute, its
    subscribers imported (`make demo`), its post cache filled."""
    text = (ROOT / "config.yaml").read_text("utf-8")
    text = re.sub(r"(?m)^(\s+path:) examples/blog$", rf"\1 {ROOT / 'examples' / 'blog'}", text)
    text = re.sub(r"(?m)^templates_dir: templates$", f"templates_dir: {ROOT / 'templates'}", text)
    config = folder / "config.yaml"
    config.write_text(text, "utf-8")
    digest = [*digest_command(), "--config", str(config)]
    subprocess.run(
        [*digest, "subscribers", "import", str(ROOT / "subscribers" / "example.csv")],
        check=True,
        capture_output=True,
        cwd=folder,
        env=child_environment(ROOT),
    )
    for warm_up in (["posts"], ["status"]):
        timed([*digest, *warm_up], folder)
    return config


@dataclass(slots=True)
class Pairs:
    label: str
    command: list[str]
    runs: list[Timing] = field(default_factory=list)
    yardstick: list[Timing] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=21, help="paired runs per command")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="digest-bench-startup-") as temporary:
        folder = Path(temporary)
        config = demo(folder)
        digest = digest_command()
        configured = [*digest, "--config", str(config)]
        commands = [
            Pairs("digest --version", [*digest, "--version"]),
            Pairs("digest --help", [*digest, "--help"]),
            Pairs("warm digest posts (demo)", [*configured, "posts"]),
            Pairs("warm digest status (demo)", [*configured, "status"]),
        ]
        click = [sys.executable, "-c", "import click"]
        for _ in range(args.rounds):
            for pairs in commands:
                pairs.yardstick.append(timed(click, folder))
                pairs.runs.append(timed(pairs.command, folder))
    rows = [
        (
            "",
            "wall",
            "CPU",
            "peak RSS",
            "yardstick wall",
            "wall / click",
            "CPU / click",
            "RSS / click",
            "target",
        )
    ]
    for pairs, target in zip(commands, (3.0, 4.0, 6.0, None), strict=True):
        together = list(zip(pairs.runs, pairs.yardstick, strict=True))
        rows.append(
            (
                pairs.label,
                f"{statistics.median(r.seconds for r in pairs.runs):.3f} s",
                f"{statistics.median(r.cpu for r in pairs.runs):.3f} s",
                f"{statistics.median(r.peak_kib for r in pairs.runs) / 1024:.1f} MiB",
                f"{statistics.median(y.seconds for y in pairs.yardstick):.3f} s",
                f"{statistics.median(r.seconds / y.seconds for r, y in together):.2f}x",
                f"{statistics.median(r.cpu / y.cpu for r, y in together):.2f}x",
                f"{statistics.median(r.peak_kib / y.peak_kib for r, y in together):.2f}x",
                f"<= {target:g}x" if target else "",
            )
        )
    print(
        f'`digest` against `python -c "import click"`, {args.rounds} paired rounds, medians; '
        f"{os.cpu_count()} cores; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after.\n"
    )
    print(table(rows))
    print("\nRatios are per pair (the command over the yardstick run just before it), then")
    print("the median. Targets: issue 22's.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
