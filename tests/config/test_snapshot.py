"""The configuration snapshot (digest.config.snapshot): `digest posts` reads the next issue's
settings without validating again, and only where validating would give the same settings.

Attacked here: every kind of value the snapshot holds comes back equal to what the configuration
validated now gives; an edit of the file, an environment variable, a template broken since, a
damaged or planted snapshot, a folder that cannot be written, and a file edited while it was
validated each keep the snapshot from being used; it holds no secret and is the owner's alone;
and a `digest posts` that used it loaded no pydantic and printed what a validation would have.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import snapshot
from digest.config.load import load_config
from digest.config.schema import Config
from digest.sources.document import make_excerpt
from tests.support import paths

BASE = """\
site:
  title: Snap
  base_url: https://snap.example.com
  locale: en
  timezone: Asia/Shanghai
sources:
  - type: markdown
    path: posts
"""

VARIANTS = {
    "plain": BASE,
    "everything": BASE
    + """\
    permalink: /:year/:month/:title/
    generator: hugo
    languages: [en, zh]
    language: zh
  - type: feed
    url: file:///srv/feed.xml
    timeout: 7
excerpt:
  length: 120
  labels: zh
  math: dollars
digest:
  max_posts: 3
  lookback_days: 9
  first_issue: 2026-01-15
schedule:
  frequency: monthly
  timezone: Europe/Paris
database:
  url: sqlite:///state/blog.sqlite3
