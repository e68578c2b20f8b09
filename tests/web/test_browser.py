"""The preview in a real browser (Debian's Chromium through Playwright), served by uvicorn.

Checks what only a browser can: no horizontal scrolling at phone widths, links as a reader
would follow them, the width switch when clicked. Screenshots go to tests/output/ for people.
Only loopback is reachable: every other request the pages make (post images) is aborted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import (
    Browser,
    Frame,
    Page,
)

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import issue_settings, render_settings
from digest.issues.send import gather, next_edition
from digest.web.preview import create_preview_app
from tests.support import paths
from tests.support.browser import loopback_page, serving

ROOT = paths.ROOT
OUTPUT = paths.TESTS / "output"
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
LONG_WORD = "a" * 200
LONG_URL = "https://example.com/" + "x" * 130
DIGESTS = ["demo", "long"]


def fixed_clock() -> datetime:
    return NOW


@pytest.fixture(scope="module")
def demo_config() -> Config:
    return load_config(ROOT / "config.yaml", environ={})


@pytest.fixture(scope="module")
def long_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A blog whose one post has a 200-letter word and a 150-character URL everywhere."""
    folder = tmp_path_factory.mktemp("long")
    (folder / "posts").mkdir()
    (folder / "config.yaml").write_text(
        "site:\n  title: Long Words\n  base_url: https://b.example.com\n  postal_address: Road 1\n"
        "sources:\n  - type: markdown\n    path: posts\ndigest:\n  lookback_days: 0\n",
        encoding="utf-8",
    )
    (folder / "posts" / "2026-11-20-long.md").write_text(
        f"---\ntitle: {LONG_WORD} {LONG_URL}\ncategories: [{'c' * 120}]\n---\n"
        f"{LONG_WORD} {LONG_URL} 一段很长的中文{'长' * 300}\n",
        encoding="utf-8",
    )
    return load_config(folder / "config.yaml", environ={})


@pytest.fixture(scope="module")
def servers(demo_config: Config, long_config: Config) -> Iterator[dict[str, str]]:
    with (
        serving(create_preview_app(demo_config, clock=fixed_clock)) as demo,
        serving(create_preview_app(long_config, clock=fixed_clock)) as long,
    ):
        yield {"demo": demo, "long": long}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with loopback_page(
        browser, lambda url: url.startswith("https://blog.example.com/images/")
    ) as fresh:
        yield fresh


def email_frame(page: Page) -> Frame:
    handle = page.wait_for_selector("iframe#email-frame")
    assert handle is not None
    frame = handle.content_frame()
    assert frame is not None
    frame.wait_for_load_state("load")
    return frame


def widths(target: Page | Frame) -> tuple[int, int]:
    """(scrollWidth of the document, width of the viewport) where the email is shown."""
    scroll, inner = target.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return int(scroll), int(inner)


