"""Every visible text of the digest has at least 4.5:1 contrast (WCAG AA), light and dark.

Computed from the rendered HTML's inline styles and its dark-mode rules (tests/support/contrast.py):
body text, meta lines, links, the masthead and the footer, in both locales.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import issue_settings, render_settings
from digest.issues.send import gather, next_edition
from digest.render.edition import render
from tests.support import paths
from tests.support.contrast import ratio, samples

ROOT = paths.ROOT
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
WCAG_AA = 4.5


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "config.yaml", environ={})


@pytest.fixture(scope="module")
def html(config: Config) -> dict[str, str]:
    edition = next_edition(gather(issue_settings(config), now=NOW), issue_settings(config), NOW)
    return {
        locale: render(render_settings(config), edition, locale).html for locale in ("zh", "en")
    }


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("locale", ["zh", "en"])
def test_every_text_reaches_wcag_aa(html: dict[str, str], locale: str, dark: bool) -> None:
    found = samples(html[locale], dark=dark)
    low = [s for s in found if s.ratio < WCAG_AA]
    assert not low, "\n".join(f"{s.ratio:.2f}:1 {s.color} on {s.background}: {s.text}" for s in low)
    texts = " | ".join(s.text for s in found)
    # the parts the issue names are among what was measured
    footer = "你收到这封邮件" if locale == "zh" else "You are receiving this"
    for part in ("Python / 2026-11-20", footer, "Medusa", "200030", "INCOMING TRANSMISSION"):
        assert part in texts, part
    assert len(found) > 40


def test_dark_mode_changes_the_colours(html: dict[str, str]) -> None:
    """The dark rules are read: the footer and the cards are drawn on dark backgrounds."""
    light = {s.text: s for s in samples(html["zh"])}
    dark = {s.text: s for s in samples(html["zh"], dark=True)}
    footer = next(text for text in dark if text.startswith("你收到这封邮件"))
    assert (light[footer].color, light[footer].background) == ("#4b5563", "#f3f4f6")
    assert (dark[footer].color, dark[footer].background) == ("#9aa4b2", "#0b0f17")
    meta = dark["Python / 2026-11-20"]
    assert meta.background == "#161b22" and meta.color == "#9aa4b2"


def test_the_check_catches_the_old_footer(html: dict[str, str]) -> None:
    """The grey the footer had (#6b7280 on #f3f4f6) is 4.39:1: the check refuses it."""
    old = html["zh"].replace("color:#4b5563", "color:#6b7280")
    low = [s for s in samples(old) if s.ratio < WCAG_AA]
    assert low and all(s.color == "#6b7280" and s.background == "#f3f4f6" for s in low)
    assert round(ratio("#6b7280", "#f3f4f6"), 2) == 4.39
    assert round(ratio("#000000", "#ffffff"), 2) == 21.0
