"""Hostile YAML and oversized input: refused fast, named, and the other posts still read.

The alias bomb ("billion laughs") is a few hundred bytes that expand to 387 million strings;
before digest.sources.safeyaml it stalled `digest posts` for good (3 GB after two minutes). The
end-to-end cases run the real command in a subprocess with a timeout, so a regression fails
instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config.load import load_config
from digest.errors import ConfigError
from digest.models import SourceResult
from digest.sources.feed import MAX_BYTES, read_feed
from digest.sources.frontmatter import MAX_FRONT_MATTER, FrontMatterError, split_front_matter
from digest.sources.markdown import MAX_POST_BYTES
from digest.sources.safeyaml import MAX_ALIASES, MAX_DEPTH, YamlLimitError, safe_load
from tests.support import paths

ROOT = paths.ROOT


def bomb(levels: int = 9) -> str:
    """The classic: each level is nine aliases of the one before, 9**levels strings in all."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        aliases = ",".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def digest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def blog(tmp_path: Path, config_extra: str = "") -> Path:
    (tmp_path / "posts").mkdir()
    (tmp_path / "config.yaml").write_text(
        "site: {title: T, base_url: 'https://b.example.com', locale: en}\n"
        "sources: [{type: markdown, path: posts}]\n"
        "digest: {lookback_days: 0}\n" + config_extra,
        encoding="utf-8",
    )
    (tmp_path / "posts" / "fine.md").write_text(
        "---\ntitle: A fine post\ndate: 2026-01-01\n---\nHello.\n", encoding="utf-8"
    )
    return tmp_path


@pytest.mark.slow
def test_alias_bomb_in_front_matter_is_refused_and_the_other_posts_go_through(
    tmp_path: Path,
) -> None:
    root = blog(tmp_path)
    (root / "posts" / "bomb.md").write_text(
        "---\ntitle: Bomb\ndate: 2026-01-02\n" + bomb() + "tags: *a8\n---\nBody.\n",
        encoding="utf-8",
    )
    result = digest("posts", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    assert [post["title"] for post in json.loads(result.stdout)] == ["A fine post"]
    [warning] = result.stderr.strip().splitlines()
    assert "bomb.md: the front matter is refused: its aliases expand to more than" in warning
    assert "(line 8)" in warning  # a5's line in the file: 9**5 strings, over the limit


@pytest.mark.slow
def test_alias_bomb_in_config_is_refused_with_its_line(tmp_path: Path) -> None:
    root = blog(tmp_path, "x-" + bomb().replace("\na", "\nx-a"))
    result = digest("posts", cwd=root)
    assert result.returncode == 2
    assert result.stderr.startswith("digest: error: config.yaml, line 8: the YAML is refused: ")
    assert "aliases expand to more than 10,000 values." in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_limits_name_what_they_refuse() -> None:
    cases = {
        bomb(): "aliases expand to more than 10,000 values",
        "a: &a [1, *a]\n": "an alias refers to a collection that holds it",
        "a: &a {b: *a}\n": "an alias refers to a collection that holds it",
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1): f"nests more than {MAX_DEPTH} levels",
        "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n": "more than 100 aliases",
    }
    for text, problem in cases.items():
        with pytest.raises(YamlLimitError) as caught:
            safe_load(text)
        assert problem in str(caught.value.problem)
        assert caught.value.problem_mark is not None


