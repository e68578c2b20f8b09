"""Tests of digest.sources.feed: RSS 0.9x/1.0/2.0, Atom and JSON Feed, from files and over HTTP.

HTTP tests talk only to servers on 127.0.0.1 started here (stdlib http.server on port 0).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from digest.errors import DigestError, SourceError
from digest.excerpt.rules import excerpt_of
from digest.models import Post, Problem, SourceResult
from digest.sources.feed import USER_AGENT, fetch, parse_feed, read_feed, sanitise
from tests.support import paths

FIXTURES = paths.TESTS / "fixtures" / "feeds"

# Markup and URLs that must never survive sanitising untrusted feed HTML.
DANGEROUS: tuple[str, ...] = (
    "<script",
    "alert(",
    "onerror",
    "onclick",
    "onload",
    "onmouseover",
    "javascript:",
    "<iframe",
    "style=",
    "evil.example.com",
    "document.cookie",
)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_fixture(name: str) -> tuple[list[Post], list[Problem]]:
    return parse_feed(fixture_bytes(name), where=str(FIXTURES / name))


def by_title(posts: list[Post]) -> dict[str, Post]:
    return {post.title: post for post in posts}


def rss(items: str, *, channel_link: str = "<link>https://site.example/</link>") -> bytes:
    """A small RSS 2.0 document around `items` (with the content and media namespaces)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>T</title>{channel_link}<description>d</description>
{items}
</channel></rss>""".encode()


def atom(entries: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:x</id>
<link href="https://atom.site.example/"/><updated>2026-01-01T00:00:00Z</updated>
{entries}
</feed>""".encode()


def json_feed(*items: object, **feed: object) -> bytes:
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "J", **feed}
    document["items"] = list(items)
    return json.dumps(document, ensure_ascii=False).encode()


def assert_one_sentence(error: DigestError, names: str) -> None:
    """A user-facing error: one line, one sentence, naming the file or URL first."""
    message = str(error)
    assert message == error.message
    assert message.startswith(f"{names}: "), message
    assert message.endswith("."), message
    assert "\n" not in message, message
    assert "Traceback" not in message


# --------------------------------------------------------------------------------------------
# RSS 2.0


def test_rss20_entries_fields() -> None:
    posts, problems = parse_fixture("rss20.xml")
    assert [p.title for p in posts] == [
        "Softmax 的数值稳定性",
        "Asyncio cancellation, explained",
        "没有日期的笔记 Undated note",
        "Emoji 👩\u200d💻 & ZWJ 🇨🇳",
    ]
    softmax = posts[0]
    assert softmax.id == "post-softmax-2026"  # the guid, even though it is not a permalink
    assert softmax.url == "https://blog.example.com/posts/softmax/"  # relative link made absolute
    assert softmax.date == datetime(2026, 10, 6, 0, 30, tzinfo=UTC)  # +0800 read correctly
    assert softmax.updated is None  # the feed gives no update date: none is invented
    assert softmax.body_format == "html"
    assert softmax.source == str(FIXTURES / "rss20.xml")
    assert softmax.cover_alt == softmax.title
    assert len(problems) == 1


def test_rss20_content_encoded_is_body_and_description_is_summary() -> None:
    softmax = parse_fixture("rss20.xml")[0][0]
    assert "def softmax(x):" in softmax.body  # from content:encoded
    assert "本文给出稳定的写法" not in softmax.body
    assert softmax.summary is not None
    assert "本文给出稳定的写法" in softmax.summary  # from description
    assert "def softmax" not in softmax.summary


def test_rss20_description_only_is_the_body_without_summary() -> None:
    asyncio_post = by_title(parse_fixture("rss20.xml")[0])["Asyncio cancellation, explained"]
    assert "<em>cancel()</em>" in asyncio_post.body
    assert asyncio_post.summary is None


@pytest.mark.parametrize("content_first", [True, False])
def test_rss20_content_and_description_in_either_order(content_first: bool) -> None:
    content = "<content:encoded><![CDATA[<p>FULL body</p>]]></content:encoded>"
    description = "<description>SHORT summary</description>"
    parts = content + description if content_first else description + content
    posts, problems = parse_feed(
        rss(f"<item><title>x</title><link>https://site.example/x</link>{parts}</item>"),
        where="inline.xml",
    )
    assert problems == []
    assert posts[0].body == "<p>FULL body</p>"
    assert posts[0].summary == "SHORT summary"


def test_rss20_content_only_has_no_summary() -> None:
    posts, _ = parse_feed(
        rss(
            "<item><title>x</title><link>https://site.example/x</link>"
            "<content:encoded><![CDATA[<p>only content</p>]]></content:encoded></item>"
        ),
        where="inline.xml",
    )
    assert posts[0].body == "<p>only content</p>"
    assert posts[0].summary is None  # feedparser's copy of the content is not a summary


def test_rss20_categories_are_deduplicated_in_order() -> None:
    posts = by_title(parse_fixture("rss20.xml")[0])
    assert posts["Softmax 的数值稳定性"].categories == ("机器学习", "Python")
    assert posts["Softmax 的数值稳定性"].category == "机器学习"
    assert posts["Asyncio cancellation, explained"].categories == ("Python",)
    assert posts["没有日期的笔记 Undated note"].categories == ()


def test_rss20_covers() -> None:
    posts = by_title(parse_fixture("rss20.xml")[0])
    # media:thumbnail with a relative URL, made absolute against the channel link
    assert (
        posts["Softmax 的数值稳定性"].cover == "https://blog.example.com/images/softmax-cover.png"
    )
    # an image enclosure
    assert posts["Asyncio cancellation, explained"].cover == "https://cdn.example.com/asyncio.jpg"
    # an audio enclosure is not a cover
    assert posts["没有日期的笔记 Undated note"].cover is None


