"""Rendering the digest: golden files, the look, escaping, size, placeholders, no network."""

from __future__ import annotations

import re
import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import issue_settings, render_settings
from digest.issues.send import gather, next_edition
from digest.models import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, Edition, Post
from digest.render.edition import RenderError, render
from tests.support import paths

ROOT = paths.ROOT
GOLDEN = paths.TESTS / "golden"
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "config.yaml", environ={})


@pytest.fixture(scope="module")
def edition(config: Config) -> Edition:
    return next_edition(gather(issue_settings(config), now=NOW), issue_settings(config), NOW)


def diffable(html: str) -> str:
    """One tag per line, so that a template change shows as a readable diff."""
    return re.sub(r">\s*<", ">\n<", html).strip() + "\n"


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_golden_files(config: Config, edition: Edition, locale: str, update_golden: bool) -> None:
    rendered = render(render_settings(config), edition, locale)
    outputs = {
        f"demo.{locale}.html": diffable(rendered.html),
        f"demo.{locale}.txt": rendered.text,
    }
    for name, content in outputs.items():
        path = GOLDEN / name
        if update_golden:
            path.write_text(content, encoding="utf-8")
        assert path.exists(), f"{path} is missing: run pytest --update-golden"
        assert content == path.read_text(encoding="utf-8"), (
            f"{name} differs from the golden file; if the change is intended, "
            "run `pytest --update-golden` and review the diff"
        )


def test_anatomy(config: Config, edition: Edition) -> None:
    rendered = render(render_settings(config), edition, "zh")
    html = rendered.html
    assert '<html lang="zh-CN"' in html
    assert "INCOMING TRANSMISSION" in html
    assert "最新文章" in html
    shown = edition.posts[: config.digest.max_posts]
    assert len(shown) == 12 and len(edition.posts) > 12
    for post in shown:
        assert f'href="{post.url}"' in html
    assert html.count("阅读全文") == 12
    assert f"网站上还有 {len(edition.posts) - 12} 篇文章" in html
    assert 'href="https://blog.example.com/archives/"' in html
    assert "Python / 2026-11-20" in html
    assert f'href="{UNSUBSCRIBE_URL}"' in html and f'href="{PREFERENCES_URL}"' in html
    assert GREETING in html
    assert 'href="http://127.0.0.1:8080/archive/2026-W47/"' in html
    assert config.site.postal_address and config.site.postal_address in html
    assert "PingFang SC" in html and "Noto Sans CJK SC" in html
    assert "prefers-color-scheme: dark" in html
    assert 'name="color-scheme"' in html
    assert "@media only screen and (min-width: 480px)" in html
    preheader = re.search(r'<div class="preheader"[^>]*>(.*?)</div>', html)
    assert preheader is not None and preheader.group(1).startswith("本期：Structured Logging")
    assert rendered.preheader.startswith("本期：")
    assert rendered.subject == "Incoming Transmission · 2026年11月22日"
    assert 'src="https://blog.example.com/images/medusa.png"' in html
    assert 'alt="Medusa' in html


def test_the_preheader_is_hidden_without_hidden_text(config: Config, edition: Edition) -> None:
    """No display:none, no tiny or white font: spam filters read none of it as hidden text."""
    rendered = render(render_settings(config), edition, "zh")
    found = re.search(r'<div class="preheader" style="([^"]*)">([^<]*)</div>', rendered.html)
    assert found is not None
    style, text = found.groups()
    for hidden_text in ("display", "visibility", "color", "font-size", "line-height"):
        assert hidden_text not in style
    for box in ("max-height:0", "overflow:hidden", "opacity:0", "mso-hide:all"):
        assert box in style
    assert text == rendered.preheader
    body = rendered.html.split("<body", 1)[1]
    assert body.index('class="preheader"') < body.index("INCOMING TRANSMISSION")


def test_english_strings(config: Config, edition: Edition) -> None:
    rendered = render(render_settings(config), edition, "en")
    assert "LATEST UPDATES" in rendered.html and "Read more" in rendered.html
    # the labels follow the posts' language (excerpt.labels, default site.locale: zh)
    assert "[Math]" in rendered.text and "[math]" not in rendered.text
    assert "November 22, 2026" in rendered.text
    assert rendered.greeting_named == "Hi %(name)s," and rendered.greeting_anonymous == "Hi,"
    zh = render(render_settings(config), edition, "zh")
    assert "2026年11月22日" in zh.text
    assert zh.greeting_named == "%(name)s，你好："


