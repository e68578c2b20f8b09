"""Excerpts only where they are read (digest.issues.upcoming.gather): every post's front matter
is read, but an excerpt is made only for the posts a command shows (the `max_posts` the next
issue gives a block, every new post, every post, or none), each the excerpt the full path
makes, and the post cache keeps it so that it is never made twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import excerpt_settings, issue_settings
from digest.excerpt import rules
from digest.excerpt.memo import remember_excerpts
from digest.excerpt.settings import ExcerptSettings
from digest.issues.upcoming import Excerpts, gather
from digest.models import Post

MAKE = rules.excerpt_for  # as imported, before a test counts its calls
DATED = [f"2026-11-{day:02d}-post-{day}.md" for day in range(1, 6)]  # five new posts, oldest first


def write_blog(root: Path, max_posts: int = 2) -> Config:
    posts = root / "posts"
    posts.mkdir()
    for number, name in enumerate(DATED, start=1):
        (posts / name).write_text(
            f"---\ntitle: Post {number}\n---\nThe body of post {number}, with `code` and "
            f"**bold** text that the excerpt keeps.\n",
            "utf-8",
        )
    (posts / "2026-11-06-draft.md").write_text(
        "---\ntitle: Draft\ndraft: true\n---\nNot new: a draft.\n", "utf-8"
    )
    config = root / "config.yaml"
    config.write_text(
        "site:\n  title: T\n  base_url: https://b.example.com\n"
        "sources:\n  - type: markdown\n    path: posts\n"
        f"digest:\n  lookback_days: 0\n  max_posts: {max_posts}\n",
        "utf-8",
    )
    return load_config(config, environ={})


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titles of the posts whose excerpt was made (not taken from the post cache)."""
    titles: list[str] = []

    def counting(post: Post, settings: ExcerptSettings) -> str:
        titles.append(post.title)
        return MAKE(post, settings)

    monkeypatch.setattr(rules, "excerpt_for", counting)
    remember_excerpts({})  # no excerpt remembered from another test of this process
    return titles


@pytest.mark.parametrize(
    ("excerpts", "with_excerpt"),
    [
        ("shown", {"Post 5", "Post 4"}),
        ("new", {f"Post {n}" for n in range(1, 6)}),
        ("all", {*(f"Post {n}" for n in range(1, 6)), "Draft"}),
        ("none", set()),
    ],
)
def test_excerpts_are_made_only_for_the_posts_asked_for(
    tmp_path: Path, made: list[str], excerpts: Excerpts, with_excerpt: set[str]
) -> None:
    config = write_blog(tmp_path)
    gathered = gather(issue_settings(config), excerpts=excerpts)
    assert [c.post.title for c in gathered.candidates] == [
        "Draft",
        *(f"Post {n}" for n in range(5, 0, -1)),
    ]
    assert {c.post.title for c in gathered.candidates if c.excerpt is not None} == with_excerpt
    assert sorted(made) == sorted(with_excerpt)
    settings = excerpt_settings(config)
    remember_excerpts({})  # the full path below makes each excerpt again
    for candidate in gathered.candidates:
        if candidate.excerpt is not None:
            assert candidate.excerpt == MAKE(candidate.post, settings)


def test_the_shown_excerpts_follow_max_posts(tmp_path: Path, made: list[str]) -> None:
    config = write_blog(tmp_path, max_posts=3)
    gathered = gather(issue_settings(config))
    shown = gathered.shown(config.digest.max_posts)
    assert [c.post.title for c in shown] == ["Post 5", "Post 4", "Post 3"]
    assert all(c.excerpt for c in shown)
    assert all(c.excerpt is None for c in gathered.overflow(config.digest.max_posts))


def test_the_post_cache_keeps_each_excerpt_so_it_is_made_once(
    tmp_path: Path, made: list[str]
) -> None:
    config = write_blog(tmp_path)
    first = {c.post.title: c.excerpt for c in gather(issue_settings(config)).candidates}
    assert sorted(made) == ["Post 4", "Post 5"]
    remember_excerpts({})  # only the post cache on disk may spare the work now
    made.clear()
    everything = {
        c.post.title: c.excerpt for c in gather(issue_settings(config), excerpts="all").candidates
    }
    assert sorted(made) == ["Draft", "Post 1", "Post 2", "Post 3"]  # not 4 and 5 again
    assert everything["Post 5"] == first["Post 5"] and everything["Post 4"] == first["Post 4"]
    remember_excerpts({})
    made.clear()
    again = {
        c.post.title: c.excerpt for c in gather(issue_settings(config), excerpts="all").candidates
    }
    assert made == [] and again == everything