@pytest.mark.parametrize(
    ("media", "cover"),
    [
        (
            '<media:content url="https://c.example/a.jpg" type="image/jpeg"/>',
            "https://c.example/a.jpg",
        ),
        (
            '<media:content url="https://c.example/b.png" medium="image"/>',
            "https://c.example/b.png",
        ),
        ('<media:content url="https://c.example/v.mp4" type="video/mp4"/>', None),
        ('<media:content url="https://c.example/v.mp4" medium="video"/>', None),
        ('<media:thumbnail url="javascript:alert(1)"/>', None),
        ('<enclosure url="data:image/png;base64,AAAA" type="image/png" length="4"/>', None),
        (
            '<enclosure url="/rel/e.webp" type="image/webp" length="4"/>',
            "https://site.example/rel/e.webp",
        ),
    ],
)
def test_rss20_cover_sources(media: str, cover: str | None) -> None:
    posts, problems = parse_feed(
        rss(f"<item><title>x</title><link>https://site.example/x</link>{media}</item>"),
        where="inline.xml",
    )
    unsafe = re.search(r'url="((?:javascript|data):[^"]*)"', media)
    expected = (
        [
            f"inline.xml, entry 1: cover {unsafe.group(1)!r} is not an http(s) URL; the post has "
            "no cover"
        ]
        if unsafe
        else []
    )
    assert [str(p) for p in problems] == expected
    assert posts[0].cover == cover


def test_rss20_entry_without_guid_uses_its_link_as_identity() -> None:
    asyncio_post = by_title(parse_fixture("rss20.xml")[0])["Asyncio cancellation, explained"]
    assert asyncio_post.id == "https://blog.example.com/posts/asyncio-cancellation/"
    assert asyncio_post.url == asyncio_post.id


def test_rss20_entry_without_date_still_read() -> None:
    undated = by_title(parse_fixture("rss20.xml")[0])["没有日期的笔记 Undated note"]
    assert undated.date is None
    assert undated.updated is None
    assert undated.id == "https://blog.example.com/notes/undated/"
    assert undated.body == "A note without a date 📝."


def test_rss20_permalink_guid_without_link_is_the_url() -> None:
    posts, _ = parse_feed(
        rss("<item><title>g</title><guid>https://site.example/g/</guid></item>"), where="x.xml"
    )
    assert posts[0].id == "https://site.example/g/"
    assert posts[0].url == "https://site.example/g/"


def test_rss20_non_permalink_guid_without_link_is_not_made_a_link() -> None:
    posts, problems = parse_feed(
        rss('<item><title>g</title><guid isPermaLink="false">abc-123</guid></item>'),
        where="x.xml",
    )
    assert problems == []
    assert posts[0].id == "abc-123"
    assert posts[0].url == "abc-123"  # the id, not "https://site.example/abc-123"


def test_rss20_emoji_and_entities_in_title_and_body() -> None:
    emoji = by_title(parse_fixture("rss20.xml")[0])["Emoji 👩\u200d💻 & ZWJ 🇨🇳"]
    assert emoji.id == "tag:blog.example.com,2026:emoji"
    assert "👨\u200d👩\u200d👧\u200d👦" in emoji.body
    assert "🇯🇵" in emoji.body


def test_rss20_malformed_entry_is_reported_and_the_rest_read() -> None:
    posts, problems = parse_fixture("rss20.xml")
    assert len(posts) == 4
    assert problems == [
        Problem(
            f"{FIXTURES / 'rss20.xml'}, entry 4",
            "the entry has neither an id (guid) nor a link; skipped",
        )
    ]
    assert str(problems[0]).startswith(str(FIXTURES / "rss20.xml"))
    assert all("broken entry" not in p.title for p in posts)


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("javascript:alert(1)", "is not an http(s) URL"),
        ("data:text/html,hi", "is not an http(s) URL"),
        ("http://[oops/", "malformed"),
    ],
)
def test_rss20_entry_with_unusable_link_is_a_problem(link: str, reason: str) -> None:
    items = (
        "<item><title>ok before</title><link>https://site.example/a</link></item>"
        f"<item><title>bad</title><link>{link}</link></item>"
        "<item><title>ok after</title><link>https://site.example/b</link></item>"
    )
    posts, problems = parse_feed(rss(items), where="mixed.xml")
    assert [p.title for p in posts] == ["ok before", "ok after"]
    assert len(problems) == 1
    assert problems[0].where == "mixed.xml, entry 2"
    assert reason in problems[0].reason
    assert problems[0].reason.endswith("skipped")


def test_rss_titles_html_dropped_text_kept() -> None:
    items = (
        "<item><title>Vec&lt;T&gt; in Rust</title><link>https://s.example/1</link></item>"
        "<item><title>&lt;em&gt;Bold&lt;/em&gt; move</title><link>https://s.example/2</link></item>"
        "<item><title>  two\n   lines\r\n </title><link>https://s.example/3</link></item>"
        "<item><link>https://s.example/untitled</link></item>"
    )
    posts, _ = parse_feed(rss(items), where="t.xml")
    assert [p.title for p in posts] == [
        "Vec<T> in Rust",
        "Bold move",
        "two lines",
        "https://s.example/untitled",
    ]


def test_rss_without_channel_link_resolves_against_the_feed_url() -> None:
    items = (
        "<item><title>r</title><link>/posts/r/</link>"
        "<description>&lt;a href='x/'&gt;x&lt;/a&gt;</description></item>"
    )
    posts, _ = parse_feed(rss(items, channel_link=""), where="https://h.example/blog/feed.xml")
    assert posts[0].url == "https://h.example/posts/r/"
    assert 'href="https://h.example/posts/r/x/"' in posts[0].body


