"""The parsed-post cache (digest.sources.cache): a warm run parses nothing and gives exactly
what a cold run gives; every setting, the code, and every edit, deletion or addition of a file
invalidates what it must; a damaged, shared or read-only cache never fails a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import markdown_it
import pytest
import yaml
from pydantic import BaseModel

import digest
from digest import codestamp
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import issue_settings, source_settings
from digest.excerpt.settings import ExcerptSettings
from digest.issues.send import Gathered, gather
from digest.models import Post
from digest.sources import cache as post_cache
from digest.sources import parse
from digest.sources.settings import FolderSource
from tests.support import paths

ROOT = paths.ROOT
DAY_NS = 86400 * 10**9

POSTS = {
    "2026-11-01-cache.md": (
        "---\ntitle: 缓存失效的三种方式\ndate: 2026-11-01 09:30:00\ncategories: [系统]\n"
        "tags: [缓存, 性能]\n---\n\n很多人第一次遇到这个问题时，都会先怀疑硬件。\n\n"
        "```python\nprint(1)\n```\n\n复杂度为 $O(n^2)$。\n\n$$\ny = Wx + b\n$$\n"
    ),
    "2026-11-02-offsets.md": (
        "---\ntitle: Offsets\ndate: 2026-11-02T08:00:00+02:00\nupdated: 2026-11-03T08:00:00Z\n"
        "summary: A post with its own summary.\ntags: [time]\n---\n\nThe body is longer than "
        "the summary, so the excerpt is continued. `code` and **bold**.\n"
    ),
    "bundle/index.md": (
        "---\ntitle: A bundle\ndate: 2026-11-03\n---\n\nBefore the marker.\n\n<!--more-->\n\n"
        "After the marker.\n"
    ),
    "untitled.md": "# The heading is the title\n\nAnd this is the body, with no front matter.\n",
    "broken.md": "---\ntitle: [oops\n---\nnever shown\n",
    "empty.md": "   \n",
    "twin.md": "---\ntitle: Twin\nid: 2026-11-01-cache.md\n---\nSame id as another post.\n",
    "hello.en.md": "---\ntitle: Hello in English\ndate: 2026-10-30\n---\nA translated post.\n",
}
LATIN1 = "latin1.md"  # not UTF-8: a problem, as bytes


def write_blog(root: Path, *, aged: bool = True, **settings: dict[str, Any]) -> Path:
    """A small blog and its config under `root`; `aged` dates the files a day back, as a
    blog's posts are (a file written just now is re-checked by content: see test_racy_*)."""
    posts = root / "posts"
    for name, text in POSTS.items():
        (posts / name).parent.mkdir(parents=True, exist_ok=True)
        (posts / name).write_text(text, encoding="utf-8")
    (posts / LATIN1).write_bytes(b"---\ntitle: caf\xe9\n---\nbody\n")
    if aged:
        for file in posts.rglob("*.md"):
            age(file)
    return write_config(root, **settings)


def write_config(root: Path, top: dict[str, Any] | None = None, **settings: Any) -> Path:
    """The blog's config, with `settings` merged into its sections (`source`: the one
    source) and `top` into the top level."""
    data: dict[str, Any] = {
        "site": {"title": "T", "base_url": "https://blog.example.com", "locale": "zh"},
        "sources": [{"type": "markdown", "path": "posts"}],
        "digest": {"lookback_days": 36500},
    }
    for section, values in settings.items():
        if section == "source":
            data["sources"][0].update(values)
        else:
            data.setdefault(section, {}).update(values)
    data.update(top or {})
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def age(file: Path, days: int = 1) -> None:
    stamp = time.time_ns() - days * DAY_NS
    os.utime(file, ns=(stamp, stamp))


def config_of(path: Path) -> Config:
    return load_config(path, environ={})


