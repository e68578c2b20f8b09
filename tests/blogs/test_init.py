"""`digest init` on a Hexo, a Hugo and a Jekyll blog, then `digest posts --json`.

The fixtures under tests/fixtures/blogs/ are small blogs written in the style of real ones
(TOML front matter and page bundles in Hugo, folder-per-post and JSON front matter in Hexo,
dated `_posts` and `published: false` in Jekyll, drafts, scheduled and expired posts, tags,
shortcodes and math). Each post must come out once, with its own title, at the URL its
generator serves, and no excerpt may carry a tag, a shortcode, front matter or raw TeX.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import MarkdownSourceConfig
from tests.support import paths

BLOGS = paths.TESTS / "fixtures" / "blogs"
# The fixtures' posts are dated early 2026; lookback 0 keeps them new whenever the suite runs.
ENV = {"DIGEST_DIGEST__LOOKBACK_DAYS": "0"}

EXPECTED = {
    "hexo": {
        "用 Python 写一个最小的 LRU 缓存": "https://hexo.example.com/2026/01/11/hello-hexo/",
        # Hexo's :title is the file's path under source/_posts: a folder post keeps /index
        "一篇文章一个文件夹": "https://hexo.example.com/2026/01/08/folder-post/index/",
        "注意力机制的复杂度": "https://hexo.example.com/2026/01/05/"
        "%E6%B3%A8%E6%84%8F%E5%8A%9B%E6%9C%BA%E5%88%B6%E7%9A%84%E5%A4%8D%E6%9D%82%E5%BA%A6/",
        "JSON 写的 Front-matter": "https://hexo.example.com/2026/01/03/json-front-matter/",
        "有自定义链接的文章": "https://hexo.example.com/special/custom-link/",
    },
    "hugo": {
        "Measuring Latency Without Fooling Yourself": (
            "https://hugo.example.org/2026/01/measuring-latency-without-fooling-yourself/"
        ),
        "Page Bundles, Explained": "https://hugo.example.org/2026/01/page-bundles-explained/",
        "Front Matter in YAML, Inside a Bundle": (
            "https://hugo.example.org/2026/01/yaml-in-a-bundle/"
        ),
        "JSON Front Matter {Still} Works": (
            "https://hugo.example.org/2026/01/json-front-matter-still-works/"
        ),
        "The Variance of a Sum": "https://hugo.example.org/2026/01/the-variance-of-a-sum/",
    },
    "jekyll": {
        "Welcome to the Notebook": (
            "https://jekyll.example.net/blog/jekyll/update/2026/01/11/welcome-to-jekyll/"
        ),
        "Plain Text, Sharp Tools": (
            "https://jekyll.example.net/blog/tools/text%20editing/2026/01/09/Plain-Text-Tools/"
        ),
        "A Post With Its Own Permalink": "https://jekyll.example.net/blog/notes/own-permalink/",
    },
}
NOT_POSTS = {
    "hexo": ["还没写完的文章", "草稿箱里的文章", "关于"],
    "hugo": [
        "Half-Written Thoughts",
        "Scheduled For Later",
        "A Conference Announcement",
        "Working notes (a bundle resource, not a post)",
        "About",
        "Posts",
        "Home",
    ],
    "jekyll": ["Not Yet Published", "An Idea", "About"],
}
# a tag or shortcode, front matter, or raw TeX (a command, $$, a superscript, an escape)
LEAKS = re.compile(
    r"\{%|%\}|\{\{|\}\}|\{#|^\s*(?:---|\+\+\+|;;;)|\b(?:title|date)\s*[:=]|"
    r"\\[A-Za-z]+|\\[()\[\]]|\$\$|\$\s*\\|\^|_\{"
)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """An empty working folder, as a user's `cd` somewhere new."""
    here = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(here)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV)


def init_and_list(blog: str) -> tuple[Result, list[dict[str, Any]]]:
    init = run("init", str(BLOGS / blog))
    assert init.exit_code == 0, init.output
    listed = run("posts", "--json")
    assert listed.exit_code == 0, listed.output
    return init, json.loads(listed.stdout)


@pytest.mark.parametrize("blog", ["hexo", "hugo", "jekyll"])
def test_init_then_posts_lists_each_post_once_at_its_blogs_url(folder: Path, blog: str) -> None:
    _, rows = init_and_list(blog)
    assert {r["title"]: r["url"] for r in rows} == EXPECTED[blog]
    assert len(rows) == len(EXPECTED[blog])  # each post once
    for row in rows:
        assert row["excerpt"], row
        assert not LEAKS.search(row["excerpt"]), (row["title"], row["excerpt"])
    titles = {r["title"] for r in rows}
    assert not titles & set(NOT_POSTS[blog])


def test_hexo_excerpts(folder: Path) -> None:
    _, rows = init_and_list("hexo")
    excerpts = {r["title"]: r["excerpt"] for r in rows}
    assert excerpts["用 Python 写一个最小的 LRU 缓存"].endswith(
        "请直接用标准库..."
    )  # <!-- more --> (the full stop gives way to the ellipsis)
    assert "[代码] 先让它能用，再让它好用。" in excerpts["一篇文章一个文件夹"]
    assert excerpts["注意力机制的复杂度"] == (
        "自注意力的计算量随序列长度平方增长。参考资料见 [1]，记号沿用 [Vaswani 2017]。 [公式] "
        "因此总复杂度是 [Math]，当 [Math] 时显存首先成为瓶颈。"
    )
    assert excerpts["JSON 写的 Front-matter"].endswith("上一篇讲了 LRU。")


