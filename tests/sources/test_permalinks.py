"""Blog permalink settings translated into digest's fields, and blog configs read as written."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import pytest

from digest.blogs.detect import detect
from digest.links import check_permalink, fill_permalink
from digest.sources.fields import PostFacts, fields_for
from digest.sources.permalinks import hexo_pattern, hugo_pattern, jekyll_pattern

TZ = ZoneInfo("Asia/Shanghai")
DATE = datetime(2026, 1, 5, 9, 7, 3, tzinfo=TZ)


def facts(relative: str, title: str = "A Title", **meta: object) -> PostFacts:
    categories = meta.get("categories")
    names = tuple(str(c) for c in categories) if isinstance(categories, list) else ()
    return PostFacts(PurePosixPath(relative), meta, title, DATE, names, "posts")


@pytest.mark.parametrize(
    ("style", "pattern"),
    [
        (None, "/{categories}/{year}/{month}/{day}/{title}.html"),
        ("date", "/{categories}/{year}/{month}/{day}/{title}.html"),
        ("pretty", "/{categories}/{year}/{month}/{day}/{title}/"),
        ("ordinal", "/{categories}/{year}/{y_day}/{title}.html"),
        ("none", "/{categories}/{title}.html"),
        ("/:year/:i_month/:slug:output_ext", "/{year}/{i_month}/{slug}.html"),
    ],
)
def test_jekyll_styles(style: str | None, pattern: str) -> None:
    translated = jekyll_pattern(style)
    assert translated.pattern == pattern
    check_permalink(translated.pattern)


def test_jekyll_unsupported_tokens_are_reported() -> None:
    translated = jekyll_pattern("weekdate")
    assert translated.pattern == "/{categories}/{year}/W//{title}.html"  # // collapses
    assert translated.unsupported == (":week", ":short_day")


def test_hexo_tokens() -> None:
    assert hexo_pattern(":year/:month/:day/:title/").pattern == "/{year}/{month}/{day}/{path}/"
    dated = hexo_pattern(":year/:title.html", new_post_name=":year-:month-:day-:title.md")
    assert dated.pattern == "/{year}/{title}.html"
    assert hexo_pattern(":category/:name/").pattern == "/{category:uncategorized}/{name}/"
    assert hexo_pattern(":title.html", trailing_html=False).pattern == "/{path}"
    abbr = hexo_pattern("posts/:abbrlink/")  # hexo-abbrlink: its own field, not front matter
    assert abbr.pattern == "/posts/{abbrlink}/" and abbr.from_front_matter == ()
    assert hexo_pattern(":abbrlink.html", abbrlink="abbrlink32_hex").pattern == (
        "/{abbrlink32_hex}.html"
    )
    other = hexo_pattern("p/:uid/")
    assert other.pattern == "/p/{fm.uid}/" and other.from_front_matter == ("uid",)
    for pattern in ("/{category:uncategorized}/{name}/", "/posts/{abbrlink32_hex}/"):
        check_permalink(pattern)


def test_hugo_tokens() -> None:
    assert hugo_pattern("/:year/:month/:slug/").pattern == "/{year}/{month}/{slug}/"
    assert hugo_pattern(":sections/:filename").pattern == "/{sections}/{filename}"
    assert hugo_pattern("/posts/:slugorcontentbasename/", ugly_urls=True).pattern == (
        "/posts/{slugorcontentbasename}.html"
    )
    assert hugo_pattern(None).pattern == "/{section}/{dir}/{slugorcontentbasename}/"
    escaped = hugo_pattern("/a\\:b/:title/")
    assert escaped.pattern == "/a:b/{title}/"
    odd = hugo_pattern("/:weekdayname/:sections[1:]/:slug/")
    assert odd.unsupported == (":weekdayname", ":sections[1:]")


def test_fields_follow_each_generator() -> None:
    hexo = fields_for("hexo", facts("2026-01-05-hello-world.md", "Hello World!", id="7"))
    assert (hexo["title"], hexo["name"], hexo["post_title"], hexo["id"]) == (
        "hello-world",
        "hello-world",
        "hello-world",
        "7",
    )
    assert len(hexo["hash"]) == 12
    nested = fields_for("hexo", facts("a.md", categories=[["Tech", "Python 3"], ["Life"]]))
    assert nested["category"] == "Life"
    chain = fields_for("hexo", facts("a.md", categories=["Tech", "Python 3"]))
    assert chain["category"] == "Tech/Python-3"
    hugo = fields_for("hugo", facts("guides/my-bundle/index.md", "Über Alles: Teil 1"))
    assert (hugo["slug"], hugo["filename"], hugo["dir"], hugo["section"]) == (
        "über-alles-teil-1",
        "my-bundle",
        "guides",
        "posts",
    )
    jekyll = fields_for(
        "jekyll", facts("2026-01-05-Hello, World.md", categories=None, category="Web Dev")
    )
    assert (jekyll["title"], jekyll["slug"], jekyll["categories"]) == (
        "Hello,-World",
        "hello-world",
        "web dev",
    )
    assert (jekyll["y_day"], jekyll["i_month"], jekyll["short_year"]) == ("005", "1", "26")


def test_fill_permalink_defaults_front_matter_and_encoding() -> None:
    fields = {"category": "", "slug": "中文 slug", "year": "2026"}
    meta = {"abbrlink": "4a17b156"}
    assert (
        fill_permalink("/{category:misc}/{slug}/", fields, meta)
        == "/misc/%E4%B8%AD%E6%96%87%20slug/"
    )
    assert fill_permalink("/p/{fm.abbrlink}/{fm.missing}/", fields, meta) == "/p/4a17b156/"
    assert fill_permalink("/{year}/C++(draft)/", fields, meta) == "/2026/C++(draft)/"
    with pytest.raises(ValueError, match=r"uses \{nope\}"):
        check_permalink("/{nope}/")
    with pytest.raises(ValueError, match="braces"):
        check_permalink("/{slug/")


# -- blog configs as real blogs write them ------------------------------------------------------


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_hugo_config_folder_case_insensitive_keys_and_the_busiest_section(tmp_path: Path) -> None:
    write(tmp_path, "config/_default/hugo.yaml", "BaseURL: https://h.example.com/\nTitle: Split\n")
    write(tmp_path, "config/_default/languages.toml", "[zh-cn]\nlanguageCode = 'zh-CN'\n")
    write(tmp_path, "config/_default/hugo.toml", "defaultContentLanguage = 'zh-cn'\n")
    write(tmp_path, "config/_default/permalinks.toml", "[page]\nblog = '/:section/:slug/'\n")
    for n in range(3):
        write(tmp_path, f"content/blog/p{n}.md", "+++\ntitle = 'x'\n+++\n")
    write(tmp_path, "content/notes/n.md", "x")
    settings = detect(tmp_path)
    assert settings.generator == "hugo"
    assert (settings.title, settings.base_url, settings.locale) == (
        "Split",
        "https://h.example.com",
        "zh",
    )
    assert settings.posts == tmp_path / "content" / "blog"
    assert settings.permalink == "/{section}/{slug}/"


def test_hugo_without_permalinks_uses_the_path_and_reads_params_math(tmp_path: Path) -> None:
    write(tmp_path, "hugo.toml", "baseURL = '/'\n[params]\nmath = true\n")
    write(tmp_path, "content/posts/a.md", "x")
    settings = detect(tmp_path)
    assert settings.permalink == "/{section}/{dir}/{slugorcontentbasename}/"
    assert settings.base_url is None and "baseURL '/' is not an absolute" in settings.notes[0]
    # a site-wide switch: the theme loads MathJax/KaTeX with `$` on every page (issue 21)
    assert settings.math == "dollars" and settings.math_source.startswith("params.math")


def test_hexo_theme_math_and_a_subfolder_site(tmp_path: Path) -> None:
    write(
        tmp_path,
        "_config.yml",
        "title: T\nurl: https://x.example.com/blog\nroot: /blog/\ntheme: next\n"
        "language: [en, zh-CN]\ntimezone: Mars/Olympus\n",
    )
    write(tmp_path, "_config.next.yml", "math:\n  katex:\n    enable: true\n")
    (tmp_path / "source" / "_posts").mkdir(parents=True)
    settings = detect(tmp_path)
    assert settings.generator == "hexo"
    assert (settings.base_url, settings.locale, settings.math) == (
        "https://x.example.com/blog",
        "en",
        "dollars",
    )
    assert settings.timezone is None and "Mars/Olympus" in settings.notes[0]


def test_jekyll_collections_dir_and_baseurl(tmp_path: Path) -> None:
    write(
        tmp_path,
        "_config.yml",
        "title: J\nurl: https://j.example.com\nbaseurl: /sub/\ncollections_dir: my\n"
        "markdown: CommonMarkGhPages\ncollections:\n  posts:\n    permalink: /:slug/\n",
    )
    (tmp_path / "my" / "_posts").mkdir(parents=True)
    settings = detect(tmp_path)
    assert settings.generator == "jekyll"
    assert settings.posts == tmp_path / "my" / "_posts"
    assert (settings.base_url, settings.permalink, settings.math) == (
        "https://j.example.com/sub",
        "/{slug}/",
        None,
    )
