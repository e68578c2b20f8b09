"""The fault storm as a benchmark: how many `unknown` a storm leaves, now and before issue 20.

    python bench/storm.py                      # 100,000 subscribers, 100 faults, median of 3
    python bench/storm.py --subscribers 20000 --faults 20 --runs 3
    python bench/storm.py --quick              # a smoke run of a few seconds (one storm)
    python bench/storm.py --subscribers 10000 --faults 20 --pipelines 1,5   # smtp.pipeline

Each run sends one issue with `digest send --yes` and two `digest send --worker` on a
throwaway PostgreSQL (synchronous_commit on, as PostgreSQL ships: a crash then loses no
committed transaction), supervised as systemd would restart them, while a seeded storm
(tests/support/storm.py) kills them, restarts the database (-m fast, -m immediate, kept down
`--down` seconds), drops SMTP connections before the data and after the final dot, answers
421 and 451 in bursts and stalls replies. The same storm (same seed, same faults at the same
points of the send) runs against this tree and against the code before issue 20: a git
worktree of `--baseline` (default: where this branch left main), in the same run. It prints,
per code, the median over the runs of `unknown`, and for every run `twice` (anyone stored
twice by the server), `missed` (never stored), missed-but-not-unknown, lines of driver text
or tracebacks, and the seconds it took. Nothing is asserted: tests/e2e/test_outage.py does that.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.storm import KINDS, plan, storm  # noqa: E402


def baseline_tree(reference: str, folder: Path) -> tuple[Path, str]:
    """A worktree of `reference` (default: the merge base of HEAD and main)."""
    if not reference:
        reference = subprocess.run(
            ["git", "merge-base", "HEAD", "main"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    tree = folder / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), reference],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return tree, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--down", type=float, default=5.0, help="seconds a pg-down lasts")
    parser.add_argument("--baseline", default="", help="git ref of the code to compare with")
    parser.add_argument("--no-baseline", action="store_true", help="only this tree")
    parser.add_argument(
        "--pipelines",
        default="",
        help="e.g. 1,5: this tree once per smtp.pipeline (default: its own)",
    )
    parser.add_argument("--quick", action="store_true", help="one small storm of this tree")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.faults, args.runs, args.no_baseline = 300, 4, 1, True
        args.down = 1.0
    folder = Path(tempfile.mkdtemp(prefix="digest-storm-"))
    pipelines = [int(n) for n in args.pipelines.split(",") if n]
    # name -> (the code to run, its smtp settings beyond the storm's own)
    codes: dict[str, tuple[Path, dict[str, Any]]] = (
        {f"now N={n}": (ROOT, {"pipeline": n}) for n in pipelines}
        if pipelines
        else {"now": (ROOT, {})}
    )
    reference = ""
    if not args.no_baseline:
        tree, reference = baseline_tree(args.baseline, folder)
        codes["before"] = (tree, {})
    postgres = PostgresServer(durable=True)
    postgres.start()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    try:
        for run in range(args.runs):
            seed = args.seed + run

            faults = plan(random.Random(seed), args.faults, KINDS)
            for index, (name, (root, smtp)) in enumerate(codes.items()):
                figures = storm(
                    folder / f"code{index}-{run}",
                    postgres,
                    args.subscribers,
                    faults,
                    seed=seed,
                    root=root,
                    down=args.down,
                    smtp=smtp,
                )
                row = figures.as_dict()
                results[name].append(row)
                print(f"run {run + 1} ({name}): {json.dumps(row)}", flush=True)
    finally:
        postgres.stop()
        if "before" in codes:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(codes["before"][0])],
                cwd=ROOT,
                capture_output=True,
            )
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print(
        f"{args.subscribers:,} subscribers, {args.faults} faults, {args.runs} run(s), "
        f"seeds {args.seed}..{args.seed + args.runs - 1}"
        + (f", before = {reference[:10]}" if reference else "")
    )
    print(
        f"{'code':<10} {'unknown (median)':>17} {'twice':>6} {'missed':>7} {'missed!unk':>10} "
        f"{'foreign':>8} {'seconds':>8}"
    )
    for name, rows in results.items():
        print(
            f"{name:<10} {statistics.median(r['unknown'] for r in rows):>17g} "
            f"{max(r['twice'] for r in rows):>6} {max(r['missed'] for r in rows):>7} "
            f"{max(r['missed_not_unknown'] for r in rows):>10} "
            f"{max(r['foreign_lines'] for r in rows):>8} "
            f"{statistics.median(r['seconds'] for r in rows):>8.0f}"
        )
    if results.get("before"):
        before = statistics.median(r["unknown"] for r in results["before"])
        for name, rows in results.items():
            if name != "before":
                now = statistics.median(r["unknown"] for r in rows)
                print(f"unknown {name} / before: {now / before if before else 0.0:.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
