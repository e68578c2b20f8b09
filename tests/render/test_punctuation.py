"""No doubled punctuation after an author's excerpt or a site title, in both locales.

An author's summary (or the text before `<!--more-->`) that ends in a full stop used to get
"..." on top ("....", "。..."): the stop now gives way to the ellipsis. A site title ending in
punctuation doubled the footer's own full stop ("订阅了 行路中.。"). A length cut still
appends exactly "...".
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import render_settings
from digest.excerpt.rules import excerpt_of
from digest.models import Edition, Post
from digest.render.edition import end_sentence, render
from digest.sources.document import make_excerpt

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
BODY = "The body says much more than the summary does, at length."


@pytest.mark.parametrize(
    ("summary", "excerpt"),
    [
        ("Here is when to use each.", "Here is when to use each..."),
        ("并给出一组实用默认值。", "并给出一组实用默认值..."),
        ("全角句点结尾．", "全角句点结尾..."),
        ("Already trailing off...", "Already trailing off..."),
        ("已经有省略号……", "已经有省略号……"),
        ("Ends with an ellipsis…", "Ends with an ellipsis…"),
        ("Is it fast?", "Is it fast?..."),
        ("真的吗？", "真的吗？..."),
        ("Wow!", "Wow!..."),
        ("断断续续。。。", "断断续续..."),
        ("No stop at the end", "No stop at the end..."),
        ("Trailing space. ", "Trailing space..."),
    ],
)
def test_a_summary_never_doubles_its_punctuation(summary: str, excerpt: str) -> None:
    assert excerpt_of(BODY, summary=summary) == excerpt


def test_a_summary_that_is_the_whole_post_gets_no_ellipsis() -> None:
    assert excerpt_of("Short.", summary="Short.") == "Short."


@pytest.mark.parametrize(
    ("before", "excerpt"),
    [
        ("第一段写完了。", "第一段写完了..."),
        ("A first part.", "A first part..."),
        ("Why?", "Why?..."),
    ],
)
def test_a_manual_excerpt_never_doubles_its_punctuation(before: str, excerpt: str) -> None:
    assert make_excerpt(f"{before}\n\n<!--more-->\n\nThe rest.\n", locale="en") == excerpt


def test_a_length_cut_still_appends_exactly_three_dots() -> None:
    text = "一" * 9 + "。" + "二" * 20
    assert make_excerpt(text, length=10) == "一" * 9 + "。..."


@pytest.mark.parametrize(
    ("text", "ended"),
    [
        ("订阅了 行路中.。", "订阅了 行路中."),
        ("订阅了 行路中。。", "订阅了 行路中。"),
        ("subscribed to Yahoo!.", "subscribed to Yahoo!"),
        ("subscribed to Notes....", "subscribed to Notes..."),
        ("subscribed to Notes.", "subscribed to Notes."),
        ("订阅了 行路中。", "订阅了 行路中。"),
        ("subscribed to Q&amp;A?.", "subscribed to Q&amp;A?"),
    ],
)
def test_end_sentence(text: str, ended: str) -> None:
    assert end_sentence(text) == ended


def blog(tmp_path: Path, title: str, locale: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"site:\n  title: {title!r}\n  base_url: https://b.example.com\n  locale: {locale}\n"
        "sources:\n  - {type: markdown, path: posts}\n",
        encoding="utf-8",
    )
    return load_config(path, environ={})


@pytest.mark.parametrize(
    ("title", "locale", "footer"),
    [
        ("行路中.", "zh", "是因为你订阅了 行路中."),
        ("行路中。", "zh", "是因为你订阅了 行路中。"),
        ("行路中", "zh", "是因为你订阅了 行路中。"),
        ("Notes.", "en", "because you subscribed to Notes."),
        ("Yahoo!", "en", "because you subscribed to Yahoo!"),
        ("Q&A?", "en", "because you subscribed to Q&A?"),
        ("Notes", "en", "because you subscribed to Notes."),
    ],
)
def test_the_footer_never_doubles_the_titles_punctuation(
    tmp_path: Path, title: str, locale: str, footer: str
) -> None:
    post = Post(
        id="p", title="T", url="https://b.example.com/p/", date=NOW, body="x", summary="摘要。"
    )
    settings = render_settings(blog(tmp_path, title, locale))
    rendered = render(settings, Edition("2026-W47", NOW, (post,)))
    html_footer = footer.replace("&", "&amp;")
    assert f"{html_footer}</p>" in rendered.html
    assert f"{footer}\n" in rendered.text