def test_ordinary_anchors_merge_keys_and_nesting_still_load() -> None:
    text = (
        "base: &base {locale: en, tags: [a, b]}\n"
        "one: {<<: *base, title: One}\n"
        "two: {<<: *base, title: Two}\n"
        "list: [*base, *base]\n"
        # the mapping, then lists down to the scalar at the deepest level allowed
        "deep: " + "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2)
    )
    data = safe_load(text)
    assert data["one"] == {"locale": "en", "tags": ["a", "b"], "title": "One"}
    assert data["list"] == [data["base"], data["base"]]
    assert json.dumps(data["deep"]).replace(" ", "") == "[" * 62 + "1" + "]" * 62
    assert safe_load("") is None
    with pytest.raises(yaml.YAMLError):
        safe_load("!!python/object:os.system ls")  # still the safe loader


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": ' + "[" * 100_000, "not valid JSON: nested too deeply"),
        ("+++\nx = " + "[" * 10_000 + "\n+++\n", "not valid TOML: nested too deeply"),
        ("---\na: &a [*a]\n---\n", "refused: an alias refers to a collection that holds it"),
        ("---\nx: '" + "y" * MAX_FRONT_MATTER + "'\n---\n", "front matter is longer than 64 KB"),
        ('{"x": "' + "y" * MAX_FRONT_MATTER + '"}\n', "front matter is longer than 64 KB"),
    ],
)
def test_front_matter_over_a_limit_is_one_sentence(text: str, message: str) -> None:
    with pytest.raises(FrontMatterError) as caught:
        split_front_matter(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_hexo_front_matter_without_dashes_is_refused_too_when_it_is_a_bomb() -> None:
    with pytest.raises(FrontMatterError, match="aliases expand"):
        split_front_matter("title: T\n" + bomb() + "---\nBody\n", hexo=True)
    # a long prose opening before a thematic break is not front matter at all
    prose = "word " * (MAX_FRONT_MATTER // 4) + "\n---\nmore\n"
    assert split_front_matter(prose, hexo=True) == ({}, prose)


@pytest.mark.slow
def test_an_oversized_post_is_skipped_and_named(tmp_path: Path) -> None:
    root = blog(tmp_path)
    with (root / "posts" / "huge.md").open("wb") as handle:
        handle.write(b"---\ntitle: Huge\n---\n")
        handle.truncate(MAX_POST_BYTES + 1)
    result = digest("posts", "--json", cwd=root)
    assert result.returncode == 0
    assert [post["title"] for post in json.loads(result.stdout)] == ["A fine post"]
    assert "huge.md: the file is larger than 4 MB; skipped" in result.stderr


def test_a_local_feed_is_held_to_the_download_limit(tmp_path: Path) -> None:
    big = tmp_path / "feed.xml"
    with big.open("wb") as handle:
        handle.write(b"<rss version='2.0'><channel>")
        handle.truncate(MAX_BYTES + 1)
    result = SourceResult()
    with pytest.raises(Exception, match=r"feed.xml: the feed is larger than 20 MB\."):
        read_feed("feed.xml", root=tmp_path, cache_dir=tmp_path, timeout=1, result=result)


def test_a_fifo_as_feed_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    """Opening a FIFO without a writer blocks for ever: the read runs in a daemon thread so
    that a regression fails here instead of hanging the suite."""
    os.mkfifo(tmp_path / "feed.xml")
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_feed(
                "feed.xml", root=tmp_path, cache_dir=tmp_path, timeout=1, result=SourceResult()
            )
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "reading a FIFO feed blocked"
    [exc] = outcome
    assert "cannot read the feed: not a regular file." in str(exc)


def test_config_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"site:\n  title: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == (
        f"{path}, line 2: the configuration is not valid UTF-8 (byte 0xe9); save it as UTF-8."
    )
    assert caught.value.exit_code == 2


def test_an_oversized_or_special_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    with path.open("wb") as handle:
        handle.truncate(1024 * 1024 + 1)
    with pytest.raises(ConfigError, match="larger than 1024 KB"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path, environ={})


def test_a_date_that_does_not_exist_is_a_front_matter_error() -> None:
    """Found by tests/e2e/test_fuzz.py: PyYAML builds `2026-02-30` with datetime(), whose
    ValueError escaped every handler and ended `digest posts` as "unexpected ValueError"."""
    with pytest.raises(FrontMatterError) as caught:
        split_front_matter("---\ntitle: T\ndate: 2026-02-30\n---\nBody\n")
    assert str(caught.value) == (
        "the front matter is not valid YAML: day is out of range for month (line 3, column 7)"
    )


ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY a "lollollollollollollollollollol">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
<!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
<!ENTITY x SYSTEM "file:///etc/passwd">
]>
<rss version="2.0"><channel><title>&g;</title>
<item><title>&g; &x;</title><link>https://x.example/a</link></item></channel></rss>"""


def test_xml_entity_bombs_and_external_entities_are_not_expanded() -> None:
    """The feed side of the same attack (SECURITY.md): entities stay unexpanded text."""
    from digest.sources.feed import parse_feed

    [post], problems = parse_feed(ENTITY_BOMB, where="bomb.xml")
    assert problems == []
    assert len(post.title) < 100
    assert "root:" not in post.title and "lol" not in post.title


def _yaml_value(depth: int) -> st.SearchStrategy[str]:
    scalar = st.sampled_from(["a", "1", "", "'q'", "x y", "~", "2026-11-01", "a-b: c"])
    if depth == 0:
        return scalar
    inner = _yaml_value(depth - 1)
    return st.one_of(
        scalar,
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(inner, max_size=3).map(
            lambda items: "{" + ", ".join(f"k{i}: {v}" for i, v in enumerate(items)) + "}"
        ),
        inner.map(lambda value: f"- {value}"),  # compact nested sequences: - - - x
        inner.map(lambda value: f"? {value}"),
    )


def _block(depth: int, indent: int = 0) -> st.SearchStrategy[str]:
    pad = " " * indent
    if depth == 0:
        return _yaml_value(2).map(lambda value: f"{pad}k: {value}")
    child = _block(depth - 1, indent + 2)
    return st.one_of(
        _yaml_value(3).map(lambda value: f"{pad}k: {value}"),
        child.map(lambda text: f"{pad}k:\n{text}"),
        child.map(lambda text: f"{pad}-\n{text}"),
        st.lists(child, min_size=1, max_size=3).map("\n".join),
    )


@settings(max_examples=400, deadline=None)
@given(st.one_of(_block(6), _yaml_value(7), st.text("[]{}-:?, ab\n*&!", max_size=60)))
def test_the_counting_shortcut_never_passes_what_the_walk_refuses(text: str) -> None:
    """safeyaml.within_limits spares the walk of check_node: whenever it says a text cannot be
    over a limit, the walk finds it within them."""
    from digest.sources.safeyaml import _LOADER, check_node, within_limits

    if not within_limits(text):
        return
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()
    if node is not None:
        check_node(node)  # raises YamlLimitError when over


@pytest.mark.parametrize(
    "text",
    [
        "[" * 70 + "]" * 70,
        "- " * 70 + "x",
        "a: " * 5 + "[1" + ", 1" * 6000 + "]",
        "a: &x [1]\nb: *x",
    ],
)
def test_texts_near_the_limits_go_through_the_walk(text: str) -> None:
    from digest.sources.safeyaml import within_limits

    assert not within_limits(text)


@pytest.mark.parametrize("opening", ["[", "- ", "{k: ", "? "])
def test_the_deepest_nesting_the_shortcut_passes_is_within_the_walks_limit(opening: str) -> None:
    from digest.sources.safeyaml import _LOADER, check_node, within_limits

    levels = (MAX_DEPTH - 2) // sum(opening.count(c) for c in "[{-:?")
    closing = {"[": "]", "{k: ": "}"}.get(opening, "")
    text = opening * levels + "x" + closing * levels
    assert within_limits(text)
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    check_node(node)
