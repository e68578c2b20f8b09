"""What real Hexo, Hugo and Jekyll blogs do that the first fixture blogs did not.

Each case here was found by running `digest init` and `digest posts --json` on public blogs and
comparing with the pages those blogs serve (their committed `public/` or `gh-pages` output).
The fixture blogs under tests/fixtures/blogs/ are written for this project in the style of
those blogs; none of their posts is copied.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.cli import main

BLOGS = Path(__file__).resolve().parent / "fixtures" / "blogs"
ENV = {"DIGEST_DIGEST__LOOKBACK_DAYS": "0"}


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(here)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV)


def init_and_list(blog: Path | str, *extra: str) -> tuple[Result, list[dict[str, Any]]]:
    init = run("init", str(BLOGS / blog if isinstance(blog, str) else blog))
    assert init.exit_code == 0, init.output
    listed = run("posts", "--json", *extra)
    assert listed.exit_code == 0, listed.output
    return init, json.loads(listed.stdout)


def by_title(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["title"]: r for r in rows}


# --- Hexo: front matter without its opening `---` ------------------------------------------


def test_hexo_front_matter_without_the_opening_dashes(folder: Path) -> None:
    # hexo-front-matter reads the YAML before the first `---` line; 86 of 114 posts of one real
    # blog are written so, and they came out titled "title: …", undated, at /slug/ instead of
    # /2018/07/20/slug/, with their front matter as the excerpt.
    _, rows = init_and_list("hexo-bare", "--all")
    posts = by_title(rows)
    numa = posts["NUMA 架构的几个概念"]
    assert numa["url"] == "https://notes.example.cn/2018/07/20/numa-basics/"
    assert numa["date"] == "2018-07-20T21:05:33+08:00"
    assert numa["categories"] == ["基础篇"] and numa["tags"] == ["NUMA", "虚拟化"]
    assert numa["excerpt"] == (
        "NUMA 与 SMP 多路服务器上，每个 CPU 插槽有自己的本地内存，访问远端内存要经过互联总线。..."
    )
    assert posts["标准写法的文章"]["url"] == "https://notes.example.cn/2018/07/22/with-dashes/"
    # prose before a thematic break is not front matter
    plain = posts["没有 front matter 的随笔"]
    assert plain["excerpt"] == "注意：这里的冒号不是 front matter。 分隔线之后的内容。"
    assert plain["date"] is None