def screenshot(target: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    target.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def test_preview_loads(page: Page, servers: dict[str, str]) -> None:
    response = page.goto(servers["demo"] + "/")
    assert response is not None and response.status == 200
    assert page.title() == "下一期 · Incoming Transmission"
    assert page.locator("dd.subject").inner_text() == "Incoming Transmission · 2026年11月22日"
    assert page.locator("dd.preheader").inner_text().startswith("本期：")
    assert "阅读全文: https://blog.example.com/" in page.locator("pre.text").inner_text()
    frame = email_frame(page)
    assert frame.locator(".masthead-title").inner_text().strip() == "INCOMING TRANSMISSION"
    assert frame.get_by_text("你好：").count() == 1
    assert page.locator("iframe#email-frame").get_attribute("sandbox") == (
        "allow-popups allow-popups-to-escape-sandbox"
    )


@pytest.mark.parametrize("digest", DIGESTS)
@pytest.mark.parametrize("width", [320, 375, 1024])
def test_email_in_the_frame_does_not_scroll_sideways(
    page: Page, servers: dict[str, str], digest: str, width: int
) -> None:
    page.goto(f"{servers[digest]}/?width={width}")
    frame = email_frame(page)
    scroll, inner = widths(frame)
    assert inner == width  # the frame is exactly as wide as asked
    assert scroll <= inner, f"{digest} at {width}px scrolls sideways ({scroll}px)"
    outer_scroll, outer_inner = widths(page)
    assert outer_scroll <= outer_inner
    screenshot(page, f"preview-{digest}-{width}.png")


@pytest.mark.parametrize("digest", DIGESTS)
@pytest.mark.parametrize("width", [320, 375, 1024])
def test_email_opened_directly(
    page: Page, servers: dict[str, str], digest: str, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    response = page.goto(f"{servers[digest]}/email.html")
    assert response is not None and response.status == 200
    scroll, inner = widths(page)
    assert inner == width
    assert scroll <= inner, f"{digest} opened at {width}px scrolls sideways ({scroll}px)"
    screenshot(page, f"email-{digest}-{width}.png")


@pytest.mark.parametrize("digest", DIGESTS)
def test_preview_page_at_320_does_not_scroll_sideways(
    page: Page, servers: dict[str, str], digest: str
) -> None:
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto(f"{servers[digest]}/?width=375")
    scroll, inner = widths(page)
    assert scroll <= inner
    # the 375px frame scrolls inside its own box instead
    box = page.locator("iframe#email-frame").bounding_box()
    assert box is not None and round(box["width"]) == 377  # 375 + a 1px border each side


def test_long_words_wrap_inside_the_email(page: Page, servers: dict[str, str]) -> None:
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto(servers["long"] + "/email.html")
    title = page.locator("a.title-link")
    assert LONG_WORD in title.inner_text().replace("\n", "")
    box = title.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320
    assert box["height"] > 100  # the word broke over several lines


def test_every_post_link_is_present_and_absolute(
    page: Page, servers: dict[str, str], demo_config: Config
) -> None:
    edition = next_edition(
        gather(issue_settings(demo_config), now=NOW), issue_settings(demo_config), NOW
    )
    expected = [post.url for post in edition.posts[: demo_config.digest.max_posts]]
    page.goto(servers["demo"] + "/")
    frame = email_frame(page)
    titles = frame.locator("a.title-link").evaluate_all("links => links.map(a => a.href)")
    more = frame.locator("a.read-more-link").evaluate_all("links => links.map(a => a.href)")
    assert titles == expected
    assert more == expected
    for href in titles + more:
        assert href.startswith("https://"), href
    assert frame.locator("a.title-link").first.is_visible()
    hrefs = frame.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert not [h for h in hrefs if "x-digest:" in h]


def test_width_switch_when_clicked(page: Page, servers: dict[str, str]) -> None:
    page.goto(servers["demo"] + "/")
    assert widths(email_frame(page))[1] == 1024
    page.locator("a.width-phone").click()
    page.wait_for_url("**/?width=375")
    frame = email_frame(page)
    assert page.locator("iframe#email-frame").get_attribute("width") == "375"
    assert widths(frame)[1] == 375
    assert page.locator("a.width-phone").get_attribute("aria-current") == "true"
    page.locator("a.width-desktop").click()
    page.wait_for_url("**/?width=1024")
    assert widths(email_frame(page))[1] == 1024
    assert page.locator("a.width-desktop").get_attribute("aria-current") == "true"


def test_language_switch_when_clicked(page: Page, servers: dict[str, str]) -> None:
    page.goto(servers["demo"] + "/?width=375")
    page.locator('a[hreflang="en"]').click()
    page.wait_for_url("**/?width=375&locale=en")
    assert page.locator("html").get_attribute("lang") == "en"
    frame = email_frame(page)
    assert frame.get_by_text("LATEST UPDATES").count() == 1
    assert widths(frame)[1] == 375


CONTRAST_SCRIPT = """() => {
  const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const channel = (c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (node) => {
    for (; node && node.nodeType === 1; node = node.parentElement) {
      const value = rgb(getComputedStyle(node).backgroundColor);
      if (value.length === 3 || value[3] > 0) return value.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const node of document.body.querySelectorAll("*")) {
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (!own || node.closest(".preheader")) continue;
    const fg = luminance(rgb(getComputedStyle(node).color));
    const bg = luminance(background(node));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    found.push([node.textContent.trim().slice(0, 40), ratio]);
  }
  return found;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_contrast_as_the_browser_draws_it(page: Page, demo_config: Config, scheme: str) -> None:
    """What tests/support/contrast.py computes from the styles, checked against Chromium's
    cascade."""
    from digest.render.edition import render

    html = render(
        render_settings(demo_config),
        next_edition(
            gather(issue_settings(demo_config), now=NOW), issue_settings(demo_config), NOW
        ),
    ).html
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.set_content(html)
    found = page.evaluate(CONTRAST_SCRIPT)
    assert len(found) > 40
    low = [(text, round(ratio, 2)) for text, ratio in found if ratio < 4.5]
    assert not low, low
    footer = page.evaluate("getComputedStyle(document.querySelector('.footer-text div')).color")
    assert footer == {"light": "rgb(75, 85, 99)", "dark": "rgb(154, 164, 178)"}[scheme]