def test_feedparser_updated_fallback_is_not_used() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # feedparser warns when its updated->published map is used
        posts, _ = parse_fixture("rss20.xml")
    assert all(p.updated is None for p in posts)


# --------------------------------------------------------------------------------------------
# RSS 1.0 and 0.91


def test_rss10_rdf() -> None:
    posts, problems = parse_fixture("rss10.rdf")
    assert problems == []
    hnsw, bpe = posts
    assert hnsw.title == "HNSW 向量索引"
    assert hnsw.id == "https://blog.example.com/posts/hnsw/"
    assert hnsw.url == "https://blog.example.com/posts/hnsw/"
    assert hnsw.date == datetime(2026, 11, 3, 1, 15, tzinfo=UTC)  # dc:date with +08:00
    assert hnsw.categories == ("数据库",)  # dc:subject
    assert "\\( O(\\log n) \\)" in hnsw.body
    assert bpe.date is None
    assert bpe.title == "BPE tokenizer from scratch"


def test_rss091_latin1_and_relative_links() -> None:
    posts, problems = parse_fixture("rss091.xml")
    assert problems == []
    cafe, relative = posts
    assert cafe.title == "Café notes — 咖啡笔记"  # ISO-8859-1 bytes and character references
    assert cafe.id == "https://old.example.com/cafe.html"  # no guid in RSS 0.91: the link
    assert cafe.date is None
    assert "café" in cafe.body
    assert "<b>bold</b>" in cafe.body  # escaped HTML in a description is HTML
    assert 'src="https://old.example.com/pics/cup.jpg"' in cafe.body
    assert relative.url == "https://old.example.com/archive/2001.html"


# --------------------------------------------------------------------------------------------
# Atom


def test_atom_entries_fields() -> None:
    posts, problems = parse_fixture("atom.xml")
    assert [p.title for p in posts] == [
        "注意力的复杂度 O(n²)",  # type="html" title: markup dropped
        "Type hints & Protocols",
        "Summary only",
    ]
    attention = posts[0]
    assert attention.id == "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"
    assert attention.url == "https://atom.example.com/blog/posts/attention/"  # xml:base
    assert attention.date == datetime(2026, 10, 20, 0, 0, tzinfo=UTC)
    assert attention.updated == datetime(2026, 10, 21, 1, 30, tzinfo=UTC)
    assert attention.categories == ("机器学习", "transformers")  # label, else term
    assert attention.cover == "https://atom.example.com/blog/covers/attention.png"
    assert attention.summary is not None
    assert 'class="katex"' in attention.summary
    assert len(problems) == 1


def test_atom_relative_links_in_content_follow_xml_base() -> None:
    attention = parse_fixture("atom.xml")[0][0]
    assert 'href="https://atom.example.com/papers/attention.pdf"' in attention.body
    assert 'src="https://atom.example.com/blog/figures/attn.png"' in attention.body
    assert 'href="../' not in attention.body


def test_atom_entry_without_id_uses_link_and_xhtml_content() -> None:
    protocols = by_title(parse_fixture("atom.xml")[0])["Type hints & Protocols"]
    assert protocols.id == "https://atom.example.com/blog/posts/protocols/"
    assert protocols.date == datetime(2026, 10, 23, 12, 0, tzinfo=UTC)  # updated when unpublished
    assert "<pre><code>class Greeter(Protocol):" in protocols.body
    assert "-&gt; str" in protocols.body


def test_atom_text_summary_is_escaped_not_parsed() -> None:
    summary_only = by_title(parse_fixture("atom.xml")[0])["Summary only"]
    assert summary_only.body == "<p>Plain summary text with &lt;angle&gt; brackets.</p>"
    assert summary_only.summary is None
    assert summary_only.url == "https://atom.example.com/summary-only"


def test_atom_malformed_entry_reported() -> None:
    posts, problems = parse_fixture("atom.xml")
    assert problems[0].where == f"{FIXTURES / 'atom.xml'}, entry 3"
    assert "neither an id" in problems[0].reason
    assert "An entry with neither id nor link" not in [p.title for p in posts]


def test_atom_text_title_keeps_angle_brackets_and_non_url_id_is_no_link() -> None:
    posts, _ = parse_feed(
        atom(
            "<entry><title>Option&lt;T&gt; &amp; Result</title><id>post-1</id>"
            "<content type='text'>a &lt; b\n\nc &gt; d</content></entry>"
        ),
        where="a.xml",
    )
    assert posts[0].title == "Option<T> & Result"
    assert posts[0].id == "post-1"
    assert posts[0].url == "post-1"  # not invented as https://atom.site.example/post-1
    assert posts[0].body == "<p>a &lt; b</p><p>c &gt; d</p>"


def test_atom_category_term_when_no_label() -> None:
    posts, _ = parse_feed(
        atom(
            "<entry><title>c</title><id>https://atom.site.example/c</id>"
            "<category term='rust'/><category term=' '/><category term='rust' label='Rust'/>"
            "</entry>"
        ),
        where="a.xml",
    )
    assert posts[0].categories == ("rust", "Rust")


# --------------------------------------------------------------------------------------------
# JSON Feed


