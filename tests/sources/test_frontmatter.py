"""Front matter in every form Hexo, Hugo and Jekyll read, and broken front matter named well."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from digest.sources.frontmatter import FrontMatterError, split_front_matter


def test_yaml() -> None:
    meta, body = split_front_matter("---\ntitle: 标题\ndate: 2026-01-11\n---\n正文\n")
    assert meta == {"title": "标题", "date": date(2026, 1, 11)}
    assert body == "正文\n"


def test_yaml_with_long_dashes_dots_close_and_tab_indentation() -> None:
    meta, body = split_front_matter("-----\ntags:\n\t- a\n\t- b\n...\n\n    code\n")
    assert meta == {"tags": ["a", "b"]}
    assert body == "\n    code\n"  # a leading indented code block is kept as it is


def test_toml() -> None:
    text = (
        "+++\ntitle = 'TOML 文章'\ndate = 2026-01-11T09:30:00+08:00\ndraft = true\n"
        "tags = ['hugo', 'toml']\n[params]\nmath = true\n+++\n\nBody with +++ inside.\n"
    )
    meta, body = split_front_matter(text)
    assert meta["title"] == "TOML 文章"
    assert meta["date"] == datetime(2026, 1, 11, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    assert meta["draft"] is True and meta["tags"] == ["hugo", "toml"]
    assert meta["params"] == {"math": True}
    assert body == "\nBody with +++ inside.\n"


def test_hugo_json_object_with_braces_in_strings() -> None:
    text = '{\n  "title": "A {braced} title",\n  "tags": ["x"]\n}\n\nThe body }.\n'
    meta, body = split_front_matter(text)
    assert meta == {"title": "A {braced} title", "tags": ["x"]}
    assert body == "\nThe body }.\n"


def test_hexo_json_with_and_without_opening_semicolons() -> None:
    for text in (
        ';;;\n"title": "Hexo JSON",\n"date": "2026/1/5 9:05:00"\n;;;\nbody\n',
        '"title": "Hexo JSON",\n"date": "2026/1/5 9:05:00"\n;;;\nbody\n',
    ):
        meta, body = split_front_matter(text)
        assert meta == {"title": "Hexo JSON", "date": "2026/1/5 9:05:00"}
        assert body == "body\n"


@pytest.mark.parametrize(
    "text",
    [
        "No front matter at all.\n",
        "---\n\nA thematic break at the top, never closed.\n",
        "+++ not toml\n",
        "{% note info %}\nA Hexo tag first.\n{% endnote %}\n",
        "{{< figure src=x >}}\n",
        '"quoted" first line but no ;;; line\n',
    ],
)
def test_no_front_matter(text: str) -> None:
    assert split_front_matter(text) == ({}, text)


def test_byte_order_mark_and_empty_front_matter() -> None:
    assert split_front_matter("\ufeff---\n---\nbody") == ({}, "body")
    assert split_front_matter("+++\n+++\n") == ({}, "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\ntitle: [unclosed\ndate: 2026-01-01\n---\n", r"not valid YAML: .* \(line 2, column"),
        ("+++\ntitle = 'ok'\ndate = \n+++\n", r"not valid TOML: .*\(line 3, column"),
        ('{\n  "title": "x",\n  "tags": [\n}\n', r"not valid JSON: .*\(line 4, column 1\)"),
        (';;;\n"title": "x",,\n;;;\n', r"not valid JSON: .*\(line 2, column"),
        ("---\n- a\n- b\n---\n", r"not a mapping of keys to values"),
    ],
)
def test_broken_front_matter_names_format_and_line(text: str, message: str) -> None:
    with pytest.raises(FrontMatterError, match=message):
        split_front_matter(text)


def test_hexo_yaml_without_the_opening_line() -> None:
    text = "\ufefftitle: 无开头\r\ndate: 2018-09-05 17:32:47\r\ntags:\r\n\t- a\r\n---\r\n正文\r\n"
    meta, body = split_front_matter(text.replace("\r\n", "\n"), hexo=True)
    assert meta == {"title": "无开头", "date": meta["date"], "tags": ["a"]}
    assert body == "正文\n"
    # only Hexo reads it so; and only a YAML mapping counts
    assert split_front_matter("title: x\n---\nbody\n") == ({}, "title: x\n---\nbody\n")
    for prose in (
        "# 标题\n\n一段话\n---\n",
        "一句话：不是键\n---\n",
        "key: [unclosed\n---\n",
        "\n\n---\n",
        "No separator: at all\n",
    ):
        assert split_front_matter(prose, hexo=True) == ({}, prose)