cache_dir: ~/snapcache
templates_dir: my-templates
""",
    "first issue a number": BASE + "digest:\n  first_issue: 5\n",
    "postgresql": BASE + "database:\n  url: postgresql://digest@db.example.com/digest\n",
}


BODY = "中文 with `code` and $x^2$ 🎉.\n"


def write_blog(folder: Path, config_text: str = BASE) -> Path:
    posts = folder / "posts"
    posts.mkdir(parents=True, exist_ok=True)
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    (posts / f"{day}-recent.md").write_text(f"---\ntitle: 最近\ndate: {day}\n---\n{BODY}", "utf-8")
    config = folder / "config.yaml"
    config.write_text(config_text, "utf-8")
    return config


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # `~/snapcache` stays in the test
    for name in list(os.environ):
        if name.startswith("DIGEST_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_snapshot_gives_what_validating_gives(tmp_path: Path, name: str) -> None:
    path = write_blog(tmp_path, VARIANTS[name])
    config = load_config(path)
    written = snapshot.write(config)
    assert written is not None and written.is_file()
    assert snapshot.read(path) == snapshot.known_from(load_config(path))
    assert written.parent.parent == config.path(config.cache_dir)


def test_an_environment_override_is_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_blog(tmp_path)
    snapshot.write(load_config(path))
    monkeypatch.setenv("DIGEST_DIGEST__MAX_POSTS", "2")
    assert snapshot.read(path) is None
    snapshot.write(load_config(path))
    known = snapshot.read(path)
    assert known is not None and known.issues.max_posts == 2
    monkeypatch.delenv("DIGEST_DIGEST__MAX_POSTS")
    unset = snapshot.read(path)
    assert unset is not None and unset.issues.max_posts == 12  # the first snapshot again


@pytest.mark.parametrize("variable", ["DIGEST_CACHE_DIR", "DIGEST_Cache_Dir"])  # any case
def test_the_cache_folder_from_the_environment_is_where_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    path = write_blog(tmp_path)
    monkeypatch.setenv(variable, str(tmp_path / "elsewhere"))
    written = snapshot.write(load_config(path))
    assert written is not None and written.is_relative_to(tmp_path / "elsewhere")
    assert snapshot.read(path) is not None


def test_the_default_cache_folder_is_the_schemas() -> None:
    assert Path(snapshot.DEFAULT_CACHE_DIR) == Config.model_fields["cache_dir"].default


def test_an_edited_file_is_validated_again(tmp_path: Path) -> None:
    path = write_blog(tmp_path)
    snapshot.write(load_config(path))
    path.write_text(BASE + "digest:\n  max_posts: 4\n", "utf-8")
    assert snapshot.read(path) is None
    path.write_text(BASE, "utf-8")  # back to the very bytes validated
    assert snapshot.read(path) is not None


def test_a_file_edited_while_it_was_validated_keeps_no_snapshot_of_the_new_text(
    tmp_path: Path,
) -> None:
    path = write_blog(tmp_path)
    config = load_config(path)  # max_posts 12, as validated
    path.write_text(BASE + "digest:\n  max_posts: 4\n", "utf-8")  # edited since
    snapshot.write(config)  # keyed by the text validated, not the text now
    assert snapshot.read(path) is None


def test_another_file_with_the_same_text_has_its_own_snapshot(tmp_path: Path) -> None:
    """Relative paths resolve against the file's folder: the same text elsewhere is another
    configuration."""
    one = write_blog(tmp_path / "one")
    two = write_blog(tmp_path / "two")
    snapshot.write(load_config(one))
    assert snapshot.read(two) is None


@pytest.mark.parametrize(
    "damage",
    [
        "",
        "{",
        "[]",
        '{"format": 99}',
        "not json at all \x00",
    ],
)
def test_a_damaged_snapshot_is_a_miss(tmp_path: Path, damage: str) -> None:
    path = write_blog(tmp_path)
    written = snapshot.write(load_config(path))
    assert written is not None
    written.write_text(damage, "utf-8")
    assert snapshot.read(path) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (("issues", "max_posts"), "12"),
        (("issues", "max_posts"), True),
        (("issues", "first_issue"), "not a date"),
        (("issues", "first_issue"), 1.5),
        (("sources", "excerpt", "math"), "latex"),
        (("sources", "list"), "posts"),
        (("sources", "list", 0, "type"), "shell"),
        (("sources", "list", 0, "generator"), "wordpress"),
        (("sources", "list", 0, "languages"), "en"),
        (("sources", "root"), None),
        (("sqlite_url",), 5),
    ],
)
def test_a_wrong_value_in_the_snapshot_is_a_miss(
    tmp_path: Path, key: tuple[str | int, ...], value: object
) -> None:
    path = write_blog(tmp_path)
    written = snapshot.write(load_config(path))
    assert written is not None
    stored = json.loads(written.read_text("utf-8"))
    target = stored
    for part in key[:-1]:
        target = target[part]
    target[key[-1]] = value
    written.write_text(json.dumps(stored), "utf-8")
    assert snapshot.read(path) is None


def test_it_holds_no_secret_and_is_the_owners_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_blog(tmp_path)
    monkeypatch.setenv("DIGEST_SMTP__PASSWORD", "hunter2-smtp")
    monkeypatch.setenv("DIGEST_WEB__SECRET", "s3cr3t-web-" + "x" * 32)
    monkeypatch.setenv("DIGEST_DATABASE__URL", "postgresql://digest:pg-pass-9@db/digest")
    written = snapshot.write(load_config(path))
    assert written is not None
    text = written.read_text("utf-8")
    for secret in ("hunter2-smtp", "s3cr3t-web-", "pg-pass-9"):
        assert secret not in text and secret not in written.name
    assert json.loads(text)["sqlite_url"] is None  # another database: opened the usual way
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_a_folder_that_cannot_be_written_only_means_no_snapshot(tmp_path: Path) -> None:
    path = write_blog(tmp_path, BASE + "cache_dir: cache\n")
    (tmp_path / "cache").write_text("a file where the folder would be", "utf-8")
    assert snapshot.write(load_config(path)) is None
    assert snapshot.read(path) is None


def test_a_cache_dir_that_is_not_plain_is_no_snapshot(tmp_path: Path) -> None:
    path = write_blog(tmp_path)
    assert snapshot._cache_dir("cache_dir: [a, b]\n", path, {}) is None
    assert snapshot._cache_dir("- a list\n", path, {}) is None
    assert snapshot._cache_dir("a: *undefined\n", path, {}) is None
    assert snapshot._cache_dir("a: 1\n", path, {"DIGEST_CACHE_DIR": "[1, 2]"}) is None
    assert snapshot._cache_dir("a: 1\n", path, {"DIGEST_A____B": "x"}) is None  # names no key
    snapshot.write(load_config(path))
    path.write_bytes(path.read_bytes() + b"# \xff\xfe\n")  # not UTF-8: validation says so
    assert snapshot.read(path) is None


# -- the command -----------------------------------------------------------------------------

PROBE = """
import json, sys
from digest.cli import main
try:
    main({args!r}, prog_name="digest")
