"""The preview web app in-process: the next digest, its email, locales, the archive, read-only."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from markupsafe import escape

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import issue_settings, render_settings
from digest.issues.send import gather, next_edition
from digest.models import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, Edition
from digest.render.edition import render
from digest.web.archive import ArchivedIssue, MemoryArchive, Pagination
from digest.web.preview import create_preview_app
from tests.support import paths

with warnings.catch_warnings():
    # Starlette asks for `httpx2` in its test client; the installed httpx works the same here.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

ROOT = paths.ROOT
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def fixed_clock() -> datetime:
    return NOW


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "config.yaml", environ={})


@pytest.fixture(scope="module")
def edition(config: Config) -> Edition:
    return next_edition(gather(issue_settings(config), now=NOW), issue_settings(config), NOW)


def fake_issues(count: int = 25) -> list[ArchivedIssue]:
    start = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    return [
        ArchivedIssue(
            key=f"2026-W{n:02d}",
            subject=f"Issue number {n}",
            created=start + timedelta(weeks=n - 1),
            html=(
                f"<html><head></head><body><p>{GREETING}</p><p>Body of issue {n}</p>"
                f'<a href="{UNSUBSCRIBE_URL}">u</a> <a href="{PREFERENCES_URL}">p</a></body></html>'
            ),
            text=f"{GREETING}\nText of issue {n}\nUnsubscribe: {UNSUBSCRIBE_URL}\n",
        )
        for n in range(1, count + 1)
    ]


@pytest.fixture(scope="module")
def client(config: Config) -> TestClient:
    app = create_preview_app(config, MemoryArchive(fake_issues()), clock=fixed_clock)
    return TestClient(app)


def write_config(tmp_path: Path, extra: str = "") -> Path:
    """A small blog in tmp_path (like tests/cli/test_cli.py), its posts folder empty."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "site:\n  title: T\n  base_url: https://b.example.com\n  postal_address: Road 1\n"
        "sources:\n  - type: markdown\n    path: posts\n"
        "digest:\n  lookback_days: 0\n" + extra,
        encoding="utf-8",
    )
    (tmp_path / "posts").mkdir(exist_ok=True)
    return config


def write_post(tmp_path: Path, name: str, title: str, body: str = "正文") -> None:
    (tmp_path / "posts" / f"2026-11-20-{name}.md").write_text(
        f"---\ntitle: {title}\n---\n{body}\n", encoding="utf-8"
    )


def iframe(page: str) -> dict[str, str]:
    """The attributes of the page's one iframe."""
    tags = re.findall(r"<iframe\b([^>]*)>", page)
    assert len(tags) == 1, tags
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tags[0]))


def pre_text(page: str) -> str:
    match = re.search(r'<pre class="text">(.*?)</pre>', page, re.S)
    assert match is not None
    return match.group(1)


