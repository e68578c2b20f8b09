"""Slugs exactly as Hexo, Hugo and Jekyll make them (cases from each project's own tests)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from digest.sources.slugs import hexo_slugize, hugo_urlize, jekyll_slugify, jekyll_titleize


@pytest.mark.parametrize(
    ("text", "transform", "slug"),
    [
        ("Hello World", 0, "Hello-World"),
        ("Hell\u00f2 w\u00f2rld", 0, "Hello-world"),  # diacritics folded by Hexo's table
        ("Hello  World", 0, "Hello-World"),
        ("~Hello World~", 0, "Hello-World"),
        ("Hello ~`!@#$%^&*()-_+=[]{}|\\;:\"'<>,.?/World", 0, "Hello-World"),
        ("Hello World", 1, "hello-world"),
        ("Hello World", 2, "HELLO-WORLD"),
        ("遊戲", 0, "遊戲"),
        ("Øresund Æble", 1, "oresund-aeble"),
        # a full-width colon is not one of Hexo's special characters
        ("深入理解 C++ 模板：SFINAE", 1, "深入理解-c-模板：sfinae"),
    ],
)
def test_hexo_slugize(text: str, transform: int, slug: str) -> None:
    assert hexo_slugize(text, transform) == slug


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("  foo bar  ", "foo-bar"),
        ("foo.bar/foo_bar-foo", "foo.bar/foo_bar-foo"),
        ("foo,bar:foobar", "foobarfoobar"),
        ("foo/bar.html", "foo/bar.html"),
        ("100%-google", "100-google"),
        ("Vim (text editor)", "vim-text-editor"),
        ("Hugo 的 Page Bundles", "hugo-的-page-bundles"),
        ("C# & F#: 比较", "c#-f#-比较"),
    ],
)
def test_hugo_urlize(text: str, slug: str) -> None:
    assert hugo_urlize(text) == slug


def test_hugo_urlize_then_escape_matches_hugo_for_non_ascii() -> None:
    assert quote(hugo_urlize("трям/трям"), safe="/") == (
        "%D1%82%D1%80%D1%8F%D0%BC/%D1%82%D1%80%D1%8F%D0%BC"
    )
    assert hugo_urlize("Keep Case", lower=False) == "Keep-Case"


@pytest.mark.parametrize(
    ("text", "mode", "cased", "slug"),
    [
        ("The _config.yml file", "default", False, "the-config-yml-file"),
        ("The _config.yml file", "pretty", False, "the-_config.yml-file"),
        ("The _config.yml file", "pretty", True, "The-_config.yml-file"),
        ("The _config.yml file?", "raw", False, "the-_config.yml-file?"),
        ("The _cönfig.yml file?", "ascii", False, "the-c-nfig-yml-file"),
        ("Hello, World!", "pretty", True, "Hello,-World!"),
        ("中文 标题", "default", False, "中文-标题"),
        ("Some Title", "unknown-mode", True, "Some Title"),
    ],
)
def test_jekyll_slugify(text: str, mode: str, cased: bool, slug: str) -> None:
    assert jekyll_slugify(text, mode=mode, cased=cased) == slug


def test_jekyll_titleize() -> None:
    assert jekyll_titleize("my-first-post") == "My First Post"