def test_json_feed_entries_fields() -> None:
    posts, _ = parse_fixture("feed.json")
    assert [p.title for p in posts] == [
        "SQLite 小技巧",
        "Python packaging with pyproject.toml",
        "No date at all",
    ]
    sqlite = posts[0]
    assert sqlite.id == "sqlite-tricks"
    assert sqlite.url == "https://json.example.com/posts/sqlite-tricks/"
    assert sqlite.date == datetime(2026, 10, 30, 2, 0, tzinfo=UTC)
    assert sqlite.date.utcoffset() == timedelta(hours=8)
    assert sqlite.updated == datetime(2026, 10, 31, 10, 0, tzinfo=UTC)
    assert sqlite.categories == ("数据库", "SQLite")
    assert sqlite.cover == "https://json.example.com/covers/sqlite.png"
    assert sqlite.body_format == "html"
    # a JSON Feed summary is plain text: kept as text (escaped), never parsed as markup
    assert sqlite.summary == "WITH RECURSIVE 与 &lt;b&gt;窗口函数&lt;/b&gt;。"


def test_json_feed_relative_links_absolute() -> None:
    sqlite = parse_fixture("feed.json")[0][0]
    assert 'href="https://json.example.com/posts/indexes/"' in sqlite.body
    assert 'src="https://json.example.com/img/tree.png"' in sqlite.body
    assert 'src="https://json.example.com/posts/sqlite-tricks/a.png"' in sqlite.body


def test_json_feed_content_text_without_id_or_date() -> None:
    posts = by_title(parse_fixture("feed.json")[0])
    packaging = posts["Python packaging with pyproject.toml"]
    assert packaging.id == "https://json.example.com/posts/packaging/"  # no id: the url
    assert packaging.body == (
        "<p>pyproject.toml replaces setup.py &lt;finally&gt;.</p><p>Second paragraph 📦.</p>"
    )
    assert packaging.updated is None
    undated = posts["No date at all"]
    assert undated.date is None
    assert undated.id == "no-date"


def test_json_feed_malformed_items_reported_and_rest_read() -> None:
    posts, problems = parse_fixture("feed.json")
    where = str(FIXTURES / "feed.json")
    assert len(posts) == 3
    assert [p.where for p in problems] == [
        f"{where}, item 4",
        f"{where}, item 5",
        f"{where}, item 6",
    ]
    assert problems[0].reason == "the item is not an object; skipped"
    assert "yesterday-ish" in problems[1].reason
    assert "neither an id nor a url" in problems[2].reason


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"id": "a", "url": ["https://x.example/"]}, "'url' is not a string"),
        ({"id": "a", "title": {"zh": "标题"}}, "'title' is not a string"),
        ({"id": {"x": 1}, "url": "https://x.example/"}, "'id' is not a string"),
        ({"id": "a", "url": "javascript:alert(1)"}, "not an http(s) URL"),
        ({"id": "a", "date_published": "2026-02-30T00:00:00Z"}, "not an RFC 3339 date"),
        ({"id": "a", "url": "http://[oops/"}, "the item is malformed (Invalid IPv6 URL)"),
    ],
)
def test_json_feed_bad_item_fields(item: dict[str, Any], reason: str) -> None:
    good = {"id": "good", "url": "https://x.example/good", "content_text": "fine"}
    posts, problems = parse_feed(json_feed(item, good), where="j.json")
    assert [p.id for p in posts] == ["good"]
    assert len(problems) == 1
    assert problems[0].where == "j.json, item 1"
    assert reason in problems[0].reason


def test_json_feed_numeric_id_tags_and_banner() -> None:
    item = {
        "id": 42,
        "url": "posts/42/",
        "content_html": "<p>x</p>",
        "tags": ["  Go  ", 7, None, "", "Go"],
        "banner_image": "/banner.png",
    }
    posts, problems = parse_feed(
        json_feed(item, home_page_url="https://j.example/"), where="j.json"
    )
    assert problems == []
    assert posts[0].id == "42"
    assert posts[0].url == "https://j.example/posts/42/"
    assert posts[0].title == "https://j.example/posts/42/"  # no title: its link
    assert posts[0].categories == ("Go",)
    assert posts[0].cover == "https://j.example/banner.png"


def test_json_feed_with_bom_and_detected_by_content_type() -> None:
    data = "\ufeff".encode() + json_feed({"id": "b", "content_text": "bom"})
    posts, _ = parse_feed(data, where="bom.json")
    assert posts[0].body == "<p>bom</p>"
    posts, _ = parse_feed(b"\n" + data, where="x", content_type="application/feed+json")
    assert posts[0].id == "b"


def test_json_feed_relative_home_page_and_feed_url_as_base() -> None:
    item = {"id": "r", "url": "p/", "content_html": '<img src="i.png">'}
    posts, _ = parse_feed(
        json_feed(item, home_page_url="/blog/"), where="https://j.example/feeds/f.json"
    )
    assert posts[0].url == "https://j.example/blog/p/"
    assert posts[0].body == '<img src="https://j.example/blog/p/i.png">'
    posts, _ = parse_feed(json_feed(item), where="https://j.example/feeds/f.json")
    assert posts[0].url == "https://j.example/feeds/p/"


def test_local_feed_without_site_link_keeps_relative_links() -> None:
    items = (
        "<item><title>l</title><link>posts/l/</link>"
        "<description>&lt;img src='i.png'&gt;</description></item>"
    )
    posts, problems = parse_feed(rss(items, channel_link=""), where="feeds/local.xml")
    assert problems == []
    assert posts[0].url == "posts/l/"
    assert posts[0].body == '<img src="i.png">'


def test_xml_feed_served_as_json_is_still_read_as_xml() -> None:
    posts, _ = parse_feed(fixture_bytes("rss10.rdf"), where="u", content_type="application/json")
    assert len(posts) == 2


# --------------------------------------------------------------------------------------------
# Not a feed