def snapshot(gathered: Gathered) -> dict[str, Any]:
    """Everything a command shows or uses of a read: posts (with their time zones), verdicts,
    excerpts and the problems, in order."""
    return {
        "candidates": [(c.post, c.status, c.excerpt) for c in gathered.candidates],
        "zones": [
            [str(getattr(d, "tzinfo", None)) for d in (c.post.date, c.post.updated)]
            for c in gathered.candidates
        ],
        "problems": [str(p) for p in gathered.source.problems],
        "failures": gathered.source.failures,
    }


class Counted:
    """A read of the sources, with what the cache said about it (its debug line)."""

    def __init__(self, caplog: pytest.LogCaptureFixture, config: Config) -> None:
        caplog.clear()
        self.result = snapshot(gather(issue_settings(config)))
        lines = [r for r in caplog.records if r.name == "digest.sources.cache"]
        counts = [r.args for r in lines if r.levelname == "DEBUG"]
        assert len(counts) == 1, [r.getMessage() for r in lines]
        assert isinstance(counts[0], tuple)
        self.hits, self.misses = counts[0][1], counts[0][2]
        self.warnings = [r.getMessage() for r in lines if r.levelname == "WARNING"]


@pytest.fixture
def counted(caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    caplog.set_level("DEBUG", logger="digest.sources.cache")
    yield lambda config: Counted(caplog, config)


def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on any front matter or Markdown parse fails the test."""

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("parsed on a warm run")

    monkeypatch.setattr(markdown_it.MarkdownIt, "parse", refuse)
    monkeypatch.setattr(parse, "split_front_matter", refuse)


FILES = len(POSTS) + 1


def test_a_warm_run_parses_nothing_and_gives_what_the_cold_run_gave(
    tmp_path: Path, counted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_of(write_blog(tmp_path))
    cold = counted(config)
    assert (cold.hits, cold.misses) == (0, FILES)
    assert len(cold.result["candidates"]) == 5
    assert ["Asia/Shanghai", "None"] in cold.result["zones"]  # the site's ZoneInfo survives
    no_parsing(monkeypatch)
    warm = counted(config)
    assert (warm.hits, warm.misses) == (FILES, 0)
    assert warm.result == cold.result
    assert warm.result["zones"] == cold.result["zones"]
    assert warm.warnings == []


def test_problems_are_reported_again_on_a_warm_run_in_the_same_order(
    tmp_path: Path, counted: Any
) -> None:
    config = config_of(write_blog(tmp_path))
    cold = counted(config)
    reasons = " | ".join(cold.result["problems"])
    for expected in ("broken.md: the front matter", "empty.md: the file is empty", LATIN1):
        assert expected in reasons
    assert "twin.md: id '2026-11-01-cache.md' is already used" in reasons
    warm = counted(config)
    assert warm.misses == 0
    assert warm.result["problems"] == cold.result["problems"]


def test_escaped_control_characters_and_lone_surrogates_are_cached_too(
    tmp_path: Path, counted: Any
) -> None:
    """Front-matter escapes reach a post before excerpt.clean does (JSON front matter can even
    hold a lone surrogate, which UTF-8 cannot): the cache keeps them as they are."""
    config = config_of(write_blog(tmp_path))
    odd = tmp_path / "posts" / "odd.md"
    odd.write_text('{"title": "back\\bspace \\ud800 half"}\n\nBody \\(x\\).\n', "utf-8")
    age(odd)
    cold = counted(config)
    assert "backspace  half" in [c[0].title for c in cold.result["candidates"]]
    warm = counted(config)
    assert (warm.misses, warm.warnings, warm.result) == (0, [], cold.result)


@pytest.mark.slow
def test_the_cli_prints_the_same_warnings_and_output_warm_as_cold(tmp_path: Path) -> None:
    config = write_blog(tmp_path)
    runs = [run_cli(config, "posts", "--json") for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0]
    assert runs[0].stdout == runs[1].stdout and json.loads(runs[0].stdout)
    assert runs[0].stderr == runs[1].stderr
    assert runs[0].stderr.count("digest: warning:") == 4


SETTINGS = [
    ("excerpt", {"length": 12}),
    ("excerpt", {"labels": "en"}),
    ("excerpt", {"math": "none"}),
    ("site", {"permalink": "/{year}/{slug}/"}),
    ("site", {"base_url": "https://elsewhere.example.org"}),
    ("site", {"timezone": "America/New_York"}),
    ("site", {"locale": "en"}),
    ("source", {"permalink": "/p/{slug}/"}),
    ("source", {"generator": "hexo"}),
    ("source", {"languages": ["en", "zh"]}),
    ("source", {"languages": ["zh", "en"], "language": "en"}),
]


@pytest.mark.parametrize(("section", "values"), SETTINGS, ids=[str(s) for s in SETTINGS])
def test_every_setting_that_changes_a_post_starts_afresh(
    tmp_path: Path, counted: Any, section: str, values: dict[str, Any]
) -> None:
    config = config_of(write_blog(tmp_path))
    before = counted(config)
    changed = config_of(write_config(tmp_path, **{section: values}))
    after = counted(changed)
    fresh = counted(config_of(write_config(tmp_path, {"cache_dir": "other"}, **{section: values})))
    assert (after.hits, after.misses) == (0, fresh.misses)  # not one entry served
    assert after.result == fresh.result
    assert after.result != before.result  # and the setting does show
    again = counted(config)  # the first settings' cache is still there
    assert (again.hits, again.result) == (FILES, before.result)


# What the posts of a Markdown source and their excerpts depend on, as configuration keys: the
# source itself, the site's base URL, permalink and time zone, and the excerpt settings (the
# site's locale is the default label language and time zone).
FEEDS = {
    ("sources",),
    ("site", "base_url"),
    ("site", "permalink"),
    ("site", "timezone"),
    ("site", "locale"),
    ("excerpt", "length"),
    ("excerpt", "labels"),
    ("excerpt", "math"),
}


def key_of(config: Config) -> str:
    settings = source_settings(config)
    [source] = settings.sources
    assert isinstance(source, FolderSource)
    return post_cache.cache_key(source, settings.excerpt)


def test_the_key_changes_with_every_source_and_excerpt_setting(tmp_path: Path) -> None:
    """Each field of the source's settings and of the excerpt settings is in the key, and so
    is every configuration key that feeds them."""
    config = config_of(write_blog(tmp_path))
    settings = source_settings(config)
    [source] = settings.sources
    assert isinstance(source, FolderSource)
    key = post_cache.cache_key(source, settings.excerpt)
    for field in fields(FolderSource):
        altered = replace(source, **{field.name: _other(getattr(source, field.name))})
        assert post_cache.cache_key(altered, settings.excerpt) != key, field.name
    for field in fields(ExcerptSettings):
        excerpt = replace(
            settings.excerpt, **{field.name: _other(getattr(settings.excerpt, field.name))}
        )
        assert post_cache.cache_key(source, excerpt) != key, field.name
    [configured] = config.sources
    for name in set(type(configured).model_fields) - {"type"}:
        changed = configured.model_copy(update={name: _other(getattr(configured, name))})
        assert key_of(config.model_copy(update={"sources": [changed]})) != key, name
    for path in FEEDS - {("sources",)}:
        assert key_of(_altered(config, path)) != key, path


def test_no_other_setting_changes_the_key(tmp_path: Path) -> None:
    """Changing any configuration value that does not feed the source or excerpt settings
    (the subject, SMTP, the web, the cache folder itself, ...) keeps the cache file."""
    config = config_of(write_blog(tmp_path))
    key = key_of(config)
    others = [path for path in _leaves(config) if path not in FEEDS and path[:1] not in FEEDS]
    assert len(others) > 50  # every section's every key, not a chosen few
    for path in others:
        assert key_of(_altered(config, path)) == key, path


def _leaves(model: BaseModel, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The key path of every value in `model`, sections descended into."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _leaves(value, (*prefix, name))
        else:
            yield (*prefix, name)


def _altered(model: Any, path: tuple[str, ...]) -> Any:
    """A copy of `model` with the value at `path` changed (private attributes kept)."""
    first, rest = path[0], path[1:]
    value = getattr(model, first)
    return model.model_copy(update={first: _altered(value, rest) if rest else _other(value)})


def _other(value: Any) -> Any:
    """Something else of the same kind: a model with its first field changed, or a value."""
    if isinstance(value, BaseModel):
        name = next(iter(type(value).model_fields))
        return value.model_copy(update={name: _other(getattr(value, name))})
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None:
        return "changed"
    if isinstance(value, Path):
        return value / "changed"
    if isinstance(value, list | tuple):
        return type(value)([*value, "changed"])
    return f"{value}-changed"


def test_settings_that_do_not_change_posts_keep_the_cache(tmp_path: Path, counted: Any) -> None:
    config = config_of(write_blog(tmp_path))
    counted(config)
    other = config_of(
        write_config(tmp_path, smtp={"port": 2525}, digest={"max_posts": 3, "lookback_days": 5})
    )
    assert counted(other).misses == 0


def test_a_new_package_version_starts_afresh(
    tmp_path: Path, counted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_of(write_blog(tmp_path))
    cold = counted(config)
    monkeypatch.setattr(digest, "__version__", "99.0")
    upgraded = counted(config)
    assert (upgraded.hits, upgraded.misses) == (0, FILES)
    assert upgraded.result == cold.result


def test_an_edited_module_changes_the_code_version(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "sub" / "mod.py").write_text("x = 1\n")
    stamps = codestamp._module_stamps.__wrapped__  # uncached: modules do not change in-process
    before = stamps(package)
    (package / "sub" / "mod.py").write_text("x = 22\n")
    assert stamps(package) != before


def test_an_edited_file_is_read_again_and_the_others_are_not(tmp_path: Path, counted: Any) -> None:
    config = config_of(write_blog(tmp_path))
    counted(config)
    post = tmp_path / "posts" / "bundle" / "index.md"
    post.write_text(post.read_text("utf-8").replace("A bundle", "A renamed bundle"), "utf-8")
    age(post)
    edited = counted(config)
    assert (edited.hits, edited.misses) == (FILES - 1, 1)
    assert "A renamed bundle" in [c[0].title for c in edited.result["candidates"]]


def test_same_size_same_mtime_other_content_is_still_seen(tmp_path: Path, counted: Any) -> None:
    """What mtime caching alone misses: content changed, size and mtime put back (as `cp -p`,
    rsync or `touch -d` do). The write moved the file's ctime, which is part of the key."""
    config = config_of(write_blog(tmp_path))
    counted(config)
    post = tmp_path / "posts" / "2026-11-02-offsets.md"
    stat = post.stat()
    text = post.read_text("utf-8")
    post.write_text(text.replace("Offsets", "Offsetz"), "utf-8")
    os.utime(post, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (post.stat().st_size, post.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    after = counted(config)
    assert after.misses == 1
    assert "Offsetz" in [c[0].title for c in after.result["candidates"]]


def test_a_deleted_file_disappears_and_an_added_one_appears(tmp_path: Path, counted: Any) -> None:
    config = config_of(write_blog(tmp_path))
    counted(config)
    (tmp_path / "posts" / "2026-11-02-offsets.md").unlink()
    added = tmp_path / "posts" / "2026-11-04-new.md"
    added.write_text("---\ntitle: Brand new\ndate: 2026-11-04\n---\nHello.\n", "utf-8")
    age(added)
    after = counted(config)
    assert (after.hits, after.misses) == (FILES - 1, 1)
    titles = [c[0].title for c in after.result["candidates"]]
    assert "Brand new" in titles and "Offsets" not in titles
    [cache_file] = (tmp_path / "var" / "cache" / "posts").glob("*.json")
    files = json.loads(cache_file.read_text("utf-8"))["files"]
    assert "2026-11-02-offsets.md" not in files and "2026-11-04-new.md" in files


def test_racy_files_are_trusted_only_after_comparing_their_text(
    tmp_path: Path, counted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files written just now could change again within their mtime's tick: their entries are
    checked against a digest of the text (read, not parsed) until they are old enough."""
    config = config_of(write_blog(tmp_path, aged=False))
    age(tmp_path / "posts" / LATIN1)  # unreadable: no text to compare, so it is read again
    cold = counted(config)
    [cache_file] = (tmp_path / "var" / "cache" / "posts").glob("*.json")
    data = json.loads(cache_file.read_text("utf-8"))
    post = tmp_path / "posts" / "2026-11-01-cache.md"
    post.write_text(post.read_text("utf-8").replace("缓存失效", "缓存命中"), "utf-8")
    stat = post.stat()
    entry = data["files"]["2026-11-01-cache.md"]
    entry["stamp"] = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    entry["checked"] = stat.st_mtime_ns  # as if the entry had been made in the same tick
    cache_file.write_text(json.dumps(data), "utf-8")
    after = counted(config)
    assert after.misses == 1
    assert "缓存命中的三种方式" in [c[0].title for c in after.result["candidates"]]
    post.write_text(POSTS["2026-11-01-cache.md"], "utf-8")
    counted(config)
    no_parsing(monkeypatch)
    unchanged = counted(config)  # fresh files, same text: verified by digest, not parsed
    assert (unchanged.hits, unchanged.result) == (FILES, cold.result)


DAMAGE = {
    "not json": b"this is not JSON",
    "truncated": None,  # the first half of a real cache file
    "zeros": b"\0" * 64,
    "files not a mapping": b'{"format": 1, "files": []}',
    "deep nesting": b"[" * 200_000,
    "not utf-8": b'{"format": 1, "files": {"\xff": 1}}',
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cache_is_rebuilt_with_one_warning(
    tmp_path: Path, counted: Any, damage: str
) -> None:
    config = config_of(write_blog(tmp_path))
    cold = counted(config)
    [cache_file] = (tmp_path / "var" / "cache" / "posts").glob("*.json")
    good = cache_file.read_bytes()
    cache_file.write_bytes(DAMAGE[damage] or good[: len(good) // 2])
    damaged = counted(config)
    assert damaged.result == cold.result
    assert (damaged.hits, damaged.misses) == (0, FILES)
    assert len(damaged.warnings) == 1 and "damaged; it is rebuilt" in damaged.warnings[0]
    rebuilt = counted(config)
    assert (rebuilt.hits, rebuilt.warnings) == (FILES, [])


PLANTED: list[tuple[str, Any]] = [
    ("body", 7),
    ("date", ["2026-11-01T09:30:00", "../../../etc/passwd", 0]),
    ("date", ["not a date", None, 0]),
    ("date", ["2026-11-01T09:30:00", None, 2]),
    ("date", ["2026-11-01T09:30:00+08:00", "Asia/Shanghai", 0]),
    ("date", ["2026-11-01T09:30:00", "Asia/Shanghai"]),
    ("tags", "not a list"),
    ("draft", 1),
    ("body_format", "pickle"),
    ("body_format", None),
    ("extra_field", "x"),
]


@pytest.mark.parametrize(("field", "value"), PLANTED, ids=[f"{f}={v!r}" for f, v in PLANTED])
def test_a_planted_entry_is_a_miss_never_a_crash(
    tmp_path: Path, counted: Any, field: str, value: Any
) -> None:
    """A cache file is data a user (or another program) could have written: every value is
    type-checked, and one that is not what `digest` writes is parsed afresh."""
    config = config_of(write_blog(tmp_path))
    cold = counted(config)
    [cache_file] = (tmp_path / "var" / "cache" / "posts").glob("*.json")
    data = json.loads(cache_file.read_text("utf-8"))
    data["files"]["2026-11-01-cache.md"]["post"][field] = value
    cache_file.write_text(json.dumps(data), "utf-8")
    planted = counted(config)
    assert (planted.hits, planted.misses) == (FILES - 1, 1)
    assert planted.result == cold.result


def test_a_cache_of_another_format_is_replaced_silently(tmp_path: Path, counted: Any) -> None:
    config = config_of(write_blog(tmp_path))
    counted(config)
    [cache_file] = (tmp_path / "var" / "cache" / "posts").glob("*.json")
    cache_file.write_text('{"format": 0, "files": "whatever"}', "utf-8")
    other = counted(config)
    assert (other.misses, other.warnings) == (FILES, [])


def test_a_post_with_every_field_set_round_trips() -> None:
    moments = [
        datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime.fromisoformat("2026-11-02T08:00:00+02:00"),
        datetime.fromisoformat("2026-11-03T08:00:00+00:00"),
        datetime(2026, 11, 5, 1, 0, fold=1, tzinfo=ZoneInfo("America/New_York")),
    ]
    post = Post(
        id="i",
        title="t",
        url="https://b.example.com/p/",
        date=moments[0],
        body="b",
        body_format="html",
        summary="s",
        updated=moments[1],
        categories=("c1", "c2"),
        tags=("t",),
        cover="https://b.example.com/c.png",
        cover_alt="alt",
        draft=True,
        newsletter=False,
        source="x.md",
        publish_date=moments[2],
        expiry_date=moments[3],
    )
    data = json.loads(json.dumps(post_cache._encode_post(post)))
    back = post_cache._decode_post(data)
    assert back == post
    for name in ("date", "updated", "publish_date", "expiry_date"):
        mine, theirs = getattr(back, name), getattr(post, name)
        assert (str(mine.tzinfo), mine.utcoffset(), mine.fold) == (
            str(theirs.tzinfo),
            theirs.utcoffset(),
            theirs.fold,
        )


@pytest.mark.slow
def test_refresh_parses_every_post_again(tmp_path: Path) -> None:
    config = write_blog(tmp_path)
    run_cli(config, "posts")
    [cache_file] = (tmp_path / "var" / "cache" / "posts").glob("*.json")
    data = json.loads(cache_file.read_text("utf-8"))
    data["files"]["2026-11-02-offsets.md"]["post"]["title"] = "Stale title"
    cache_file.write_text(json.dumps(data), "utf-8")
    stale = run_cli(config, "posts", "--json")
    assert "Stale title" in stale.stdout  # the known limit of trusting stat: --refresh helps
    refreshed = run_cli(config, "posts", "--json", "--refresh")
    assert refreshed.returncode == 0
    assert "Stale title" not in refreshed.stdout and "Offsets" in refreshed.stdout
    assert "Stale title" not in run_cli(config, "posts", "--json").stdout


def test_unused_cache_files_are_removed_after_a_month(tmp_path: Path, counted: Any) -> None:
    config = config_of(write_blog(tmp_path))
    folder = tmp_path / "var" / "cache" / "posts"
    folder.mkdir(parents=True)
    old, recent, leftover = folder / "old.json", folder / "recent.json", folder / ".x.tmp"
    for path in (old, recent, leftover):
        path.write_text("{}", "utf-8")
    age(old, days=31)
    age(leftover, days=1)
    age(recent, days=29)
    counted(config)
    settings = source_settings(config)
    [source] = settings.sources
    assert isinstance(source, FolderSource)
    mine = post_cache.cache_file(settings, source)
    assert sorted(p.name for p in folder.iterdir()) == sorted([recent.name, mine.name])


# -- processes ------------------------------------------------------------------------------


def run_cli(
    config: Path, *args: str, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`digest --config CONFIG ARGS` in a process of its own, as a user runs it."""
    return subprocess.run(
        [*prefix, sys.executable, "-B", "-m", "digest.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.slow
def test_two_processes_at_once_both_succeed_and_leave_a_valid_cache(
    tmp_path: Path, counted: Any
) -> None:
    config = write_blog(tmp_path)
    for number in range(40):
        extra = tmp_path / "posts" / f"2026-10-{number % 28 + 1:02d}-extra-{number}.md"
        extra.write_text(f"---\ntitle: Extra {number}\n---\n{'正文。' * 200}\n", "utf-8")
        age(extra)
    (tmp_path / "ref").mkdir()  # the same posts with a cache of its own: the cold reference
    elsewhere = write_config(tmp_path / "ref", source={"path": str(tmp_path / "posts")})
    reference = run_cli(elsewhere, "posts", "--json")
    command = [sys.executable, "-B", "-m", "digest.cli", "--config", str(config)]
    both = [
        subprocess.Popen(
            [*command, "posts", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in both]
    assert [p.returncode for p in both] == [0, 0], [err for _, err in outputs]
    assert [out for out, _ in outputs] == [reference.stdout] * 2
    assert [err for _, err in outputs] == [reference.stderr] * 2
    warm = counted(config_of(config))
    assert (warm.misses, warm.warnings) == (0, [])


WRITER = """
import sys, time
from pathlib import Path
from digest.config.load import load_config
from digest.sources.read import read_posts
from digest.config.stages import source_settings
config = load_config(sys.argv[1], environ={})
post = Path(sys.argv[2])
for number in range(int(sys.argv[3])):
    post.write_text(post.read_text("utf-8") + "x", "utf-8")
    read_posts(source_settings(config))
"""


@pytest.mark.slow
def test_a_reader_never_sees_a_half_written_cache(tmp_path: Path) -> None:
    """One process rewrites the cache again and again while this one reads it: every read is
    a whole file (written under another name, then renamed over the old one)."""
    config = write_blog(tmp_path)
    for number in range(60):  # a cache file large enough that a write takes a while
        extra = tmp_path / "posts" / f"x-{number}.md"
        extra.write_text(f"---\ntitle: Extra {number}\n---\n{'正文。' * 400}\n", "utf-8")
    run_cli(config, "posts")
    [cache_file] = (tmp_path / "var" / "cache" / "posts").glob("*.json")
    writer = subprocess.Popen(
        [
            sys.executable,
            "-B",
            "-c",
            WRITER,
            str(config),
            str(tmp_path / "posts" / "x-0.md"),
            "30",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    reads = 0
    while writer.poll() is None or reads == 0:
        data = json.loads(cache_file.read_bytes())
        assert len(data["files"]) == FILES + 60
        reads += 1
    assert writer.wait(timeout=300) == 0
    assert reads > 1


# Root writes anywhere: for root, the command runs without the capabilities that override
# file permissions (setpriv, from util-linux), so a read-only folder is read-only to it too.
DROPPED = "-dac_override,-dac_read_search,-fowner"
AS_A_USER = (
    ("setpriv", f"--inh-caps={DROPPED}", f"--bounding-set={DROPPED}", "--")
    if os.geteuid() == 0
    else ()
)


@pytest.mark.slow
def test_a_read_only_cache_folder_still_works(tmp_path: Path) -> None:
    config = write_blog(tmp_path)
    reference = run_cli(config, "posts", "--json")
    assert reference.returncode == 0
    cache = tmp_path / "var" / "cache"
    for path in [cache, *cache.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        probe = subprocess.run([*AS_A_USER, "touch", str(cache / "probe")], capture_output=True)
        assert probe.returncode != 0, "the cache folder is not read-only to the command"

        unchanged = run_cli(config, "posts", "--json", prefix=AS_A_USER)
        assert (unchanged.returncode, unchanged.stdout) == (0, reference.stdout)
        assert unchanged.stderr == reference.stderr

        post = tmp_path / "posts" / "2026-11-02-offsets.md"
        post.write_text(post.read_text("utf-8").replace("Offsets", "Edited offsets"), "utf-8")
        edited = run_cli(config, "posts", "--json", prefix=AS_A_USER)
        assert edited.returncode == 0
        assert "Edited offsets" in edited.stdout
        assert edited.stderr.count("cannot write the post cache") == 1
        assert "Traceback" not in edited.stderr

        nowhere = write_config(tmp_path, {"cache_dir": "var/cache/new"})
        uncached = run_cli(nowhere, "posts", "--json", prefix=AS_A_USER)
        assert uncached.returncode == 0
        assert uncached.stdout == edited.stdout
    finally:
        for path in [cache, *cache.rglob("*")]:
            path.chmod(0o755)
