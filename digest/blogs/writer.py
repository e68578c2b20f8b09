"""`digest init`: a commented config.yaml written from a Hexo, Hugo or Jekyll blog's own config.

It carries over what the blog's configuration says (title, base URL, permalink translated into
digest's fields, language, time zone, math delimiters, where the posts are) and writes the keys
no blog config has (the postal address, SMTP, the sender) as commented placeholders: a real send
asks for them, `digest posts`, `render` and `preview` do not. It never overwrites a config.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import regex

from digest.blogs.detect import BlogSettings, detect
from digest.errors import ConfigError
from digest.models import SourceResult, own_status
from digest.sources.markdown import read_folder

NAMES = {"hexo": "Hexo", "hugo": "Hugo", "jekyll": "Jekyll"}
DEFAULT_TIMEZONES = {"zh": "Asia/Shanghai", "en": "UTC"}
PLACEHOLDER_URL = "https://blog.example.com"
LOOKBACK_DAYS = 30  # what config.yaml says
_LETTER = regex.compile(r"\p{L}")
_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")


@dataclass(slots=True)
class InitReport:
    """What `digest init` tells the user: what it found, what it could not, what to run next."""

    settings: BlogSettings
    config: Path
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)  # post status -> how many
    newest: datetime | None = None  # the newest published post's date

    @property
    def summary(self) -> str:
        """`7 posts: 5 published, 1 draft, 1 future` (what `digest posts --all` would show)."""
        total = sum(self.statuses.values())
        words = {"new": "published", "future": "scheduled", "opted-out": "opted out"}
        parts = [f"{n} {words.get(s, s)}" for s, n in sorted(self.statuses.items()) if n]
        counted = f"{total} post{'s' if total != 1 else ''}"
        return counted + (": " + ", ".join(parts) if parts else "")


def init_config(blog: Path, target: Path) -> InitReport:
    """Write `target` from the blog in `blog`; ConfigError if target exists or blog is not one."""
    if target.exists():
        raise ConfigError(
            f"{target}: already exists; digest init never overwrites a configuration "
            "(move it away, or run digest init in another folder)."
        )
    settings = detect(blog.resolve())
    report = InitReport(settings, target)
    if settings.locale is None:
        settings.locale = _guess_locale(settings)
        if settings.locale is not None:
            language = "Chinese" if settings.locale == "zh" else "English"
            settings.notes.append(
                f"no language: the posts are mostly {language}, so {settings.locale} "
                "(set site.locale to change it)"
            )
    _describe(settings, report)
    _count_posts(settings, report)
    try:
        with target.open("x", encoding="utf-8") as handle:
            handle.write(render_config(settings, target.resolve().parent, report.newest))
    except FileExistsError:
        raise ConfigError(f"{target}: already exists; digest init never overwrites it.") from None
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write the configuration: {exc.strerror}.") from None
    return report


def _describe(settings: BlogSettings, report: InitReport) -> None:
    name = NAMES[settings.generator]
    report.found.append(f"a {name} blog in {settings.root} ({settings.config_file})")
    found, missing = report.found, report.missing
    if settings.title:
        found.append(f"title: {settings.title}")
    else:
        missing.append(f"no title: using the folder's name {settings.root.name!r}")
    if settings.base_url:
        found.append(f"base URL: {settings.base_url}")
    else:
        missing.append(f"no absolute base URL: wrote {PLACEHOLDER_URL}; set site.base_url")
    found.append(f"posts: {settings.posts}")
    found.append(f"permalink: {settings.blog_permalink} -> {settings.permalink}")
    posts_url = _posts_url(settings)
    if settings.posts_path_guessed:
        missing.append(
            f'no list of posts found: the "N more posts" line links to {posts_url} '
            f"({settings.posts_path_source}, a guess); set site.posts_url to the page listing them"
        )
    else:
        found.append(f"list of posts: {posts_url} (from {settings.posts_path_source})")
    if settings.locale:
        found.append(f"language: {settings.locale}")
    else:
        missing.append("no language: assuming zh (set site.locale: en for an English blog)")
    if settings.timezone:
        found.append(f"time zone: {settings.timezone}")
    else:
        zone = DEFAULT_TIMEZONES[settings.locale or "zh"]
        missing.append(f"no time zone: dates without one are read as {zone}")
    if settings.math:
        found.append(f"math: {settings.math} (from {settings.math_source})")
    else:
        why = f" ({settings.math_source})" if settings.math_source else ""
        missing.append(f"no math setting{why}: excerpt.math auto tells TeX from prose")
    missing.extend(settings.notes)
    missing.append("no postal address, SMTP server or sender: placeholders to fill before a send")


def _count_posts(settings: BlogSettings, report: InitReport) -> None:
    if not settings.posts.is_dir():
        report.missing.append(f"the posts folder {settings.posts} does not exist yet")
        return
    result = SourceResult()
    read_folder(
        settings.posts,
        base_url=settings.base_url or PLACEHOLDER_URL,
        permalink=settings.permalink,
        tz=_zone(settings),
        result=result,
        generator=settings.generator,
        languages=tuple(settings.languages),
    )
    now = datetime.now(UTC)
    statuses = {p: own_status(p, now) for p in result.posts}
    report.statuses = dict(Counter(str(status) for status in statuses.values()))
    published = [p.date for p, status in statuses.items() if status == "new" and p.date]
    report.newest = max(published, default=None)
    if report.newest is not None and report.newest < now - timedelta(days=LOOKBACK_DAYS):
        day = report.newest.astimezone(_zone(settings)).strftime("%Y-%m-%d")
        report.missing.append(
            f"every post is older than digest.lookback_days ({LOOKBACK_DAYS} days; the newest is "
            f"dated {day}): the first digest waits for a new post unless you uncomment "
            "digest.first_issue"
        )


def _guess_locale(settings: BlogSettings) -> str | None:
    """zh or en from the posts themselves, for a blog whose config names no language: zh when
    at least a fifth of the letters in titles and bodies are Chinese, Japanese or Korean."""
    if not settings.posts.is_dir():
        return None
    result = SourceResult()
    read_folder(
        settings.posts,
        base_url=PLACEHOLDER_URL,
        permalink=settings.permalink,
        tz=ZoneInfo("UTC"),
        result=result,
        generator=settings.generator,
        languages=tuple(settings.languages),
    )
    text = " ".join(p.title + " " + p.body[:2000] for p in result.posts)
    letters = len(_LETTER.findall(text))
    if not letters:
        return None
    return "zh" if len(_CJK.findall(text)) * 5 >= letters else "en"


def _zone(settings: BlogSettings) -> ZoneInfo:
    return ZoneInfo(settings.timezone or DEFAULT_TIMEZONES[settings.locale or "zh"])


def _yaml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML string


def _languages(settings: BlogSettings) -> str:
    if len(settings.languages) < 2:
        return ""
    codes = ", ".join(settings.languages)
    return (
        "    # The site's languages, the one read first: post.LANG.md and slug/index.LANG.md are\n"
        f"    # translations, left out unless LANG is {settings.languages[0]}.\n"
        f"    languages: [{codes}]\n"
    )


def _comment(text: str) -> str:
    """`text` as comment lines of a key in a section (two spaces in), wrapped at 96 columns."""
    return "\n".join(textwrap.wrap(text, 92, initial_indent="  # ", subsequent_indent="  # "))


def _posts_url(settings: BlogSettings) -> str:
    return (settings.base_url or PLACEHOLDER_URL) + settings.posts_path


def _first_issue(newest: datetime | None, settings: BlogSettings) -> str:
    """The commented `first_issue` example: the newest post's day, so that uncommenting it as
    it is sends the newest post(s), and nothing older."""
    moment = newest or datetime.now(UTC)
    return moment.astimezone(_zone(settings)).strftime("%Y-%m-%d")


def render_config(settings: BlogSettings, folder: Path, newest: datetime | None = None) -> str:
    """The commented config.yaml text; paths are relative to `folder` (where it is written)."""
    locale = settings.locale or "zh"
    relative = Path(os.path.relpath(settings.posts, folder))
    # near the config (the blog's own folder, a sibling): relative; far away: absolute
    posts = (relative if relative.parts.count("..") <= 2 else settings.posts).as_posix()
    name = NAMES[settings.generator]
    title = settings.title or settings.root.name
    zone = settings.timezone or DEFAULT_TIMEZONES[locale]
    math = settings.math or "auto"
    source = f"from {settings.math_source}" if settings.math else "not set by the blog"
    math_note = (
        "Math delimiters the blog renders: auto, dollars, brackets, both, kramdown, backticks "
        f"(math in code spans) or none ({source}). A post's own `math: true` (or false) front "
        "matter turns $…$ on (or off) for that post."
    )
    guess = ", a guess: check it" if settings.posts_path_guessed else ""
    posts_note = (
        'The blog\'s list of posts, linked from the "N more posts" line '
        f"({settings.posts_path_source}{guess})."
    )
    return f"""\
