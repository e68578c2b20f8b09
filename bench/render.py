"""Benchmark: what rendering the demo digest costs, and why it happens once per issue.

Renders the demo blog's digest (config.yaml at the repository root, as of 2026-11-22) and prints
its HTML size, the time of one render (median of --repeat runs, with the time of each stage),
and the cost of sending to --recipients recipients two ways:

- render per recipient: call `render()` for each recipient, then fill in their values;
- render once: call `render()` once, then fill in each recipient's values by `str.replace`.

Not part of the test suite. Run: .venv/bin/python bench/render.py [--recipients N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mjml import mjml2html
from tables import table

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import issue_settings, render_settings
from digest.issues.send import gather, next_edition
from digest.models import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, Edition, Rendered
from digest.render.edition import context, environment, inline_css, render
from digest.render.i18n import translations
from digest.render.wrap import wrap_text

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def personalised(rendered: Rendered, number: int) -> tuple[str, str]:
    """One recipient's HTML and text: the placeholders replaced by their own values."""
    values = {
        UNSUBSCRIBE_URL: f"https://news.example.com/u/{number:08d}.c2lnbmF0dXJlLW9mLXRva2Vu",
        PREFERENCES_URL: f"https://news.example.com/p/{number:08d}.c2lnbmF0dXJlLW9mLXRva2Vu",
        GREETING: rendered.greeting_named % {"name": f"Reader {number}"},
    }
    html, text = rendered.html, rendered.text
    for placeholder, value in values.items():
        html = html.replace(placeholder, value)
        text = text.replace(placeholder, value)
    return html, text


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def render_per_recipient(config: Config, edition: Edition, recipients: int) -> int:
    size = 0
    for number in range(recipients):
        html, text = personalised(render(render_settings(config), edition), number)
        size += len(html) + len(text)
    return size


def render_once(config: Config, edition: Edition, recipients: int) -> int:
    return replace_only(render(render_settings(config), edition), recipients)


def replace_only(rendered: Rendered, recipients: int) -> int:
    size = 0
    for number in range(recipients):
        html, text = personalised(rendered, number)
        size += len(html) + len(text)
    return size


def stages(config: Config, edition: Edition) -> dict[str, float]:
    """The seconds each step of one render takes (as `digest.render.edition.render`)."""
    locale = config.site.locale
    times: dict[str, float] = {}
    start = time.perf_counter()
    env: Any = environment(render_settings(config).templates)
    env.install_gettext_translations(translations(locale), newstyle=True)
    values = context(render_settings(config), edition, locale)
    mjml_source = env.get_template("email/digest.mjml.j2").render(values)
    text_source = env.get_template("email/digest.txt.j2").render(values)
    times["Jinja2 (MJML + text templates)"] = time.perf_counter() - start
    start = time.perf_counter()
    html = mjml2html(mjml_source, fonts={}, disable_comments=True)
    times["MJML -> HTML (mjml-python)"] = time.perf_counter() - start
    start = time.perf_counter()
    inline_css(html, config.site.base_url)
    times["CSS inlining (premailer)"] = time.perf_counter() - start
    start = time.perf_counter()
    wrap_text(text_source.strip() + "\n")
    times["text wrapping"] = time.perf_counter() - start
    return times


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=1000, help="default: 1000")
    parser.add_argument("--repeat", type=int, default=20, help="renders to time (default: 20)")
    parser.add_argument(
        "--quick", action="store_true", help="few renders and 20 recipients: a few seconds"
    )
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else max(1, args.repeat)
    recipients = min(args.recipients, 20) if args.quick else max(1, args.recipients)

    config = load_config(ROOT / "config.yaml", environ={})
    gathered = gather(issue_settings(config), now=NOW)
    edition = next_edition(gathered, issue_settings(config), NOW)
    if not edition.posts:
        print("bench/render.py: the demo blog has no new posts as of", NOW.date(), file=sys.stderr)
        return 1
    rendered = render(
        render_settings(config), edition
    )  # warm-up: imports, template compilation caches
    shown = min(len(edition.posts), config.digest.max_posts)
    html_kb = len(rendered.html.encode()) / 1024
    text_kb = len(rendered.text.encode()) / 1024

    renders = [timed(lambda: render(render_settings(config), edition)) for _ in range(repeat)]
    median = statistics.median(renders)
    parts = [stages(config, edition) for _ in range(repeat)]

    print(f"Demo digest {edition.key} ({config.site.locale}): {shown} posts shown")
    print(f"of {len(edition.posts)} new, rendered as of {NOW:%Y-%m-%d}.\n")
    print(
        table(
            [
                ("", "value"),
                ("HTML size", f"{html_kb:.1f} KB"),
                ("Gmail clips above", "102.0 KB"),
                ("text part size", f"{text_kb:.1f} KB"),
                (f"render, median of {repeat}", milliseconds(median)),
                ("render, fastest", milliseconds(min(renders))),
                ("render, slowest", milliseconds(max(renders))),
            ]
        )
    )
    print()
    print(
        table(
            [("one render, by stage", f"median of {repeat}")]
            + [(name, milliseconds(statistics.median(p[name] for p in parts))) for name in parts[0]]
        )
    )

    per_recipient = timed(lambda: render_per_recipient(config, edition, recipients))
    once = timed(lambda: render_once(config, edition, recipients))
    replacing = timed(lambda: replace_only(rendered, recipients))
    print()
    print(
        table(
            [
                (f"{recipients:,} recipients", "total", "per recipient"),
                (
                    "render per recipient",
                    f"{per_recipient:,.3f} s",
                    milliseconds(per_recipient / recipients),
                ),
                (
                    "render once + str.replace",
                    f"{once:,.3f} s",
                    milliseconds(once / recipients),
                ),
                (
                    "  of which str.replace",
                    f"{replacing:,.3f} s",
                    milliseconds(replacing / recipients),
                ),
            ]
        )
    )
    print(f"\nrender per recipient / render once: {per_recipient / once:,.0f}x slower")
    return 0


if __name__ == "__main__":
    sys.exit(main())