def test_hugo_excerpts(folder: Path) -> None:
    _, rows = init_and_list("hugo")
    excerpts = {r["title"]: r["excerpt"] for r in rows}
    assert excerpts["Measuring Latency Without Fooling Yourself"].endswith(
        "[code] Warm up the process before you measure: the first requests pay for every "
        "cold cache..."
    )
    assert excerpts["The Variance of a Sum"] == (
        "For independent [math] and [math], variances add: [formula] A coffee costs $4 here "
        "and $5 at the station; that is not math. See the derivation."
    )


def test_jekyll_excerpts(folder: Path) -> None:
    _, rows = init_and_list("jekyll")
    excerpts = {r["title"]: r["excerpt"] for r in rows}
    assert "Read the previous note too." in excerpts["Welcome to the Notebook"]
    assert (
        "as in [math], and a price like $5 stays a price. [formula]"
        in (excerpts["Plain Text, Sharp Tools"])
    )


def test_init_says_what_it_found_what_it_could_not_and_what_to_run(folder: Path) -> None:
    init, _ = init_and_list("hexo")
    out = init.output
    assert "Found a Hexo blog in" in out and "(_config.yml)" in out
    for line in (
        "title: 代码与公式",
        "base URL: https://hexo.example.com",
        "permalink: :year/:month/:day/:title/ -> /{year}/{month}/{day}/{path}/",
        "language: zh",
        "time zone: Asia/Shanghai",
        "math: dollars (from _config.yml mathjax (hexo-filter-mathjax))",
        "6 posts: 1 draft, 5 published",
    ):
        assert line in out
    assert "Could not carry over:" in out and "no postal address, SMTP server or sender" in out
    assert out.rstrip().endswith(
        "Wrote config.yaml. Next:\n  digest posts      # the posts the next digest would hold\n"
        "  digest preview    # the digest in your browser"
    )


@pytest.mark.parametrize(
    ("blog", "values"),
    [
        ("hexo", ("代码与公式", "https://hexo.example.com", "zh", "Asia/Shanghai", "dollars")),
        (
            "hugo",
            ("Notes From The Lab", "https://hugo.example.org", "en", "Europe/Berlin", "brackets"),
        ),
        (
            "jekyll",
            (
                "Field Notes",
                "https://jekyll.example.net/blog",
                "en",
                "America/New_York",
                "kramdown",
            ),
        ),
    ],
)
def test_the_written_config_is_valid_and_carries_the_blogs_settings(
    folder: Path, blog: str, values: tuple[str, ...]
) -> None:
    assert run("init", str(BLOGS / blog)).exit_code == 0
    config = load_config(folder / "config.yaml", environ={})
    site = config.site
    assert (site.title, site.base_url, site.locale, site.timezone, config.excerpt.math) == values
    assert site.postal_address is None  # a commented placeholder
    [source] = config.sources
    assert isinstance(source, MarkdownSourceConfig) and source.generator == blog
    text = (folder / "config.yaml").read_text(encoding="utf-8")
    assert "# postal_address:" in text and "# smtp:" in text and "#   from:" in text


def test_init_refuses_to_overwrite_a_config(folder: Path) -> None:
    (folder / "config.yaml").write_text("mine: true\n", encoding="utf-8")
    result = run("init", str(BLOGS / "hugo"))
    assert result.exit_code == 2
    assert "config.yaml: already exists; digest init never overwrites" in result.output
    assert (folder / "config.yaml").read_text(encoding="utf-8") == "mine: true\n"


def test_init_in_the_blogs_own_folder_and_to_another_path(tmp_path: Path) -> None:
    import shutil

    blog = tmp_path / "blog"
    shutil.copytree(BLOGS / "jekyll", blog)
    here = Path.cwd()
    os.chdir(blog)
    try:
        assert run("init").exit_code == 0
        config = load_config(blog / "config.yaml", environ={})
        assert config.sources[0].path == Path("_posts")  # type: ignore[union-attr]
        other = run("--config", str(tmp_path / "digest.yaml"), "init", ".")
        assert other.exit_code == 0, other.output
        assert f"digest --config {tmp_path / 'digest.yaml'} posts" in other.output
        listed = run("--config", str(tmp_path / "digest.yaml"), "posts", "--json")
        assert len(json.loads(listed.stdout)) == 3
    finally:
        os.chdir(here)


def test_init_on_something_that_is_not_a_blog(folder: Path) -> None:
    (folder / "notes").mkdir()
    result = run("init", "notes")
    assert result.exit_code == 2
    assert "not a Hexo, Hugo or Jekyll blog" in result.output and "Traceback" not in result.output
    assert not (folder / "config.yaml").exists()
    missing = run("init", "nowhere")
    assert missing.exit_code == 2 and "nowhere: no such folder." in missing.output


def test_a_broken_blog_config_is_one_sentence(folder: Path) -> None:
    (folder / "blog").mkdir()
    (folder / "blog" / "hugo.toml").write_text("title = 'unclosed\n", encoding="utf-8")
    result = run("init", "blog")
    assert result.exit_code == 2
    assert "hugo.toml: the blog's configuration is not valid:" in result.output