def test_preview_shows_subject_preheader_text_part_and_every_new_post(
    client: TestClient, config: Config, edition: Edition
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    rendered = render(render_settings(config), edition, "zh")
    assert '<html lang="zh-CN">' in page
    assert f'<dd class="subject">{escape(rendered.subject)}</dd>' in page
    assert f'<dd class="preheader">{escape(rendered.preheader)}</dd>' in page
    text = pre_text(page)
    assert "x-digest:" not in page
    expected = rendered.text.replace(GREETING, rendered.greeting_anonymous)
    expected = expected.replace(UNSUBSCRIBE_URL, "#preview-unsubscribe")
    expected = expected.replace(PREFERENCES_URL, "#preview-preferences")
    assert text == escape(expected)
    assert "退订: #preview-unsubscribe" in text
    # every new post, the ones beyond max_posts marked as overflow
    assert len(edition.posts) > config.digest.max_posts
    for post in edition.posts:
        assert escape(post.title) in page, post.title
        assert f'href="{escape(post.url)}"' in page
    items = re.findall(r'<li class="post( overflow)?">', page)
    assert len(items) == len(edition.posts)
    overflow = len(edition.posts) - config.digest.max_posts
    assert [bool(i) for i in items] == [False] * config.digest.max_posts + [True] * overflow
    assert page.count('<span class="badge">超出</span>') == overflow
    assert "Structured Logging in Python" in page and "[Math]" in page  # excerpts, zh labels


def test_email_frame_is_sandboxed_without_scripts(client: TestClient) -> None:
    page = client.get("/").text
    frame = iframe(page)
    assert "sandbox" in frame
    assert "allow-scripts" not in frame["sandbox"]
    assert "allow-same-origin" not in frame["sandbox"]
    assert frame["src"] == "/email.html?locale=zh"
    assert frame["width"] == "1024"
    assert "script" not in client.get("/").headers["content-security-policy"]


def test_email_route_has_no_placeholder_and_no_real_link(
    client: TestClient, config: Config, edition: Edition
) -> None:
    response = client.get("/email.html?locale=zh")
    assert response.status_code == 200
    html = response.text
    assert "x-digest:" not in html
    assert 'href="#preview-unsubscribe"' in html and 'href="#preview-preferences"' in html
    rendered = render(render_settings(config), edition, "zh")
    assert rendered.greeting_anonymous in html and "%(name)s" not in html
    assert "/u/" not in html and "unsubscribe" not in html.replace("#preview-unsubscribe", "")
    without_base = html.replace('<base target="_blank">', "", 1)
    assert without_base == (
        rendered.html.replace(UNSUBSCRIBE_URL, "#preview-unsubscribe")
        .replace(PREFERENCES_URL, "#preview-preferences")
        .replace(GREETING, rendered.greeting_anonymous)
    )
    assert response.headers["content-security-policy"].startswith("sandbox ")
    assert "allow-scripts" not in response.headers["content-security-policy"]


def test_locale_switch(client: TestClient) -> None:
    en = client.get("/?locale=en").text
    assert '<html lang="en">' in en
    # the frame is English; the labels follow the posts' language (excerpt.labels: site.locale)
    assert "Next digest" in en and "[Math]" in en and "[math]" not in en
    assert "In this issue:" in en
    assert iframe(en)["src"] == "/email.html?locale=en"
    email = client.get("/email.html?locale=en").text
    assert "LATEST UPDATES" in email and "Hi," in email and "Read more" in email
    zh = client.get("/?locale=zh").text
    assert "下一期" in zh and "本期：" in zh
    assert "最新文章" in client.get("/email.html?locale=zh").text
    assert '<html lang="zh-CN">' in client.get("/?locale=fr").text  # unknown: the site's
    # the language links keep the other parameters
    assert 'href="?width=375&amp;locale=en"' in client.get("/?width=375").text


def test_width_switch_links(client: TestClient) -> None:
    phone = client.get("/?width=375").text
    assert iframe(phone)["width"] == "375"
    assert re.search(r'href="\?width=1024" class="width-desktop">', phone)
    assert re.search(r'class="width-phone" aria-current="true"', phone)
    assert iframe(client.get("/?width=320").text)["width"] == "320"
    for bad in ("99999", "abc", "-5", "10"):
        assert iframe(client.get(f"/?width={bad}").text)["width"] == "1024"


def test_nothing_new_says_so(tmp_path: Path) -> None:
    client = TestClient(create_preview_app(load_config(write_config(tmp_path), environ={})))
    response = client.get("/")
    assert response.status_code == 200
    assert "自上一期以来没有新文章" in response.text
    assert "<iframe" not in response.text
    assert "Nothing new since the last digest" in client.get("/?locale=en").text
    email = client.get("/email.html?locale=en")
    assert email.status_code == 404
    assert "there is no email to show" in email.text


def test_source_failures_are_shown(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "    path: posts\n", "    path: posts\n  - type: markdown\n    path: missing\n"
        ),
        encoding="utf-8",
    )
    write_post(tmp_path, "one", "Still here")
    config = load_config(path, environ={})
    failures = gather(issue_settings(config)).source.failures
    assert len(failures) == 1
    page = TestClient(create_preview_app(config)).get("/?locale=en")
    assert page.status_code == 200
    assert "Some sources could not be read:" in page.text
    assert f"<li>{escape(failures[0])}</li>" in page.text
    assert "Still here" in page.text