except SystemExit as exc:
    code = exc.code
print(json.dumps([code, "pydantic" in sys.modules]), file=sys.stderr)
"""


def digest_posts(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str, bool]:
    """`digest --config … posts --json` in a fresh interpreter: exit code, stdout, stderr's
    sentence, and whether pydantic was loaded."""
    return run_digest(folder, "posts", "--json", *args, env=env)


def run_digest(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str, bool]:
    """`digest --config … ARGS` in a fresh interpreter, as `digest_posts`."""
    argv = ["--config", str(folder / "config.yaml"), *args]
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=argv)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(paths.ROOT), **(env or {})},
    )
    lines = result.stderr.strip().splitlines()
    code, loaded = json.loads(lines[-1])
    return code or 0, result.stdout, "\n".join(lines[:-1]), loaded


def test_posts_uses_the_snapshot_and_loads_no_pydantic(tmp_path: Path) -> None:
    write_blog(tmp_path)
    first = digest_posts(tmp_path)
    second = digest_posts(tmp_path)
    assert first[3] is True and second[3] is False
    assert first[:3] == second[:3]
    assert [row["title"] for row in json.loads(second[1])] == ["最近"]
    excerpt = json.loads(second[1])[0]["excerpt"]
    assert "code" in excerpt and "🎉" in excerpt


def test_excerpt_uses_the_snapshot_posts_left_and_render_keeps_one(tmp_path: Path) -> None:
    """`digest excerpt` reads a snapshot (it writes none); `digest render` validates (it needs
    the whole configuration) and leaves one for the next `posts`."""
    write_blog(tmp_path, BASE + "excerpt:\n  length: 5\n")
    post = str(next((tmp_path / "posts").glob("*.md")))
    before = run_digest(tmp_path, "excerpt", post)
    assert before[3] is True and not (tmp_path / "var" / "cache" / "config").exists()
    rendered = run_digest(tmp_path, "render", "--out", str(tmp_path / "out"))
    assert rendered[0] == 0 and rendered[3] is True
    after = run_digest(tmp_path, "excerpt", post)
    assert after[3] is False  # the snapshot render left
    assert after[:3] == before[:3]
    assert after[1].strip() == make_excerpt(BODY, length=5, locale="en", math="auto")
    assert digest_posts(tmp_path)[3] is False


def test_posts_sees_an_edit_an_override_and_an_error(tmp_path: Path) -> None:
    config = write_blog(tmp_path)
    digest_posts(tmp_path)
    config.write_text(BASE + "excerpt:\n  length: 4\n", "utf-8")
    code, out, _, loaded = digest_posts(tmp_path)
    assert (code, loaded) == (0, True)
    assert json.loads(out)[0]["excerpt"] == make_excerpt(BODY, length=4, locale="en", math="auto")
    code, out, _, loaded = digest_posts(tmp_path, env={"DIGEST_EXCERPT__LENGTH": "3"})
    assert (code, loaded) == (0, True)
    assert json.loads(out)[0]["excerpt"] == make_excerpt(BODY, length=3, locale="en", math="auto")
    config.write_text(BASE + "excerpt:\n  lenght: 4\n", "utf-8")
    code, out, said, _ = digest_posts(tmp_path)
    assert code == 2 and out == ""
    assert "unknown key excerpt.lenght (did you mean excerpt.length?)" in said
    assert "Traceback" not in said


def test_a_template_broken_since_is_still_reported(tmp_path: Path) -> None:
    write_blog(tmp_path, BASE + "templates_dir: mine\n")
    (tmp_path / "mine" / "email").mkdir(parents=True)
    template = tmp_path / "mine" / "email" / "post.mjml.j2"
    template.write_text("{{ post.title }}\n", "utf-8")
    assert digest_posts(tmp_path)[0] == 0
    assert digest_posts(tmp_path)[3] is False  # the snapshot is used
    template.write_text("{% if post.title %}\n", "utf-8")
    code, out, said, _ = digest_posts(tmp_path)
    assert code == 2 and out == ""
    assert f"{template}, line" in said and "Traceback" not in said


# -- what a review found (each failed before its fix) ----------------------------------------


def test_the_home_folder_is_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`~` in a path is the home folder's: another HOME is another configuration."""
    path = write_blog(tmp_path, BASE.replace("path: posts", "path: ~/posts"))
    monkeypatch.setenv("HOME", str(tmp_path / "one"))
    snapshot.write(load_config(path))
    assert snapshot.read(path) is not None
    monkeypatch.setenv("HOME", str(tmp_path / "two"))
    assert snapshot.read(path) is None


