"""Reading a folder of Markdown posts: front matter, fallbacks, URLs, and broken files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.models import SourceResult
from digest.sources.markdown import read_folder

TZ = ZoneInfo("Asia/Shanghai")


def read(folder: Path, permalink: str = "/posts/{slug}/") -> SourceResult:
    result = SourceResult()
    read_folder(
        folder, base_url="https://blog.example.com", permalink=permalink, tz=TZ, result=result
    )
    return result


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_front_matter_fields(tmp_path: Path) -> None:
    write(
        tmp_path,
        "2026-01-11-medusa.md",
        """\
---
title: "Medusa: 多头解码"
date: 2026-01-11 09:30:00
updated: 2026-01-12
categories: [机器学习, LLM]
tags: [decoding, medusa]
summary: 一句话摘要
cover: /images/medusa.png
id: medusa-2026
---
正文
""",
    )
    [post] = read(tmp_path).posts
    assert post.id == "medusa-2026"
    assert post.title == "Medusa: 多头解码"
    assert post.date == datetime(2026, 1, 11, 9, 30, tzinfo=TZ)
    assert post.updated == datetime(2026, 1, 12, tzinfo=TZ)
    assert post.categories == ("机器学习", "LLM")
    assert post.category == "机器学习"
    assert post.tags == ("decoding", "medusa")
    assert post.summary == "一句话摘要"
    assert post.cover == "/images/medusa.png"
    assert post.url == "https://blog.example.com/posts/medusa/"
    assert post.body.strip() == "正文"
    assert not post.draft and post.newsletter


def test_fallbacks_title_from_heading_then_file_name_and_date_from_file_name(
    tmp_path: Path,
) -> None:
    write(tmp_path, "2026-02-03-from-heading.md", "# 标题来自 *标题*\n\n正文")
    write(tmp_path, "notes/plain-name.md", "---\ncategory: 随笔\n---\n没有标题")
    result = read(tmp_path)
    by_id = {p.id: p for p in result.posts}
    heading = by_id["2026-02-03-from-heading.md"]
    assert heading.title == "标题来自 标题"
    assert heading.date == datetime(2026, 2, 3, tzinfo=TZ)
    assert heading.url == "https://blog.example.com/posts/from-heading/"
    plain = by_id["notes/plain-name.md"]
    assert plain.title == "plain name"
    assert plain.date is None
    assert plain.categories == ("随笔",)


def test_permalink_pattern_and_url_encoding(tmp_path: Path) -> None:
    write(tmp_path, "2026-03-04-中文-slug.md", "---\ntitle: t\ncategory: Python\n---\nx")
    [post] = read(tmp_path, "/{year}/{month}/{day}/{category}/{slug}.html").posts
    assert post.url == ("https://blog.example.com/2026/03/04/Python/%E4%B8%AD%E6%96%87-slug.html")


def test_draft_and_newsletter_flags(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "---\ntitle: a\ndraft: true\nnewsletter: no\n---\nx")
    [post] = read(tmp_path).posts
    assert post.draft is True
    assert post.newsletter is False


def test_broken_posts_are_reported_and_the_rest_is_read(tmp_path: Path) -> None:
    write(tmp_path, "good.md", "---\ntitle: good\ndate: 2026-01-01\n---\nok")
    write(tmp_path, "broken-yaml.md", "---\ntitle: [unclosed\ndate: 2026-01-01\n---\nbody")
    write(tmp_path, "bad-date.md", "---\ntitle: x\ndate: next tuesday\n---\nbody")
    write(tmp_path, "bad-flag.md", "---\ntitle: x\ndraft: maybe\n---\nbody")
    write(tmp_path, "list.md", "---\n- a\n- b\n---\nbody")
    (tmp_path / "latin1.md").write_bytes("---\ntitle: caf\xe9\n---\n".encode("latin-1"))
    write(tmp_path, "dup-1.md", "---\nid: same\n---\none")
    write(tmp_path, "dup-2.md", "---\nid: same\n---\ntwo")
    write(tmp_path, ".hidden.md", "---\ntitle: hidden\n---\n")
    write(tmp_path, "_drafts/wip.md", "---\ntitle: wip\n---\n")
    write(tmp_path, "README.txt", "not a post")
    result = read(tmp_path)
    assert sorted(p.title for p in result.posts) == ["dup 1", "good"]
    problems = {Path(p.where).name: p.reason for p in result.problems}
    assert problems["broken-yaml.md"].startswith("the front matter is not valid YAML")
    assert "line" in problems["broken-yaml.md"]
    assert problems["bad-date.md"] == (
        "date 'next tuesday' is not a date such as 2026-01-11 or 2026-01-11 09:30"
    )
    assert problems["bad-flag.md"] == "draft must be true or false, not 'maybe'"
    assert (
        problems["list.md"]
        == "the front matter is not valid YAML: it is not a mapping of keys to values"
    )
    assert problems["latin1.md"] == "the file is not valid UTF-8"
    assert problems["dup-2.md"].startswith("id 'same' is already used by")
    assert len(result.problems) == 6


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    import pytest

    from digest.errors import SourceError

    with pytest.raises(SourceError, match="the posts folder does not exist"):
        read(tmp_path / "nope")