# digest configuration, written by `digest init` from the {name} blog's {settings.config_file}.
# Any key can be overridden from the environment as DIGEST_<SECTION>__<KEY>, for example
# DIGEST_SMTP__PORT=2525. Secrets (the SMTP password) belong there, not in this file.
# Relative paths are relative to the folder that holds this file.

site:
  # The blog's name; the digest's masthead shows it in capitals.
  title: {_yaml(title)}
  # Where the blog lives; post URLs and relative links are made absolute against it.
  base_url: {_yaml(settings.base_url or PLACEHOLDER_URL)}
  # Language of the digest's fixed text: zh or en.
  locale: {locale}
  # Time zone for dates written without one in front matter.
  timezone: {zone}
  # URL pattern of a post, relative to base_url, translated from the blog's permalink
  # {settings.blog_permalink!s}. Fields follow {name}'s rules (docs/blogs.md).
  permalink: {_yaml(settings.permalink)}
{_comment(posts_note)}
  posts_url: {_yaml(_posts_url(settings))}
  # The sender's postal address, shown in every digest's footer; anti-spam laws require it,
  # and a real send refuses to start without it.
  # postal_address: "1 Example Road, 12345 City"

# Where posts come from.
sources:
  - type: markdown
    path: {_yaml(posts)}
    # Read the posts with {name}'s rules for slugs, dates, drafts and URLs.
    generator: {settings.generator}
{_languages(settings)}
# How post excerpts are made (docs/excerpts.md).
excerpt:
  # Excerpt length in characters, before "..." is added.
  length: 350
  # Language of the posts, for the [代码]/[code] labels (default: site.locale).
  # labels: {locale}
{_comment(math_note)}
  math: {math}

# What one digest holds.
digest:
  # Posts shown in one digest; further new posts become an "N more posts" line.
  max_posts: 12
  # Posts older than this many days are never new (0: no limit).
  lookback_days: {LOOKBACK_DAYS}
  # Where the first digest starts. Left commented, it holds the posts of the last
  # lookback_days days only, so that nothing old is sent unless you choose it. Uncommented, a
  # date makes it hold every post published since that day, however old (and no post dated
  # before it is ever sent); a number N instead makes it hold the newest N posts too.
  # first_issue: {_first_issue(newest, settings)}

# Where subscribers, issues and deliveries are recorded (SQLite file, or a PostgreSQL URL).
database:
  url: sqlite:///var/digest.sqlite3

# Outgoing mail: fill in before the first real send. The password comes from the environment
# (DIGEST_SMTP__PASSWORD) or from password_file, never from this file.
# smtp:
#   host: smtp.example.com
#   port: 587
#   security: starttls
#   username: digest@example.com

# Who the digest comes from.
# sender:
#   from: {_yaml(title + " <digest@example.com>")}

# The public web app (`digest serve`): unsubscribe links in every email point here.
# web:
#   base_url: https://news.example.com
"""
