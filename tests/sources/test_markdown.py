"""Reading a folder of Markdown posts: front matter, fallbacks, URLs, and broken files."""

from __future__ import annotations

from datetime import UTC, datetime
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
    assert problems["list.md"] == "the front matter is not a mapping of keys to values"
    assert problems["latin1.md"] == "the file is not valid UTF-8"
    assert problems["dup-2.md"].startswith("id 'same' is already used by")
    assert len(result.problems) == 6


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    import pytest

    from digest.errors import SourceError

    with pytest.raises(SourceError, match="the posts folder does not exist"):
        read(tmp_path / "nope")


# -- real blog layouts and flags ------------------------------------------------------------------


def read_as(folder: Path, generator: str | None, permalink: str = "/posts/{slug}/") -> SourceResult:
    result = SourceResult()
    read_folder(
        folder,
        base_url="https://blog.example.com",
        permalink=permalink,
        tz=TZ,
        result=result,
        generator=generator,  # type: ignore[arg-type]
    )
    return result


def test_page_bundles_take_their_slug_from_the_folder(tmp_path: Path) -> None:
    for slug in ("first-post", "second-post", "third-post"):
        write(tmp_path, f"{slug}/index.md", f"---\ntitle: {slug}\ndate: 2026-01-11\n---\nbody")
    write(tmp_path, "first-post/notes.md", "---\ntitle: a bundle resource\n---\nnot a post")
    write(tmp_path, "_index.md", "---\ntitle: Posts (a section list page)\n---\n")
    write(tmp_path, "series/_index.md", "---\ntitle: Series\n---\n")
    write(tmp_path, "series/part-1.md", "---\ntitle: Part 1\n---\nin a section")
    result = read(tmp_path)
    assert not result.problems
    urls = {p.title: p.url for p in result.posts}
    assert urls == {
        "first-post": "https://blog.example.com/posts/first-post/",
        "second-post": "https://blog.example.com/posts/second-post/",
        "third-post": "https://blog.example.com/posts/third-post/",
        "Part 1": "https://blog.example.com/posts/part-1/",
    }
    assert {p.id for p in result.posts} >= {"first-post/index.md", "second-post/index.md"}


def test_hexo_reads_every_markdown_file_even_inside_a_post_folder(tmp_path: Path) -> None:
    write(tmp_path, "trip/index.md", "---\ntitle: Trip\ndate: 2026-01-11\n---\nx")
    write(tmp_path, "trip/day-2.md", "---\ntitle: Day 2\ndate: 2026-01-12\n---\ny")
    result = read_as(tmp_path, "hexo", "/{year}/{month}/{day}/{path}/")
    assert sorted(p.url for p in result.posts) == [
        "https://blog.example.com/2026/01/11/trip/index/",  # Hexo's :title is the path
        "https://blog.example.com/2026/01/12/trip/day-2/",
    ]


def test_toml_front_matter_gives_title_date_and_draft(tmp_path: Path) -> None:
    write(
        tmp_path,
        "toml.md",
        "+++\ntitle = 'TOML 标题'\ndate = 2026-01-11T09:30:00+08:00\ndraft = true\n"
        "categories = ['Go']\n+++\n正文",
    )
    [post] = read(tmp_path).posts
    assert post.title == "TOML 标题"
    assert post.date == datetime(2026, 1, 11, 9, 30, tzinfo=TZ)
    assert post.draft is True
    assert post.categories == ("Go",)
    assert post.body == "正文"


def test_json_front_matter(tmp_path: Path) -> None:
    write(tmp_path, "j.md", '{\n  "title": "JSON", "date": "2026-01-11", "slug": "js"\n}\nbody')
    [post] = read(tmp_path).posts
    assert (post.title, post.body) == ("JSON", "body")
    assert post.url == "https://blog.example.com/posts/js/"


