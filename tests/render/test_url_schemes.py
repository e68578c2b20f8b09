"""Only http, https and mailto links reach an email or a page; the rest is dropped and named.

Before: `url: javascript:alert(1)` in front matter became the post's link (digest.links joined
it to the site and got the script URL back), `cover: data:...` its image, in the email and the
dry run's preview.html, which had no Content-Security-Policy.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import issue_settings, render_settings
from digest.errors import ConfigError
from digest.issues.send import gather, next_edition
from digest.links import is_safe_link, link_scheme, site_url
from digest.render.csp import EMAIL_CSP, meta_policy, with_csp_meta
from digest.render.edition import render, web_link

NOW = datetime(2026, 3, 1, tzinfo=UTC)
HOSTILE_LINKS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "  javascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "javascript&#58;alert(1)",
    "javascript&colon;alert(1)",
    "&#x6A;avascript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data:image/svg+xml,<svg onload=alert(1)>",
    "file:///etc/passwd",
    "blob:https://evil.example/uuid",
    "x-evil:thing",
]


@pytest.mark.parametrize("link", HOSTILE_LINKS)
def test_every_disguise_of_another_scheme_is_seen(link: str) -> None:
    assert link_scheme(link) not in {"", "http", "https", "mailto"}
    assert not is_safe_link(link)
    assert web_link("https://b.example.com", link) is None
    # and the site's own joining never turns a path into one of them
    assert site_url("https://b.example.com/blog", link).startswith("https://b.example.com/")


@pytest.mark.parametrize(
    "link",
    ["https://x.example/a", "HTTP://x.example", "mailto:me@x.example", "/p/a/", "a.png", "#top"],
)
def test_web_links_and_relative_links_are_kept(link: str) -> None:
    assert is_safe_link(link)
    made = web_link("https://b.example.com", link)
    assert made is not None and link_scheme(made) in {"http", "https", "mailto"}


def blog(tmp_path: Path, front_matter: str, body: str = "Body text.") -> Config:
    (tmp_path / "posts").mkdir(exist_ok=True)
    (tmp_path / "posts" / "evil.md").write_text(
        f"---\ntitle: Evil\ndate: 2026-02-01\n{front_matter}---\n{body}\n", encoding="utf-8"
    )
    (tmp_path / "config.yaml").write_text(
        "site: {title: T, base_url: 'https://b.example.com', locale: en}\n"
        "sources: [{type: markdown, path: posts}]\n"
        "digest: {lookback_days: 0}\n",
        encoding="utf-8",
    )
    return load_config(tmp_path / "config.yaml", environ={})


def links_in(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]*)"', html)


@pytest.mark.parametrize("link", HOSTILE_LINKS)
@pytest.mark.parametrize("key", ["url", "permalink", "cover", "image"])
def test_front_matter_links_are_dropped_with_a_warning(tmp_path: Path, key: str, link: str) -> None:
    quoted = link.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    quoted = quoted.replace("\n", "\\n").replace("\x01", "\\x01")
    config = blog(tmp_path, f'{key}: "{quoted}"\n')
    gathered = gather(issue_settings(config), now=NOW)
    [post] = gathered.new
    [problem] = gathered.source.problems
    assert problem.where.endswith("evil.md")
    assert "is not an http(s) URL" in problem.reason
    if key in ("url", "permalink"):
        assert post.post.url == "https://b.example.com/posts/evil/"
        assert "the permalink pattern is used" in problem.reason
    else:
        assert post.post.cover is None
        assert "the post has no cover" in problem.reason
    rendered = render(
        render_settings(config), next_edition(gathered, issue_settings(config), NOW), "en"
    )
    for target in links_in(rendered.html):
        assert link_scheme(target) in {"http", "https", "mailto", "x-digest"}, target
    assert "javascript" not in rendered.html.lower().replace("\t", "")


def test_links_in_a_post_body_never_reach_the_email(tmp_path: Path) -> None:
    body = (
        "[click](javascript:alert(1)) ![x](data:image/png;base64,AAAA) "
        '<a href="vbscript:x">raw</a> <img src="file:///etc/passwd">'
    )
    config = blog(tmp_path, "", body)
    gathered = gather(issue_settings(config), now=NOW)
    rendered = render(
        render_settings(config), next_edition(gathered, issue_settings(config), NOW), "en"
    )
    for target in links_in(rendered.html):
        assert link_scheme(target) in {"http", "https", "mailto", "x-digest"}, target
    # markdown-it does not link a javascript: URL: it stays text in the excerpt, and text is
    # all an excerpt has (images and raw tags go)
    assert "data:image" not in rendered.html and "vbscript" not in rendered.html
    assert "file:" not in rendered.html


def test_a_feed_entry_known_by_its_urn_links_to_the_site(tmp_path: Path) -> None:
    (tmp_path / "feed.xml").write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>F</title><id>urn:f</id>'
        "<updated>2026-02-01T00:00:00Z</updated><entry><title>No link</title>"
        "<id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>"
        "<updated>2026-02-01T00:00:00Z</updated><summary>S</summary>"
        '<link rel="enclosure" type="image/png" href="javascript:alert(1)"/></entry></feed>',
        encoding="utf-8",
    )
    (tmp_path / "config.yaml").write_text(
        "site: {title: T, base_url: 'https://b.example.com', locale: en}\n"
        "sources: [{type: feed, url: feed.xml}]\ndigest: {lookback_days: 0}\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "config.yaml", environ={})
    gathered = gather(issue_settings(config), now=NOW)
    [problem] = gathered.source.problems
    assert str(problem).endswith(
        "entry 1: cover 'javascript:alert(1)' is not an http(s) URL; the post has no cover"
    )
    rendered = render(
        render_settings(config), next_edition(gathered, issue_settings(config), NOW), "en"
    )
    assert "urn:uuid" not in rendered.html
    assert 'href="https://b.example.com"' in rendered.html


def test_posts_url_must_be_a_web_url(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "site: {title: T, base_url: 'https://b.example.com', posts_url: 'javascript:x'}\n"
        "sources: [{type: markdown, path: posts}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"site.posts_url: 'javascript:x' must start with http"):
        load_config(tmp_path / "config.yaml", environ={})


def test_the_meta_policy_is_the_served_one_minus_what_meta_cannot_carry() -> None:
    assert meta_policy() == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
        "form-action 'none'"
    )
    assert set(meta_policy().split("; ")) < {p.strip() for p in EMAIL_CSP.split(";")}
    page = with_csp_meta('<html><HEAD lang="x"><title>t</title></head></html>')
    assert page.startswith(
        '<html><HEAD lang="x"><meta http-equiv="Content-Security-Policy" content="default-src'
    )
    assert with_csp_meta("<p>x</p>").startswith("<meta http-equiv=")


def test_a_script_in_a_file_with_the_meta_policy_does_not_run(
    tmp_path: Path, browser: Browser
) -> None:
    """The dry run's preview.html is opened from disk: its own policy must stop a script."""
    page_html = (
        "<!doctype html><html><head><title>before</title></head><body>"
        "<script>document.title = 'ran';</script>"
        '<img src="x" onerror="document.title = \'ran\'"></body></html>'
    )
    unprotected, protected = tmp_path / "plain.html", tmp_path / "preview.html"
    unprotected.write_text(page_html, encoding="utf-8")
    protected.write_text(with_csp_meta(page_html), encoding="utf-8")
    context = browser.new_context()
    page = context.new_page()
    page.goto(unprotected.as_uri())
    assert page.title() == "ran"  # the check can fail: without the policy the script runs
    page.goto(protected.as_uri())  # "load" waits for the image's error event too
    assert page.title() == "before"
    context.close()