def test_every_request_reads_and_renders_again(tmp_path: Path) -> None:
    path = write_config(tmp_path, extra="templates_dir: mine\n")
    client = TestClient(create_preview_app(load_config(path, environ={})))
    write_post(tmp_path, "first", "First post")
    assert "First post" in client.get("/").text
    write_post(tmp_path, "second", "Second post")
    assert "Second post" in client.get("/").text
    assert "MINE" not in client.get("/email.html").text
    (tmp_path / "mine" / "email").mkdir(parents=True)
    (tmp_path / "mine" / "email" / "post.mjml.j2").write_text(
        "<mj-section><mj-column><mj-text>MINE {{ item.title }}</mj-text></mj-column></mj-section>",
        encoding="utf-8",
    )
    assert "MINE First post" in client.get("/email.html").text


def test_template_error_is_shown_not_a_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, extra="templates_dir: mine\n")
    write_post(tmp_path, "first", "First post")
    (tmp_path / "mine" / "email").mkdir(parents=True)
    (tmp_path / "mine" / "email" / "post.mjml.j2").write_text("{{ item.nope }}", encoding="utf-8")
    client = TestClient(create_preview_app(load_config(path, environ={})))
    page = client.get("/?locale=en")
    assert page.status_code == 500
    assert "The email templates failed:" in page.text and "nope" in page.text
    assert "First post" in page.text  # the posts are still listed
    assert client.get("/email.html").status_code == 500


@pytest.mark.parametrize("path", ["/", "/email.html", "/issues", "/issues/2026-W07"])
def test_only_get_and_head(client: TestClient, path: str) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}
    head = client.head(path)
    assert head.status_code == 200 and head.content == b""


def test_archive_list_paginates(client: TestClient) -> None:
    first = client.get("/issues?locale=en")
    assert first.status_code == 200
    keys = re.findall(r'<a href="/issues/(2026-W\d\d)">', first.text)
    assert keys == [f"2026-W{n:02d}" for n in range(25, 15, -1)]  # newest first, 10 a page
    assert 'rel="prev"' not in first.text
    assert 'href="/issues?page=2&amp;locale=en" rel="next"' in first.text
    assert 'href="/issues?page=3&amp;locale=en"' in first.text
    assert "Page 1 of 3" in first.text
    second = client.get("/issues?page=2&locale=en").text
    assert re.findall(r'<a href="/issues/(2026-W\d\d)">', second) == [
        f"2026-W{n:02d}" for n in range(15, 5, -1)
    ]
    assert 'href="/issues?page=1&amp;locale=en" rel="prev"' in second
    assert 'href="/issues?page=3&amp;locale=en" rel="next"' in second
    assert 'href="/issues?page=2&amp;locale=en" aria-current="page"' in second
    third = client.get("/issues?page=3").text
    assert re.findall(r'<a href="/issues/(2026-W\d\d)">', third) == [
        f"2026-W{n:02d}" for n in range(5, 0, -1)
    ]
    assert 'rel="next"' not in third and "第 3 页，共 3 页" in third
    assert "Issue number 1" in third and "2026-01-05 09:00" in third  # site time zone


@pytest.mark.parametrize(("page", "status"), [("4", 404), ("0", 404), ("x", 400), ("-1", 400)])
def test_archive_pages_that_do_not_exist(client: TestClient, page: str, status: int) -> None:
    response = client.get(f"/issues?page={page}&locale=en")
    assert response.status_code == status
    assert "Not available" in response.text


def test_empty_archive_by_default(config: Config) -> None:
    client = TestClient(create_preview_app(config, clock=fixed_clock))
    page = client.get("/issues?locale=en")
    assert page.status_code == 200
    assert "No issues have been sent yet." in page.text
    assert client.get("/issues/2026-W47").status_code == 404