def test_labels_follow_the_posts_language_not_the_frame(config: Config) -> None:
    """The seeds' look: an English frame around Chinese excerpts labelled [代码] [公式] [Math]."""
    seed = config.model_copy(
        update={
            "site": config.site.model_copy(update={"locale": "en"}),
            "excerpt": config.excerpt.model_copy(update={"labels": "zh", "length": 2000}),
        }
    )
    labelled = [
        c.post
        for c in gather(issue_settings(seed), now=NOW).new
        if any(label in (c.excerpt or "") for label in ("[代码]", "[公式]"))
    ]
    edition = Edition("2026-W47", NOW, tuple(labelled[:6]))
    rendered = render(render_settings(seed), edition)
    assert '<html lang="en"' in rendered.html
    assert "INCOMING TRANSMISSION" in rendered.html and "LATEST UPDATES" in rendered.html
    for label in ("[代码]", "[公式]", "[Math]"):  # the HTML: the text part wraps lines
        assert label in rendered.html
    assert not {"[code]", "[formula]", "[math]"} & set(re.findall(r"\[\w+\]", rendered.html))
    english = config.model_copy(
        update={"excerpt": seed.excerpt.model_copy(update={"labels": "en"})}
    )
    zh_frame = render(render_settings(english), edition, "zh")
    assert "最新文章" in zh_frame.html and "[code]" in zh_frame.html
    assert "[代码]" not in zh_frame.html


def test_size_stays_under_gmail_clipping(config: Config, edition: Edition) -> None:
    assert len(render(render_settings(config), edition, "zh").html.encode()) < 102 * 1024


def test_text_part_lines(config: Config, edition: Edition) -> None:
    text = render(render_settings(config), edition, "zh").text
    for line in text.splitlines():
        assert len(line.encode()) < 998
        if " " in line.strip() and "http" not in line and "x-digest:" not in line:
            assert len(line) < 78, line
    for post in edition.posts[:12]:
        assert post.url in text
    assert f"退订: {UNSUBSCRIBE_URL}" in text


HOSTILE = "<script>alert(1)</script> {{ config }} {% raw %}\r\nBcc: victim@example.com"


def test_hostile_title_renders_as_harmless_text(config: Config, edition: Edition) -> None:
    post = replace(edition.posts[0], title=HOSTILE, categories=("<b>cat</b>\r\nX: y",))
    rendered = render(render_settings(config), replace(edition, posts=(post,)), "zh")
    assert "<script>alert(1)</script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "{{ config }}" in rendered.html  # shown as text, never evaluated
    assert "<b>cat</b>" not in rendered.html
    for part in (rendered.html, rendered.text, rendered.subject):
        assert "\r" not in part
    assert "\nBcc:" not in rendered.text
    title_line = next(line for line in rendered.text.splitlines() if "alert(1)" in line)
    assert "Bcc: victim@example.com" in title_line  # kept on the title's own line


def test_user_templates_override_only_what_they_define(
    config: Config, edition: Edition, tmp_path: Path
) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "post.mjml.j2").write_text(
        '<mj-section><mj-column><mj-text css-class="mine">MINE {{ item.title }}</mj-text>'
        "</mj-column></mj-section>",
        encoding="utf-8",
    )
    custom = config.model_copy(update={"templates_dir": tmp_path})
    html = render(render_settings(custom), edition, "zh").html
    assert html.count("MINE ") == 12
    assert "最新文章" in html  # the digest template itself is still the built-in one


def test_sandbox_blocks_unsafe_template_code(
    config: Config, edition: Edition, tmp_path: Path
) -> None:
    from jinja2.exceptions import SecurityError

    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "post.mjml.j2").write_text(
        "{{ item.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8"
    )
    custom = config.model_copy(update={"templates_dir": tmp_path})
    with pytest.raises(RenderError) as caught:
        render(render_settings(custom), edition, "zh")
    assert isinstance(caught.value.__cause__, SecurityError)
    assert f"{tmp_path / 'email' / 'post.mjml.j2'}, line 1: " in str(caught.value)


def test_relative_links_become_absolute(config: Config) -> None:
    post = Post(
        id="p",
        title="t",
        url="https://blog.example.com/posts/p/",
        date=NOW,
        body="x",
        cover="images/c.png",
    )
    html = render(
        render_settings(config), Edition(key="2026-W47", date=NOW, posts=(post,)), "zh"
    ).html
    assert 'src="https://blog.example.com/images/c.png"' in html
    assert not re.search(r'(?:href|src)="(?!https?://|x-digest:|mailto:)', html)


def test_rendering_opens_no_socket(
    config: Config, edition: Edition, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network access during rendering")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))  # type: ignore[arg-type]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: refuse(None, a))  # type: ignore[arg-type]
    rendered = render(render_settings(config), edition, "zh")
    assert rendered.html and attempts == []
    assert "fonts.googleapis.com" not in rendered.html
    assert "<link" not in rendered.html
