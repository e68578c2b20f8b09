"""Generate a big blog of realistic posts for bench/posts.py (Chinese and English, with code,
math, tables, lists, links, images, YAML front matter with categories and tags).

Deterministic for a given seed, so two runs of the benchmark read the same blog. The text is
assembled from phrase pools written for this benchmark: nothing is copied from a real blog.
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timedelta
from pathlib import Path

ZH_TOPICS = [
    ("缓存", "缓存失效"),
    ("并发", "无锁队列"),
    ("数据库", "索引选择"),
    ("编译器", "寄存器分配"),
    ("机器学习", "梯度下降"),
    ("分布式", "一致性哈希"),
    ("网络", "拥塞控制"),
    ("操作系统", "页表与 TLB"),
]
EN_TOPICS = [
    ("Python", "generators"),
    ("Databases", "write-ahead logs"),
    ("Rust", "lifetimes"),
    ("Networking", "TCP slow start"),
    ("Machine learning", "attention"),
    ("Systems", "memory allocators"),
]
ZH_SENTENCES = [
    "很多人第一次遇到这个问题时，都会先怀疑硬件，而不是自己的代码。",
    "把问题拆成更小的部分之后，真正的瓶颈往往一目了然。",
    "这里的关键在于：我们只在必要的时候才做昂贵的计算。",
    "实验在一台两核的机器上完成，数据集大约有一百万条记录。",
    "如果把阈值调得太低，系统就会频繁地抖动；调得太高，延迟又会明显上升。",
    "下面的例子来自一次真实的线上故障复盘，细节做了简化。",
    "读者可以先跳过推导，直接看最后的结论和代码。",
    "这个技巧并不新鲜，但在工程实践中常常被忽略。",
    "我们用 **基准测试** 而不是直觉来回答这个问题。",
    "注意 `timeout` 参数的单位是秒，而不是毫秒。",
]
EN_SENTENCES = [
    "Most of the time the slow part is not where you would guess.",
    "We measure first, then change one thing, then measure again.",
    "The trick is to do the expensive work once and reuse it everywhere.",
    "This post walks through a real incident, simplified for clarity.",
    "If the threshold is too low the system thrashes; too high and latency grows.",
    "You can skip the derivation and go straight to the code below.",
    "None of this is new, but it is easy to forget under a deadline.",
    "The `timeout` argument is in seconds, not milliseconds.",
    "We use **benchmarks**, not intuition, to settle the question.",
    "A two-core machine and a million rows are enough to see the effect.",
]
CODE = [
    (
        "python",
        "def cached(fn):\n    memo = {}\n    def wrapper(*args):\n"
        "        if args not in memo:\n            memo[args] = fn(*args)\n"
        "        return memo[args]\n    return wrapper\n",
    ),
    ("bash", 'for f in posts/*.md; do\n  wc -c "$f"\ndone | sort -n | tail -3\n'),
    (
        "rust",
        "fn main() {\n    let v: Vec<u64> = (1..=10).collect();\n"
        '    println!("{}", v.iter().sum::<u64>());\n}\n',
    ),
    ("sql", "SELECT id, title FROM posts\nWHERE published_at > now() - interval '30 days'\n"),
]
DISPLAY_MATH = [
    "$$\n\\mathrm{softmax}(x)_i = \\frac{e^{x_i}}{\\sum_j e^{x_j}}\n$$",
    "$$\nT(n) = 2T(n/2) + O(n) = O(n \\log n)\n$$",
    "$$\n\\theta_{t+1} = \\theta_t - \\eta \\nabla_\\theta L(\\theta_t)\n$$",
]
INLINE_MATH = ["$O(n^2)$", "$\\alpha = 0.9$", "$e^{x}$", "$\\log_2 n$"]


TABLE = (
    "| n | time | memory |\n| --- | --- | --- |\n| 1000 | 0.3 s | 40 MB |\n| 5000 | 1.4 s | 90 MB |"
)


def paragraph(rng: random.Random, zh: bool, sentences: int) -> str:
    pool = ZH_SENTENCES if zh else EN_SENTENCES
    words = [rng.choice(pool) for _ in range(sentences)]
    if rng.random() < 0.5:
        math = rng.choice(INLINE_MATH)
        words.insert(
            rng.randrange(len(words) + 1), f"复杂度为 {math}。" if zh else f"It costs {math}."
        )
    return ("" if zh else " ").join(words)


def body(rng: random.Random, zh: bool, more: bool) -> str:
    parts = [paragraph(rng, zh, rng.randint(3, 6))]
    if more:
        parts.append("<!--more-->")
    for section in range(rng.randint(3, 6)):
        heading = ("## 第 {} 部分" if zh else "## Part {}").format(section + 1)
        parts.append(heading)
        parts.append(paragraph(rng, zh, rng.randint(4, 8)))
        roll = rng.random()
        if roll < 0.45:
            language, code = rng.choice(CODE)
            parts.append(f"```{language}\n{code}```")
        elif roll < 0.7:
            parts.append(rng.choice(DISPLAY_MATH))
        elif roll < 0.85:
            pool = ZH_SENTENCES if zh else EN_SENTENCES
            parts.append("\n".join(f"- {rng.choice(pool)}" for _ in range(3)))
        else:
            parts.append(TABLE)
        if rng.random() < 0.3:
            link = f"[the docs](https://example.org/docs/{section})"
            parts.append(f"![figure {section}](/images/fig-{section}.png) See {link}.")
    return "\n\n".join(parts) + "\n"


def front_matter(rng: random.Random, number: int, zh: bool, date: datetime) -> tuple[str, str]:
    category, topic = rng.choice(ZH_TOPICS if zh else EN_TOPICS)
    title = f"{topic}笔记（{number}）" if zh else f"Notes on {topic}, part {number}"
    topics = ZH_TOPICS if zh else EN_TOPICS
    pool = [t for _, t in topics] + ["性能" if zh else "performance", "benchmark"]
    tags = ", ".join(dict.fromkeys(rng.sample(pool, 3)))
    lines = [
        "---",
        f'title: "{title}"',
        f"date: {date:%Y-%m-%d %H:%M:%S}",
        f"categories: [{category}]",
        f"tags: [{tags}]",
    ]
    if rng.random() < 0.15:
        lines.append(f'summary: "{rng.choice(ZH_SENTENCES if zh else EN_SENTENCES)}"')
    if rng.random() < 0.03:
        lines.append("draft: true")
    lines.append("---")
    slug = f"{date:%Y-%m-%d}-{'zh' if zh else 'en'}-post-{number:05d}"
    return "\n".join(lines) + "\n\n", slug


def write_blog(
    folder: Path,
    count: int,
    *,
    newest: datetime,
    seed: int = 15,
    spacing: timedelta = timedelta(hours=13),
) -> list[Path]:
    """Write `count` posts into `folder` (created), one every `spacing` back from `newest`, and
    date the files a day back (a blog's posts are not written in the second it is read)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    stamp = time.time_ns() - 86400 * 10**9
    for number in range(count):
        zh = rng.random() < 0.7
        date = newest - spacing * (count - 1 - number)
        head, slug = front_matter(rng, number, zh, date)
        path = folder / f"{slug}.md"
        path.write_text(head + body(rng, zh, more=rng.random() < 0.3), encoding="utf-8")
        os.utime(path, ns=(stamp, stamp))
        written.append(path)
    return written
