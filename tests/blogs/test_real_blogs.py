"""What real Hexo, Hugo and Jekyll blogs do that the first fixture blogs did not.

Each case here was found by running `digest init` and `digest posts --json` on public blogs and
comparing with the pages those blogs serve (their committed `public/` or `gh-pages` output).
The fixture blogs under tests/fixtures/blogs/ are written for this project in the style of
those blogs; none of their posts is copied.
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
    # a <!--more--> excerpt: its final full stop gives way to "..." (no "。...")
    assert numa["excerpt"] == (
        "NUMA 与 SMP 多路服务器上，每个 CPU 插槽有自己的本地内存，访问远端内存要经过互联总线..."
    )
    assert posts["标准写法的文章"]["url"] == "https://notes.example.cn/2018/07/22/with-dashes/"
    # prose before a thematic break is not front matter
    plain = posts["没有 front matter 的随笔"]
    assert plain["excerpt"] == "注意：这里的冒号不是 front matter。 分隔线之后的内容。"
    assert plain["date"] is None


# --- Hugo: multilingual sites ------------------------------------------------------------------


def test_hugo_translations_by_file_name(folder: Path) -> None:
    # A real bilingual PaperMod blog came out with every post twice (post.en.md and
    # post.zh.md) at /posts/post.en/ and /posts/post.zh/; its gh-pages serve /posts/post/
    # (English, the default) and /zh/posts/post/.
    init, rows = init_and_list("hugo-i18n")
    assert {r["title"]: r["url"] for r in rows} == {
        "Reading C Declarations": "https://i18n.example.dev/posts/reading-types/",
        "Only in English": "https://i18n.example.dev/posts/only-english/",
        "A Bundle With Two Languages": "https://i18n.example.dev/posts/bundle-post/",
        "Release v1.2": "https://i18n.example.dev/posts/release-v1.2/",
    }
    assert "posts in zh (translations) are left out" in init.output
    config = load_config(folder / "config.yaml", environ={})
    assert config.site.locale == "en"
    [source] = config.sources
    assert isinstance(source, MarkdownSourceConfig) and source.languages == ["en", "zh"]


def test_hugo_reads_another_language_when_asked(folder: Path) -> None:
    assert run("init", str(BLOGS / "hugo-i18n")).exit_code == 0
    text = (folder / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("generator: hugo", "generator: hugo\n    language: zh")
    text = text.replace('permalink: "/{section}', 'permalink: "/zh/{section}')
    (folder / "config.yaml").write_text(text, encoding="utf-8")
    rows = json.loads(run("posts", "--json").stdout)
    assert {r["title"]: r["url"] for r in rows} == {
        "读懂 C 的声明": "https://i18n.example.dev/zh/posts/reading-types/",
        "两种语言的页面包": "https://i18n.example.dev/zh/posts/bundle-post/",
    }


def test_hugo_content_folder_per_language_in_subfolders(folder: Path) -> None:
    # languages.zh.contentDir = "content/zh", defaultContentLanguageInSubdir = true: a real blog
    # got "the posts folder content/posts does not exist"; its posts live at /zh/posts/….
    init, rows = init_and_list("hugo-dirs")
    assert "posts: " + str(BLOGS / "hugo-dirs" / "content" / "zh" / "posts") in init.output
    assert "posts in en (translations) are left out" in init.output
    assert [(r["title"], r["url"]) for r in rows] == [
        ("第一篇笔记", "https://dirs.example.dev/zh/posts/first-note/"),
        ("标题属性", "https://dirs.example.dev/zh/posts/attributes/"),
    ]
    # Goldmark's attribute lists after a heading or a block are not text
    assert rows[1]["excerpt"] == "背景 Goldmark 读取标题后面的属性。 正文继续。"
    config = load_config(folder / "config.yaml", environ={})
    assert (config.site.title, config.site.locale) == ("一个时刻", "zh")


# --- Jekyll: source folder, no language, HTML in titles, $ math under kramdown -----------------


def test_jekyll_source_folder_language_from_the_posts_and_html_titles(folder: Path) -> None:
    # A real blog with `source: src` got "the posts folder _posts does not exist"; an English
    # blog without `lang` was set up as Chinese (labels [代码], dates in Asia/Shanghai); a title
    # `<code>inline</code> … namespace&nbsp;{` reached the digest with its tags and entity.
    init, rows = init_and_list("jekyll-src")
    assert "posts: " + str(BLOGS / "jekyll-src" / "src" / "_posts") in init.output
    assert "no language: the posts are mostly English, so en" in init.output
    config = load_config(folder / "config.yaml", environ={})
    assert (config.site.locale, config.site.timezone) == ("en", "UTC")
    posts = by_title(rows)
    assert set(posts) == {
        "inline vs. unnamed namespace {",
        "Why std::vector<T> copies, and when it moves",
        "Notes on a Book, Part 1",  # Jekyll's hidden: true is off the home page, not the feed
        "Escaping characters in a Makefile",
        "What the shell printed",
    }
    # Liquid's capture shows nothing where it stands (an include shows it later, as code)
    assert posts["What the shell printed"]["excerpt"] == (
        "Run the target twice. The second run does nothing."
    )
    # kramdown's TOC, attribute lists and comments are not text; code spans keep theirs
    assert posts["Escaping characters in a Makefile"]["excerpt"] == (
        "TL;DR: read the short version first. The $ sign doubles as $$ inside a recipe; "
        "{:toc} in backticks is just text."
    )
    inline = posts["inline vs. unnamed namespace {"]
    assert inline["url"] == "https://pages.example.io/blog/inline-namespaces.html"
    # kramdown leaves $…$ to MathJax: unmistakable TeX is math, never raw TeX
    assert inline["excerpt"].endswith("The function [math] is written [math] in the table.")
    vector = posts["Why std::vector<T> copies, and when it moves"]
    assert vector["date"] == "2024-02-11T00:00:00+00:00"
    assert vector["excerpt"] == "A short note on & references and move semantics."


def test_chinese_posts_without_a_language_are_zh(folder: Path, tmp_path: Path) -> None:
    blog = tmp_path / "blog"
    (blog / "_posts").mkdir(parents=True)
    (blog / "_config.yml").write_text("title: 笔记\nurl: https://zh.example.io\n", "utf-8")
    (blog / "_posts" / "2024-01-02-note.md").write_text(
        "---\ntitle: 一篇笔记\n---\n\nUsing Python 写一个小工具，记录 CPU 和内存的使用情况。\n",
        "utf-8",
    )
    init = run("init", str(blog))
    assert "no language: the posts are mostly Chinese, so zh" in init.output
    assert load_config(folder / "config.yaml", environ={}).site.locale == "zh"


# --- Posts the blog hides from its own lists -----------------------------------------------------


def test_posts_the_blog_hides_from_its_lists_are_not_new(folder: Path) -> None:
    # A real Fluid blog keeps its résumé (phone number included) as a `hide: true` post: on the
    # site it is reachable by link only; a digest listed it like any other post.
    _, rows = init_and_list("hexo-bare", "--all")
    posts = by_title(rows)
    assert posts["个人简历"]["status"] == "opted-out"
    assert posts["只给知道链接的人看"]["status"] == "opted-out"
    new = {r["title"] for r in json.loads(run("posts", "--json").stdout)}
    assert "个人简历" not in new and "只给知道链接的人看" not in new
    assert "NUMA 架构的几个概念" in new


def test_hugo_build_list_never_is_not_new(folder: Path) -> None:
    _, rows = init_and_list("hugo-i18n", "--all")
    assert by_title(rows)["Unlisted Page"]["status"] == "opted-out"


# --- CJK emphasis ----------------------------------------------------------------------------


def test_bold_ending_in_cjk_punctuation_loses_its_asterisks(folder: Path) -> None:
    # `**任正非：**首先` (a real interview transcript; Hexo's marked renders it bold) kept its
    # asterisks in the excerpt: CommonMark does not close `**` after `：` before a letter.
    _, rows = init_and_list("hexo-bare")
    assert by_title(rows)["采访纪要"]["excerpt"] == (
        "主持人：欢迎各位。嘉宾（远程）：谢谢邀请。这是“强调”的说法，__注意__此处，以及 bold words."
    )


@pytest.mark.parametrize(
    ("body", "excerpt"),
    [
        ("**a.**b and 2*3*4", "**a.**b and 234"),  # without CJK: CommonMark exactly
        ("~~删除（旧）。~~新的", "删除（旧）。新的"),
        ("**「刻舟求剑」**的故事", "「刻舟求剑」的故事"),
        ("a * b * c, snake_case_name", "a * b * c, snake_case_name"),
    ],
)
def test_cjk_friendly_emphasis(body: str, excerpt: str) -> None:
    from digest.sources.document import make_excerpt

    assert make_excerpt(body) == excerpt


# --- hexo-abbrlink ---------------------------------------------------------------------------


def test_hexo_abbrlink_from_front_matter_or_computed_as_the_plugin_does(folder: Path) -> None:
    # A real blog with `permalink: :abbrlink.html` and posts the plugin had not processed yet:
    # every such post got the URL /.html and all but one were dropped as duplicates.
    init, rows = init_and_list("hexo-abbrlink")
    assert "permalink: posts/:abbrlink/ -> /posts/{abbrlink32_hex}/" in init.output
    assert {r["title"]: r["url"] for r in rows} == {
        "用 Typora 写博客": "https://short.example.cn/posts/5e1f0c2a/",
        # no abbrlink yet: CRC-32 of the title in hex, what the plugin writes at the next build
        "用 Go 写一个端口扫描器": "https://short.example.cn/posts/d9119e2d/",
    }
    scanner = by_title(rows)["用 Go 写一个端口扫描器"]
    assert scanner["excerpt"] == "并发地尝试连接每个端口，超时就算关闭。"


def test_hexo_abbrlink_checksums() -> None:
    from digest.sources.slugs import hexo_abbrlink

    assert hexo_abbrlink("123456789", rep="hex") == "bb3d"  # CRC-16/ARC's check value
    assert hexo_abbrlink("123456789") == str(0xBB3D)
    # a real blog's title and the abbrlink the plugin gave it (crc32, hex)
    assert hexo_abbrlink("Hexo-永久链接", alg="crc32", rep="hex") == "33b326d2"
    assert hexo_abbrlink("Hexo-永久链接", alg="crc32") == str(0x33B326D2)


# --- odd files and math seen in real posts ---------------------------------------------------


def test_odd_files_of_a_real_blog(folder: Path, tmp_path: Path) -> None:
    blog = tmp_path / "blog"
    posts = blog / "source" / "_posts"
    posts.mkdir(parents=True)
    (blog / "_config.yml").write_text(
        "title: 杂\nurl: https://odd.example.cn\ntimezone: Asia/Shanghai\nlanguage: zh-CN\n",
        "utf-8",
    )
    (posts / "empty.md").write_bytes(b"")
    (posts / "blank.md").write_bytes(b" \n\n")
    (posts / "gbk.md").write_bytes("---\ntitle: 编码\n---\n你好\n".encode("gbk"))
    (posts / "bom-crlf.md").write_bytes(
        "\ufeff---\r\ntitle: 'CRLF: 标题'\r\ndate: 2026/1/5 9:05\r\ntags: a, b\r\n---\r\n"
        "正文\u0008一行\r\n".encode()
    )
    (posts / "only-front-matter.md").write_text("---\ntitle: 只有头\ndate: 2026-01-06\n---\n")
    (posts / "link.md").symlink_to(posts / "bom-crlf.md")
    (posts / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    init = run("init", str(blog))
    assert init.exit_code == 0, init.output
    listed = run("posts", "--json")
    assert listed.exit_code == 0 and "Traceback" not in listed.output
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"bom-crlf.md", "link.md", "only-front-matter.md"}
    crlf = rows["bom-crlf.md"]
    assert (crlf["title"], crlf["url"], crlf["date"], crlf["tags"], crlf["excerpt"]) == (
        "CRLF: 标题",
        "https://odd.example.cn/2026/01/05/bom-crlf/",
        "2026-01-05T09:05:00+08:00",
        ["a, b"],  # Hexo keeps a tag string whole
        "正文一行",  # the pasted backspace is gone
    )
    # a symlink is read as the file it points to, under its own name
    assert rows["link.md"]["url"] == "https://odd.example.cn/2026/01/05/link/"
    assert rows["only-front-matter.md"]["excerpt"] == ""
    warnings = listed.stderr
    for name, reason in (
        ("empty.md", "the file is empty; skipped"),
        ("blank.md", "the file is empty; skipped"),
        ("gbk.md", "the file is not valid UTF-8"),
        ("dangling.md", "cannot read the file: No such file or directory"),
    ):
        assert f"{posts / name}: {reason}" in warnings
    assert ".." not in warnings and warnings.count("\n") == 4


@pytest.mark.parametrize(
    ("body", "math", "excerpt"),
    [
        # `$` alone on a line around an environment (a real ACM notes blog)
        (
            "总结\n\n$\n\\begin{aligned}\n&\\sum_{i=1}^n f(i)\\\\\n\\end{aligned}\n$\n\n后文",
            "dollars",
            "总结 [公式] 后文",
        ),
        ("价格\n\n$\n\n五块\n\n$\n", "dollars", "价格 $ 五块 $"),
    ],
)
def test_math_seen_in_real_posts(body: str, math: str, excerpt: str) -> None:
    from digest.sources.document import make_excerpt

    assert make_excerpt(body, math=math) == excerpt  # type: ignore[arg-type]


def test_a_heading_that_repeats_the_title_does_not_open_the_excerpt(folder: Path) -> None:
    # Posts written in Typora or Obsidian repeat their front-matter title as `# Title`; every
    # excerpt of a real Hugo blog began with its own title again.
    _, rows = init_and_list("hexo-bare")
    posts = by_title(rows)
    assert posts["『Shell 教程』1. 变量"]["excerpt"] == "变量赋值时等号两边不能有空格。"
    # a different first heading stays
    assert posts["NUMA 架构的几个概念"]["excerpt"].startswith("NUMA 与 SMP 多路服务器上")


def test_dates_as_hexo_tools_write_them(folder: Path) -> None:
    # `date: '4/1/2021 8:03:37 PM'` (a real Hexo post; moment reads it month first) was
    # "not a date" and the post was skipped.
    _, rows = init_and_list("hexo-bare")
    post = by_title(rows)["字符串翻转"]
    assert post["date"] == "2018-07-29T20:03:37+08:00"
    assert post["url"] == "https://notes.example.cn/2018/07/29/reverse-string/"
    assert post["tags"] == ["js", "js基础", "字符串"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-11 09:30:00 +0800", "2026-01-11T09:30:00+08:00"),
        ("2026/1/5", "2026-01-05T00:00:00+08:00"),
        ("2026-01-11 9:05", "2026-01-11T09:05:00+08:00"),
        ("4/1/2021 12:03 AM", "2021-04-01T00:03:00+08:00"),
        ("Jan 5, 2026", "2026-01-05T00:00:00+08:00"),
        ("5 January 2026 09:30", "2026-01-05T09:30:00+08:00"),
    ],
)
def test_date_forms(text: str, expected: str) -> None:
    from zoneinfo import ZoneInfo

    from digest.sources.values import as_datetime

    parsed = as_datetime(text, "date", ZoneInfo("Asia/Shanghai"))
    assert parsed is not None and parsed.isoformat() == expected


@pytest.mark.parametrize("text", ["13/1/2021", "2026.01.05", "Jan 5, 2026 garbage", "soon"])
def test_not_dates_are_one_sentence(text: str) -> None:
    from zoneinfo import ZoneInfo

    from digest.errors import PostError
    from digest.sources.values import as_datetime

    with pytest.raises(PostError, match=f"date '{re.escape(text)}' is not a date such as"):
        as_datetime(text, "date", ZoneInfo("UTC"))


def test_jekyll_baseurl_without_url_is_reported(folder: Path, tmp_path: Path) -> None:
    # a real blog sets only `baseurl: /blog` (GitHub Pages fills in the host)
    blog = tmp_path / "blog"
    (blog / "_posts").mkdir(parents=True)
    (blog / "_config.yml").write_text("title: B\nbaseurl: /blog\n", "utf-8")
    init = run("init", str(blog))
    assert (
        "baseurl '/blog' without url: set site.base_url to the site's address, ending in /blog"
        in (init.output)
    )