@pytest.mark.parametrize(
    "clocked",
    [
        "schedule:\n  cron: '0 9 29 2 *'\n",  # whether it fires in five years: the date's
        "web:\n  rotated_at: 2026-01-01T00:00:00\n",  # refused when in the future
    ],
)
def test_validation_that_depends_on_the_clock_is_not_kept(tmp_path: Path, clocked: str) -> None:
    path = write_blog(tmp_path, BASE + clocked)
    assert snapshot.write(load_config(path)) is None
    assert snapshot.read(path) is None


def test_a_snapshot_someone_else_could_have_written_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_blog(tmp_path)
    written = snapshot.write(load_config(path))
    assert written is not None
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert snapshot.read(path) is not None
    written.chmod(0o620)  # writable by the group
    assert snapshot.read(path) is None
    written.chmod(0o600)
    written.parent.chmod(0o777)  # a folder anyone can write (and so replace the file in)
    assert snapshot.read(path) is None
    written.parent.chmod(0o700)
    assert snapshot.read(path) is not None
    someone_else = os.geteuid() + 4242
    monkeypatch.setattr(os, "geteuid", lambda: someone_else)
    assert snapshot.read(path) is None


def test_a_link_switched_while_validating_files_nothing_under_the_new_target(
    tmp_path: Path,
) -> None:
    """Settings resolved through the link as it was are kept under that file's key, not under
    the key of the file the link points to by the time the snapshot is written."""
    one = write_blog(tmp_path / "one")
    two = write_blog(tmp_path / "two")  # the same bytes, another folder of posts
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "one")
    config = load_config(link / "config.yaml")
    link.unlink()
    link.symlink_to(tmp_path / "two")
    snapshot.write(config)
    assert snapshot.read(link / "config.yaml") is None  # two's: never validated
    kept = snapshot.read(one)
    assert kept is not None and kept.issues.sources.root == tmp_path / "one"
    assert snapshot.read(two) is None


def test_a_time_zone_the_system_no_longer_knows_is_a_miss(tmp_path: Path) -> None:
    path = write_blog(tmp_path)
    written = snapshot.write(load_config(path))
    assert written is not None
    stored = json.loads(written.read_text("utf-8"))
    stored["issues"]["timezone"] = "Mars/Olympus_Mons"
    written.write_text(json.dumps(stored), "utf-8")
    assert snapshot.read(path) is None


def test_the_zone_database_searched_is_part_of_the_key(tmp_path: Path) -> None:
    import zoneinfo

    path = write_blog(tmp_path)
    snapshot.write(load_config(path))
    before = list(zoneinfo.TZPATH)
    try:
        zoneinfo.reset_tzpath([str(tmp_path / "zones")])
        assert snapshot.read(path) is None
    finally:
        zoneinfo.reset_tzpath(before)
    assert snapshot.read(path) is not None


def test_a_config_that_is_not_a_regular_file_is_not_read(tmp_path: Path) -> None:
    path = write_blog(tmp_path)
    snapshot.write(load_config(path))
    path.unlink()
    os.mkfifo(path)  # opening it to read would wait for a writer
    assert snapshot.read(path) is None