@pytest.mark.parametrize(
    "name", ["not-a-feed.txt", "not-a-feed.html", "broken.json", "not-a-jsonfeed.json"]
)
def test_not_a_feed_is_one_clear_sentence(name: str) -> None:
    where = str(FIXTURES / name)
    with pytest.raises(SourceError) as info:
        parse_feed(fixture_bytes(name), where=where)
    assert_one_sentence(info.value, where)
    assert "feed" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n",
        b"[1, 2, 3]",
        b'{"version": "https://jsonfeed.org/version/1.1"}',
        b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}',
        b"\x00\xff",
        b'{"a": ' * 100_000,  # nested too deeply for the JSON parser
        b"<?xml version='1.0'?><html><body>not a feed</body></html>",
    ],
)
def test_other_non_feeds(data: bytes) -> None:
    with pytest.raises(SourceError) as info:
        parse_feed(data, where="https://x.example/feed")
    assert_one_sentence(info.value, "https://x.example/feed")


def test_bytes_that_name_a_file_are_not_opened(tmp_path: Path) -> None:
    """feedparser opens bytes naming a file: a body of '/etc/passwd' must not read that file."""
    secret = tmp_path / "secret-feed.xml"
    shutil.copy(FIXTURES / "rss20.xml", secret)
    with pytest.raises(SourceError) as info:
        parse_feed(str(secret).encode(), where="https://evil.example/feed")
    assert_one_sentence(info.value, "https://evil.example/feed")


# --------------------------------------------------------------------------------------------
# Sanitising


ALL_FIXTURE_FEEDS = ["rss20.xml", "rss10.rdf", "rss091.xml", "atom.xml", "feed.json"]


@pytest.mark.parametrize("name", ALL_FIXTURE_FEEDS)
def test_fixture_bodies_and_summaries_are_sanitised(name: str) -> None:
    posts, _ = parse_fixture(name)
    assert posts
    for post in posts:
        for html in (post.body, post.summary or ""):
            lowered = html.lower()
            for bad in DANGEROUS:
                assert bad not in lowered, (post.title, bad, html)


def test_fixture_with_payloads_is_sanitised_but_content_kept() -> None:
    softmax = parse_fixture("rss20.xml")[0][0]
    assert "结论：稳定 ✅" in softmax.body  # the text of the styled, onclick paragraph stays
    assert '<code class="language-python">' in softmax.body
    assert '<span class="katex">' in softmax.body
    assert 'alt="曲线图"' in softmax.body
    assert 'src="https://blog.example.com/posts/softmax/x.png"' in softmax.body  # onerror gone
    assert "点我" in softmax.body  # the javascript: link keeps its text, loses its href
    sqlite = parse_fixture("feed.json")[0][0]
    assert "<math><mi>O</mi>" in sqlite.body


@pytest.mark.parametrize(
    ("dirty", "gone", "kept"),
    [
        ("<p>a<script>alert(1)</script>b</p>", "script", "<p>ab</p>"),
        ('<img src="https://x.example/i.png" onerror="alert(1)">', "onerror", "i.png"),
        ('<a href="javascript:alert(1)">t</a>', "javascript", ">t</a>"),
        ('<a href="JaVaScRiPt:alert(1)">t</a>', "alert", ">t</a>"),
        ('<a href="java\tscript:alert(1)">t</a>', "alert", ">t</a>"),
        ('<iframe src="https://evil.example/"></iframe><p>p</p>', "iframe", "<p>p</p>"),
        ('<p style="color:red">s</p>', "style", "<p>s</p>"),
        ("<style>body{display:none}</style><p>s</p>", "display", "<p>s</p>"),
        ('<svg onload="alert(1)"><script>alert(2)</script></svg>x', "alert", "x"),
        ('<form action="https://evil.example"><input name="q"></form>f', "form", "f"),
        ('<a href="data:text/html,<script>alert(1)</script>">d</a>', "data:", ">d</a>"),
        ('<object data="x.swf"></object><embed src="y.swf">o', "swf", "o"),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example">m', "refresh", "m"),
        ('<base href="https://evil.example/"><a href="a">l</a>', "evil", "l</a>"),
        ('<p onmouseover="steal()">h</p>', "onmouseover", "<p>h</p>"),
    ],
)
def test_sanitise_removes(dirty: str, gone: str, kept: str) -> None:
    clean = sanitise(dirty)
    assert gone.lower() not in clean.lower()
    assert kept in clean


def test_sanitise_keeps_safe_markup() -> None:
    html = (
        '<h2 lang="zh">标题</h2><p><strong>粗体</strong> <em>斜体</em> 😀</p>'
        '<pre><code class="language-rust">fn main() {}</code></pre>'
        '<ol start="3"><li>三</li></ol><table><tr><td colspan="2">c</td></tr></table>'
        '<a href="mailto:me@example.com">mail</a><math display="block"><mi>x</mi></math>'
    )
    clean = sanitise(html)
    for piece in (
        '<h2 lang="zh">标题</h2>',
        "<strong>粗体</strong>",
        "😀",
        '<code class="language-rust">fn main() {}</code>',
        '<ol start="3">',
        '<td colspan="2">',
        'href="mailto:me@example.com"',
        '<math display="block"><mi>x</mi></math>',
    ):
        assert piece in clean


def test_sanitise_makes_relative_urls_absolute_only_with_a_web_base() -> None:
    html = (
        '<a href="../a/">a</a><img src="i.png"><a href="#fn1">1</a><a href="//cdn.example/x">x</a>'
    )
    clean = sanitise(html, "https://s.example/blog/post/")
    assert 'href="https://s.example/blog/a/"' in clean
    assert 'src="https://s.example/blog/post/i.png"' in clean
    assert 'href="https://s.example/blog/post/#fn1"' in clean
    assert 'href="https://cdn.example/x"' in clean
    assert 'rel="noopener noreferrer"' in clean
    for base in ("", "feeds/local.xml", "file:///tmp/feed.xml", "https://[broken"):
        assert 'src="i.png"' in sanitise(html, base)