def test_published_false_publish_date_and_expiry_date(tmp_path: Path) -> None:
    write(tmp_path, "hidden.md", "---\ntitle: h\npublished: false\n---\nx")
    write(tmp_path, "shown.md", "---\ntitle: s\npublished: true\n---\nx")
    write(tmp_path, "later.md", "+++\ntitle = 'l'\npublishDate = 2026-02-01T00:00:00Z\n+++\nx")
    write(tmp_path, "gone.md", "---\ntitle: g\nexpiryDate: 2026-01-01\n---\nx")
    write(tmp_path, "alias.md", "---\ntitle: a\npublished: 2026-01-05\n---\nx")
    by_title = {p.title: p for p in read_as(tmp_path, "hugo").posts}
    assert by_title["h"].draft and not by_title["s"].draft
    assert by_title["l"].publish_date == datetime(2026, 2, 1, tzinfo=UTC)
    assert by_title["g"].expiry_date == datetime(2026, 1, 1, tzinfo=TZ)
    # Hugo: `published` is a date alias of publishDate, and the post's date when it has none
    assert by_title["a"].publish_date == by_title["a"].date == datetime(2026, 1, 5, tzinfo=TZ)
    assert not by_title["a"].draft


def test_jekyll_dates_categories_and_undated_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        "2026-01-11-Hello-World.md",
        "---\ncategories: Web Dev\ndate: 2026-01-11 09:30:00 +0800\n---\nx",
    )
    write(tmp_path, "about.md", "---\ntitle: not a post\n---\n")
    result = read_as(tmp_path, "jekyll", "/{categories}/{year}/{month}/{day}/{title}.html")
    [post] = result.posts
    assert post.title == "Hello World"  # Jekyll titleizes the slug
    assert post.categories == ("Web", "Dev")
    assert post.date == datetime(2026, 1, 11, 9, 30, tzinfo=TZ)
    assert post.url == "https://blog.example.com/web/dev/2026/01/11/Hello-World.html"
    [problem] = result.problems
    assert problem.where.endswith("about.md") and "YYYY-MM-DD-title.md" in problem.reason


def test_front_matter_keys_are_case_insensitive_and_dates_are_lenient(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "---\nTitle: Upper\nDate: 2026/1/5 9:05\n---\nx")
    [post] = read(tmp_path).posts
    assert post.title == "Upper"
    assert post.date == datetime(2026, 1, 5, 9, 5, tzinfo=TZ)


def test_a_title_taken_from_the_first_heading_is_not_repeated_in_the_body(
    tmp_path: Path,
) -> None:
    write(tmp_path, "h.md", "# 标题本身\n\n正文第一段。")
    write(tmp_path, "late.md", "导语。\n\n## 后来的标题\n\n正文。")
    by_id = {p.id: p for p in read(tmp_path).posts}
    assert by_id["h.md"].title == "标题本身"
    assert by_id["h.md"].body == "正文第一段。"
    assert by_id["late.md"].title == "后来的标题"
    assert by_id["late.md"].body.startswith("导语。")  # only a leading heading is removed


def test_two_files_claiming_one_url_are_reported_not_silently_dropped(tmp_path: Path) -> None:
    from digest.config.load import load_config
    from digest.config.stages import source_settings
    from digest.sources.read import read_posts

    write(tmp_path, "posts/a.md", "---\ntitle: A\nslug: same\n---\nx")
    write(tmp_path, "posts/b.md", "---\ntitle: B\nslug: same\n---\ny")
    (tmp_path / "config.yaml").write_text(
        "site:\n  title: T\n  base_url: https://b.example.com\n"
        "sources:\n  - type: markdown\n    path: posts\n",
        encoding="utf-8",
    )
    result = read_posts(source_settings(load_config(tmp_path / "config.yaml", environ={})))
    assert [p.title for p in result.posts] == ["A"]
    [problem] = result.problems
    assert problem.where == "b.md"
    assert problem.reason == (
        "URL https://b.example.com/posts/same/ is already used by a.md; skipped"
    )
