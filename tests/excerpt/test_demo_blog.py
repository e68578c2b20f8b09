"""The demo blog exercises every excerpt rule, and `digest excerpt` gets each post right."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.excerpt.rules import grapheme_count
from digest.sources.frontmatter import split_front_matter
from tests.support import paths

BLOG = paths.ROOT / "examples" / "blog"
POSTS = sorted(BLOG.glob("*.md"))
MARKDOWN_SYNTAX = ["```", "$", "\\(", "\\[", "![", "](", "**", "[^", "<", "    ", "\n"]


def test_the_demo_blog_has_enough_posts_in_both_languages() -> None:
    assert len(POSTS) >= 15
    texts = [p.read_text("utf-8") for p in POSTS]
    assert sum(any("\u4e00" <= c <= "\u9fff" for c in t[:400]) for t in texts) >= 5
    joined = "\n".join(texts)
    for feature in [
        "```",
        "\n    ",
        "$$",
        "\\(",
        "\\[",
        "![",
        "<!--more-->",
        "summary:",
        "draft: true",
        "newsletter: false",
        "2036-",
        "<div",
        "[^1]",
        "👩‍💻",
        "| --- |",
    ]:
        assert feature in joined, feature


@pytest.mark.parametrize("post", POSTS, ids=[p.name for p in POSTS])
def test_digest_excerpt_follows_the_rules_on_every_demo_post(post: Path) -> None:
    result = CliRunner().invoke(main, ["excerpt", str(post)])
    assert result.exit_code == 0
    excerpt = result.stdout.removesuffix("\n")
    for syntax in MARKDOWN_SYNTAX:
        assert syntax not in excerpt, f"{syntax!r} left in the excerpt of {post.name}"
    meta, body = split_front_matter(post.read_text("utf-8"))
    manual = any(k in meta for k in ("summary", "excerpt", "description")) or "<!--more-->" in body
    if not manual:
        body_len = grapheme_count(excerpt.removesuffix("..."))
        assert body_len <= 350
        assert excerpt.endswith("...") == (body_len == 350 or body_len >= 340)
    assert excerpt == excerpt.strip()
