"""Benchmark: printing a long table to a file, Rich's layout against digest.cli.grid's.

    python bench/listing.py              # 10,000 subscribers' rows, 1,000 posts' rows, 5 rounds
    python bench/listing.py --rounds 2   # a quicker look

Each round prints the same table twice to a file (standard output redirected, as `digest
subscribers list > readers.txt` or `digest posts --all | less`): once through Rich's `Table`
(what `digest.cli.output.table` did before) and once through `digest.cli.output.table` (which
draws it with digest.cli.grid when Rich would print plain text), each in a child process, and
checks that the two files are the same bytes. It prints the medians of the CPU time (wait4()),
their ratio, and each side's peak resident memory. Nothing is asserted: this is a measurement.
The rows are shaped like the real ones: addresses and names in Chinese and English for the
subscribers, and the posts table's date, category, title, URL, a 300-character excerpt and
status, wrapped at 100 columns.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from tables import table  # noqa: E402

CHILD = r"""
import sys
sys.path.insert(0, {root!r})
kind, how = sys.argv[1], sys.argv[2]
if kind == "subscribers":
    columns = ["Email", "Name", "Status", "Locale", "Categories"]
    rows = [[f"reader{{n}}@example.com", f"读者 {{n}}" if n % 2 else f"Reader {{n}}", "active",
             "zh" if n % 2 else "en", "编译器;并发" if n % 3 else ""] for n in range(10_000)]
    options = {{}}
else:
    columns = [{{"header": "Date", "no_wrap": True}}, {{"header": "Category", "no_wrap": True}},
               {{"header": "Title / excerpt", "ratio": 1}}, {{"header": "Status", "no_wrap": True}}]
    excerpt = "读者可以先跳过推导，直接看最后的结论和代码。timeout 参数的单位是秒，而不是毫秒。" * 4
    rows = [[f"2026-{{1 + n % 12:02d}}-{{1 + n % 28:02d}}", ["机器学习", "Rust", "编译器"][n % 3],
             f"梯度下降笔记（{{n}}）\nhttps://blog.example.com/posts/zh-post-{{n:05d}}/\n"
             + excerpt, ["new", "too-old", "sent"][n % 3]] for n in range(1_000)]
    options = {{"show_lines": True, "expand": True}}
from digest.cli import output
if how == "rich":
    from rich.table import Table
    grid = Table(**options)
    for column in columns:
        spec = dict(column) if isinstance(column, dict) else {{"header": column}}
        grid.add_column(output.plain(spec.pop("header")), **spec)
    for row in rows:
        grid.add_row(*(output.styled(cell) for cell in row))
    output.console().print(grid)
else:
    output.table(columns, rows, **options)
"""


def run(kind: str, how: str, out: Path) -> tuple[float, float]:
    """The child's CPU seconds and peak RSS (MB), its table written to `out`."""
    with out.open("wb") as handle:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(root=str(ROOT)), kind, how],
            stdout=handle,
            env={**os.environ, "COLUMNS": "100"},
        )
        _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench/listing.py: the {how} {kind} table failed")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = [("table", "Rich CPU", "digest CPU", "digest / Rich", "Rich RSS", "digest RSS", "same")]
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("subscribers", "posts"):
            figures: dict[str, list[tuple[float, float]]] = {"rich": [], "digest": []}
            same = True
            for _ in range(args.rounds):
                for how in ("rich", "digest"):
                    figures[how].append(run(kind, how, Path(folder) / f"{how}.txt"))
                rich, ours = (Path(folder) / f"{h}.txt" for h in ("rich", "digest"))
                same = same and rich.read_bytes() == ours.read_bytes()
            cpu = {h: statistics.median(c for c, _ in f) for h, f in figures.items()}
            rss = {h: max(r for _, r in f) for h, f in figures.items()}
            rows.append(
                (
                    f"{kind} ({'10,000' if kind == 'subscribers' else '1,000'} rows)",
                    f"{cpu['rich']:.3f} s",
                    f"{cpu['digest']:.3f} s",
                    f"{cpu['digest'] / cpu['rich']:.2f}x",
                    f"{rss['rich']:.0f} MB",
                    f"{rss['digest']:.0f} MB",
                    "yes" if same else "NO",
                )
            )
    print(
        f"A table printed to a file, medians of {args.rounds} rounds; load average "
        f"{os.getloadavg()[0]:.2f}. CPU includes starting the interpreter and importing.\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