# --------------------------------------------------------------------------------------------
# Excerpts of feed entries (DESIGN.md section 3 applied to sanitised HTML)


def excerpt(post: Post, *, summary: bool = True, length: int = 350, locale: str = "zh") -> str:
    return excerpt_of(
        post.body,
        summary=post.summary if summary else None,
        body_format="html",
        length=length,
        locale=locale,
    )


def test_excerpt_of_rss_entry_labels_code_and_math_drops_images_keeps_links() -> None:
    softmax = parse_fixture("rss20.xml")[0][0]
    assert excerpt(softmax, summary=False) == (
        "直接计算 [Math] 会溢出 🔥。先看 LogSumExp 技巧： [代码] 推导见 [Math] 一节。 "
        "结论：稳定 ✅ 点我"
    )
    assert "曲线图" not in excerpt(softmax, summary=False)  # image alt text dropped
    assert "alert" not in excerpt(softmax, summary=False)
    assert "def softmax" not in excerpt(softmax, summary=False)


def test_excerpt_of_rss_entry_prefers_the_feed_summary() -> None:
    softmax = parse_fixture("rss20.xml")[0][0]
    assert excerpt(softmax) == "计算 exp(x) 时容易溢出 🔥，本文给出稳定的写法..."


def test_excerpt_of_atom_entry_display_and_inline_math() -> None:
    attention = parse_fixture("atom.xml")[0][0]
    assert excerpt(attention, summary=False) == (
        "自注意力对每一对 token 计算分数，复杂度为 [Math]。 [代码] 整体公式： [公式] "
        "见 原论文 👀 End."
    )
    assert excerpt(attention) == "为什么自注意力是 [Math] 的？..."
    assert excerpt(attention, summary=False, locale="en").count("[math]") == 1
    assert "[formula]" in excerpt(attention, summary=False, locale="en")
    assert "[code]" in excerpt(attention, summary=False, locale="en")


def test_excerpt_of_json_entry_with_mathml() -> None:
    sqlite = parse_fixture("feed.json")[0][0]
    assert (
        excerpt(sqlite, summary=False)
        == "用 WITH RECURSIVE 遍历树 🌲。 [代码] 代价约为 [Math]，参见 索引。 x"
    )


def test_excerpt_cut_never_splits_an_emoji_sequence() -> None:
    emoji = by_title(parse_fixture("rss20.xml")[0])["Emoji 👩\u200d💻 & ZWJ 🇨🇳"]
    assert excerpt(emoji, length=4) == "家庭 👨\u200d👩\u200d👧\u200d👦..."
    assert excerpt(emoji, length=8) == "家庭 👨\u200d👩\u200d👧\u200d👦 与旗帜..."
    assert excerpt(emoji, length=10) == "家庭 👨\u200d👩\u200d👧\u200d👦 与旗帜 🇯🇵..."


# --------------------------------------------------------------------------------------------
# read_feed from files


def test_read_feed_relative_path_and_file_url(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    shutil.copy(FIXTURES / "atom.xml", tmp_path / "feeds" / "atom.xml")
    result = SourceResult(posts=[Post(id="earlier", title="t", url="u", date=None, body="")])
    read_feed(
        "feeds/atom.xml", root=tmp_path, cache_dir=tmp_path / "cache", timeout=1, result=result
    )
    assert [p.id for p in result.posts][:2] == [
        "earlier",
        "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
    ]
    assert len(result.posts) == 4  # appended to what was there
    assert len(result.problems) == 1
    assert result.problems[0].where == f"{tmp_path / 'feeds' / 'atom.xml'}, entry 3"
    assert result.failures == []
    assert not (tmp_path / "cache").exists()  # files are not cached

    other = SourceResult()
    read_feed(
        f"file://{FIXTURES / 'feed.json'}",
        root=tmp_path,
        cache_dir=tmp_path,
        timeout=1,
        result=other,
    )
    assert other.posts[0].id == "sqlite-tricks"
    assert other.posts[0].source == str(FIXTURES / "feed.json")


@pytest.mark.parametrize("name", ["missing.xml", "."])
def test_read_feed_unreadable_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(SourceError) as info:
        read_feed(name, root=tmp_path, cache_dir=tmp_path, timeout=1, result=SourceResult())
    assert_one_sentence(info.value, str(tmp_path / name))
    assert "cannot read the feed" in str(info.value)


def test_read_feed_not_a_feed_names_the_file(tmp_path: Path) -> None:
    result = SourceResult()
    with pytest.raises(SourceError) as info:
        read_feed(
            str(FIXTURES / "not-a-feed.txt"),
            root=tmp_path,
            cache_dir=tmp_path,
            timeout=1,
            result=result,
        )
    assert_one_sentence(info.value, str(FIXTURES / "not-a-feed.txt"))
    assert result.posts == []


# --------------------------------------------------------------------------------------------
# HTTP: a real server on 127.0.0.1


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: datetime | None = None
    status: int = 200
    delay: float = 0.0  # seconds to wait before answering (ended early when the test ends)
    short_by: int = 0  # announce this many more bytes than are sent, then hang up


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int
    body_bytes: int


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FeedHandler)
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def statuses(self, path: str) -> list[int]:
        with self.lock:
            return [s.status for s in self.seen if s.path == path]


class FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, FeedServer)
        route = server.routes.get(self.path)
        status, body = self._answer(route)
        with server.lock:
            server.seen.append(Seen(self.path, dict(self.headers.items()), status, len(body)))
        if route is not None and route.delay:
            server.release.wait(route.delay)
        try:
            self.send_response(status)
            if route is not None:
                self.send_header("Content-Type", route.content_type)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header(
                        "Last-Modified", format_datetime(route.last_modified, usegmt=True)
                    )
            extra = route.short_by if route is not None else 0
            self.send_header("Content-Length", str(len(body) + extra))
            if extra:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the timeout test): nothing to answer

    def _answer(self, route: Route | None) -> tuple[int, bytes]:
        if route is None:
            return 404, b"not found"
        if route.status != 200:
            return route.status, b"server error"
        if_none_match = self.headers.get("If-None-Match")
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_none_match is not None:  # it wins over If-Modified-Since (RFC 9110, 13.2.2)
            tags = [t.strip() for t in if_none_match.split(",")]
            if route.etag and (route.etag in tags or "*" in tags):
                return 304, b""
        elif (
            if_modified_since
            and route.last_modified
            and route.last_modified <= parsedate_to_datetime(if_modified_since)
        ):
            return 304, b""
        return 200, route.body


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback only: never route a test request through a proxy from the environment."""
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    httpd = FeedServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield httpd
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


LAST_MODIFIED = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)


def test_second_fetch_is_conditional_gets_304_and_reuses_the_cache(
    server: FeedServer, tmp_path: Path
) -> None:
    body = fixture_bytes("rss20.xml")
    server.routes["/rss.xml"] = Route(body, etag='"v1"', last_modified=LAST_MODIFIED)
    url = server.url("/rss.xml")
    cache = tmp_path / "cache"

    first = fetch(url, cache_dir=cache, timeout=5)
    assert first.body == body
    assert first.from_cache is False
    assert first.content_type == "application/rss+xml; charset=utf-8"

    second = fetch(url, cache_dir=cache, timeout=5)
    assert second.body == body
    assert second.from_cache is True
    assert second.content_type == first.content_type

    assert server.statuses("/rss.xml") == [200, 304]
    first_seen, second_seen = server.seen
    assert "If-None-Match" not in first_seen.headers
    assert "If-Modified-Since" not in first_seen.headers
    assert second_seen.headers["If-None-Match"] == '"v1"'
    assert parsedate_to_datetime(second_seen.headers["If-Modified-Since"]) == LAST_MODIFIED
    assert second_seen.body_bytes == 0  # nothing was downloaded again
    assert first_seen.headers["User-Agent"] == USER_AGENT


def test_read_feed_twice_over_http_gives_the_same_posts(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/feed.json"] = Route(
        fixture_bytes("feed.json"), content_type="application/feed+json", etag='W/"j1"'
    )
    url = server.url("/feed.json")
    first, second = SourceResult(), SourceResult()
    read_feed(url, root=tmp_path, cache_dir=tmp_path / "c", timeout=5, result=first)
    read_feed(url, root=tmp_path, cache_dir=tmp_path / "c", timeout=5, result=second)
    assert server.statuses("/feed.json") == [200, 304]
    assert server.seen[1].headers["If-None-Match"] == 'W/"j1"'
    assert first.posts == second.posts
    assert [p.id for p in first.posts] == [
        "sqlite-tricks",
        "https://json.example.com/posts/packaging/",
        "no-date",
    ]
    assert first.posts[0].source == url
    assert [p.where for p in second.problems] == [
        f"{url}, item 4",
        f"{url}, item 5",
        f"{url}, item 6",
    ]


def test_last_modified_only(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/atom.xml"] = Route(fixture_bytes("atom.xml"), last_modified=LAST_MODIFIED)
    url = server.url("/atom.xml")
    fetch(url, cache_dir=tmp_path, timeout=5)
    again = fetch(url, cache_dir=tmp_path, timeout=5)
    assert again.from_cache is True
    assert server.statuses("/atom.xml") == [200, 304]
    assert "If-None-Match" not in server.seen[1].headers
    assert "If-Modified-Since" in server.seen[1].headers


def test_changed_feed_is_downloaded_again_and_then_cached(
    server: FeedServer, tmp_path: Path
) -> None:
    url = server.url("/rss.xml")
    server.routes["/rss.xml"] = Route(fixture_bytes("rss091.xml"), etag='"old"')
    assert fetch(url, cache_dir=tmp_path, timeout=5).body == fixture_bytes("rss091.xml")
    server.routes["/rss.xml"] = Route(fixture_bytes("rss10.rdf"), etag='"new"')
    changed = fetch(url, cache_dir=tmp_path, timeout=5)
    assert changed.from_cache is False
    assert changed.body == fixture_bytes("rss10.rdf")
    cached = fetch(url, cache_dir=tmp_path, timeout=5)
    assert cached.from_cache is True
    assert cached.body == fixture_bytes("rss10.rdf")
    assert server.statuses("/rss.xml") == [200, 200, 304]
    assert [s.headers.get("If-None-Match") for s in server.seen] == [None, '"old"', '"new"']


def test_no_validators_means_a_plain_download_each_time(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/plain.xml"] = Route(fixture_bytes("rss10.rdf"))
    url = server.url("/plain.xml")
    assert fetch(url, cache_dir=tmp_path, timeout=5).from_cache is False
    assert fetch(url, cache_dir=tmp_path, timeout=5).from_cache is False
    assert server.statuses("/plain.xml") == [200, 200]
    assert all("If-None-Match" not in s.headers for s in server.seen)


def test_separate_urls_have_separate_caches(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/a.xml"] = Route(fixture_bytes("rss10.rdf"), etag='"same"')
    server.routes["/b.xml"] = Route(fixture_bytes("atom.xml"), etag='"same"')
    assert fetch(server.url("/a.xml"), cache_dir=tmp_path, timeout=5).body == fixture_bytes(
        "rss10.rdf"
    )
    b = fetch(server.url("/b.xml"), cache_dir=tmp_path, timeout=5)
    assert b.body == fixture_bytes("atom.xml")
    assert b.from_cache is False


@pytest.mark.parametrize("damage", ["not json", "[1, 2]", '{"etag": 5}'])
def test_damaged_cache_means_a_full_download(
    server: FeedServer, tmp_path: Path, damage: str
) -> None:
    server.routes["/rss.xml"] = Route(fixture_bytes("rss10.rdf"), etag='"v1"')
    url = server.url("/rss.xml")
    fetch(url, cache_dir=tmp_path, timeout=5)
    (meta,) = tmp_path.glob("*.json")
    meta.write_text(damage, encoding="utf-8")
    again = fetch(url, cache_dir=tmp_path, timeout=5)
    assert again.from_cache is False
    assert again.body == fixture_bytes("rss10.rdf")
    assert server.statuses("/rss.xml") == [200, 200]


def test_unwritable_cache_only_costs_a_download(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/rss.xml"] = Route(fixture_bytes("rss10.rdf"), etag='"v1"')
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be", encoding="utf-8")
    for _ in range(2):
        download = fetch(server.url("/rss.xml"), cache_dir=blocker / "feeds", timeout=5)
        assert download.body == fixture_bytes("rss10.rdf")
    assert server.statuses("/rss.xml") == [200, 200]


def test_timeout_gives_source_error(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/slow.xml"] = Route(fixture_bytes("rss10.rdf"), delay=10)
    url = server.url("/slow.xml")
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        fetch(url, cache_dir=tmp_path, timeout=0.5)
    assert time.monotonic() - started < 5
    assert_one_sentence(info.value, url)
    assert "timed out" in str(info.value)
    assert server.statuses("/slow.xml") == [200]  # the request did reach the server


def test_timeout_through_read_feed(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/slow.xml"] = Route(fixture_bytes("rss10.rdf"), delay=10)
    result = SourceResult()
    with pytest.raises(SourceError):
        read_feed(
            server.url("/slow.xml"), root=tmp_path, cache_dir=tmp_path, timeout=0.5, result=result
        )
    assert result.posts == []


@pytest.mark.parametrize(
    ("status", "words"), [(404, "404 Not Found"), (500, "500 Internal Server Error")]
)
def test_http_error_names_the_url(
    server: FeedServer, tmp_path: Path, status: int, words: str
) -> None:
    if status != 404:
        server.routes["/feed.xml"] = Route(b"", status=status)
    url = server.url("/feed.xml")
    with pytest.raises(SourceError) as info:
        fetch(url, cache_dir=tmp_path, timeout=5)
    assert_one_sentence(info.value, url)
    assert words in str(info.value)
    assert not list(tmp_path.iterdir())  # an error page is never cached


def test_server_error_after_a_cached_download_is_still_an_error(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/feed.xml"] = Route(fixture_bytes("rss10.rdf"), etag='"v1"')
    url = server.url("/feed.xml")
    fetch(url, cache_dir=tmp_path, timeout=5)
    server.routes["/feed.xml"] = Route(b"", status=503)
    with pytest.raises(SourceError) as info:
        fetch(url, cache_dir=tmp_path, timeout=5)
    assert "503" in str(info.value)


def test_not_a_feed_over_http_names_the_url(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/page"] = Route(fixture_bytes("not-a-feed.html"), content_type="text/html")
    url = server.url("/page")
    with pytest.raises(SourceError) as info:
        read_feed(url, root=tmp_path, cache_dir=tmp_path, timeout=5, result=SourceResult())
    assert_one_sentence(info.value, url)
    assert "not an RSS, Atom or JSON feed" in str(info.value)


def test_truncated_download_is_an_error_and_not_cached(server: FeedServer, tmp_path: Path) -> None:
    server.routes["/cut.xml"] = Route(fixture_bytes("rss20.xml"), etag='"v1"', short_by=500)
    url = server.url("/cut.xml")
    with pytest.raises(SourceError) as info:
        fetch(url, cache_dir=tmp_path, timeout=5)
    assert_one_sentence(info.value, url)
    assert not list(tmp_path.glob("*.body"))


def test_relative_links_over_http_resolve_against_the_feed_url(
    server: FeedServer, tmp_path: Path
) -> None:
    items = (
        "<item><title>r</title><link>posts/r/</link>"
        "<enclosure url='c.png' type='image/png' length='1'/></item>"
    )
    server.routes["/blog/feed.xml"] = Route(rss(items, channel_link=""))
    result = SourceResult()
    read_feed(
        server.url("/blog/feed.xml"), root=tmp_path, cache_dir=tmp_path, timeout=5, result=result
    )
    assert result.posts[0].url == server.url("/blog/posts/r/")
    assert result.posts[0].cover == server.url("/blog/posts/r/c.png")


def test_not_http_at_all_gives_source_error(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]

    def answer_garbage() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/feed.xml"
    try:
        with pytest.raises(SourceError) as info:
            fetch(url, cache_dir=tmp_path, timeout=5)
    finally:
        thread.join(timeout=5)
        listener.close()
    assert_one_sentence(info.value, url)


def test_connection_refused_gives_source_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed.xml"  # nothing listens there any more
    with pytest.raises(SourceError) as info:
        fetch(url, cache_dir=tmp_path, timeout=2)
    assert_one_sentence(info.value, url)
    assert "cannot download the feed" in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:notaport/feed.xml", "http://[::1/feed.xml"])
def test_unusable_url_gives_source_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(SourceError) as info:
        read_feed(url, root=tmp_path, cache_dir=tmp_path, timeout=1, result=SourceResult())
    assert_one_sentence(info.value, url)