def test_issue_page(client: TestClient) -> None:
    response = client.get("/issues/2026-W07?locale=en")
    assert response.status_code == 200
    page = response.text
    assert '<h1 class="subject">Issue number 7</h1>' in page
    assert iframe(page)["src"] == "/issues/2026-W07/email.html"
    assert "allow-scripts" not in iframe(page)["sandbox"]
    text = pre_text(page)
    assert "Text of issue 7" in text and "x-digest:" not in text
    assert "你好：" in text  # the site's anonymous greeting
    email = client.get("/issues/2026-W07/email.html")
    assert email.status_code == 200
    assert "Body of issue 7" in email.text and "x-digest:" not in email.text
    assert 'href="#preview-unsubscribe"' in email.text
    assert email.headers["content-security-policy"].startswith("sandbox ")


@pytest.mark.parametrize("path", ["/issues/2026-W99", "/issues/2026-W99/email.html", "/nope"])
def test_unknown_issue_is_404(client: TestClient, path: str) -> None:
    response = client.get(path + "?locale=en")
    assert response.status_code == 404
    assert "There is no such page here." in response.text


def test_archived_subject_is_escaped(config: Config) -> None:
    hostile = ArchivedIssue(
        key="2026-W01",
        subject="<script>alert(1)</script>",
        created=NOW,
        html="<p>x</p>",
        text="<b>t</b>",
    )
    client = TestClient(create_preview_app(config, MemoryArchive([hostile])))
    for path in ("/issues", "/issues/2026-W01"):
        page = client.get(path).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;t&lt;/b&gt;" in client.get("/issues/2026-W01").text


def test_pages_set_protective_headers(client: TestClient) -> None:
    headers = client.get("/").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'self'" in client.get("/email.html").headers["content-security-policy"]


@pytest.mark.parametrize(
    ("number", "pages", "expected"),
    [
        (1, 1, [1]),
        (1, 3, [1, 2, 3]),
        (10, 20, [1, None, 8, 9, 10, 11, 12, None, 20]),
        (2, 9, [1, 2, 3, 4, None, 9]),
    ],
)
def test_pagination_numbers(number: int, pages: int, expected: list[int | None]) -> None:
    assert Pagination(number=number, size=10, total=pages * 10).numbers == expected


def test_memory_archive_pages() -> None:
    archive = MemoryArchive(reversed(fake_issues()))
    assert archive.count() == 25
    assert [i.key for i in archive.page(3, 10)] == [f"2026-W{n:02d}" for n in range(5, 0, -1)]
    assert archive.page(4, 10) == [] and archive.page(0, 10) == []
    found = archive.get("2026-W03")
    assert found is not None and found.subject == "Issue number 3"
    assert archive.get("nope") is None
    assert not Pagination(number=2, size=10, total=0).exists()
    assert Pagination(number=1, size=10, total=0).exists()


def test_cli_preview_serves_the_app_on_loopback_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn
    from click.testing import CliRunner
    from starlette.applications import Starlette

    from digest.cli import main

    calls: list[tuple[object, dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    config = str(ROOT / "config.yaml")
    result = CliRunner().invoke(main, ["--config", config, "preview"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8000/" in result.output
    [(app, kwargs)] = calls
    assert isinstance(app, Starlette)
    assert kwargs == {"host": "127.0.0.1", "port": 8000, "log_level": "info"}
    result = CliRunner().invoke(main, ["--config", config, "preview", "--help"])
    assert result.exit_code == 0 and "--port" in result.output
    CliRunner().invoke(main, ["--config", config, "preview", "--host", "0.0.0.0", "--port", "9"])
    assert calls[-1][1]["host"] == "0.0.0.0" and calls[-1][1]["port"] == 9


def test_a_loopback_preview_answers_only_to_loopback_names(config: Config) -> None:
    from digest.web.preview import LOOPBACK_NAMES

    app = create_preview_app(config, allowed_hosts=LOOPBACK_NAMES)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/issues").status_code == 200
        assert client.get("/issues", headers={"Host": "evil.example:8000"}).status_code == 400
