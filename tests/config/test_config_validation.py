"""Configuration refused when it is loaded, in one sentence with its key and line (exit 2).

Each of these used to pass the load and fail later, or never: `misfire_grace_hours: 1e308`
(OverflowError in the scheduler), a cron for 31 February (accepted, never fires), a broken
user template (a bare Jinja2 error at render time, no file or line), a previous secret
without `rotated_at` (accepted for ever), a missing password file (found after the issue was
created), `{count:999999999}` in the subject (a gigabyte per message).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from digest.cli import main
from digest.config.credentials import keyring
from digest.config.load import load_config
from digest.config.presend import check_files, needed_files
from digest.config.schema import Config
from digest.config.stages import issue_settings, render_settings
from digest.config.templatecheck import (
    CUSTOM_FILTERS,
    check_templates,
    checking_environment,
    compile_templates,
)
from digest.errors import ConfigError, DigestError
from digest.render.edition import environment, render
from digest.render.folders import BUILTIN_TEMPLATES, user_templates
from digest.tokens import InvalidToken, Keyring, make_token, read_token
from tests.support import paths

ROOT = paths.ROOT
BASE = (
    "site:\n  title: T\n  base_url: https://b.example.com\n  postal_address: Road 1\n"
    "sources:\n  - type: markdown\n    path: posts\n"
)


def write(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "posts").mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(BASE + extra, encoding="utf-8")
    return path


def refused(tmp_path: Path, extra: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, extra), environ=environ or {})
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "\n" not in message and message.endswith(".")
    assert message.startswith(str(tmp_path / "config.yaml"))
    return message


def numeric_keys(model: type[BaseModel] = Config, prefix: tuple[str, ...] = ()) -> list[Any]:
    """Every int and float setting of the configuration, as (section, key, is_float)."""
    found = []
    for name, field in model.model_fields.items():
        kinds = get_args(field.annotation) or (field.annotation,)
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel) and not prefix:
                found += numeric_keys(kind, (field.alias or name,))
            elif kind in (int, float) and prefix and kind is not bool:
                found.append((*prefix, field.alias or name, kind is float))
    return found


NUMERIC = numeric_keys()


def test_there_are_numbers_to_bound() -> None:
    assert ("schedule", "misfire_grace_hours", True) in NUMERIC
    assert len(NUMERIC) >= 19


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("bounces:\n  imap:\n    host: h\n    username: u\n    timeout: 1e308\n", "imap.timeout"),
        ("bounces:\n  imap:\n    host: h\n    username: u\n    port: 1e308\n", "imap.port"),
        ("  - type: feed\n    url: f.xml\n    timeout: 1e308\n", "sources.1.timeout"),
    ],
)
def test_nested_numbers_are_bounded_too(tmp_path: Path, extra: str, key: str) -> None:
    assert key in refused(tmp_path, extra)


@pytest.mark.parametrize(("section", "key", "is_float"), NUMERIC)
@pytest.mark.parametrize("value", ["1e308", "99999999999999999999", "-1e308"])
def test_every_number_is_bounded(
    tmp_path: Path, section: str, key: str, is_float: bool, value: str
) -> None:
    message = refused(tmp_path, f"{section}:\n  {key}: {value}\n")
    assert f"{section}.{key}" in message
    assert "line 9" in message


@pytest.mark.parametrize(("section", "key", "is_float"), [k for k in NUMERIC if k[2]])
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_no_float_is_infinite_or_nan(
    tmp_path: Path, section: str, key: str, is_float: bool, value: str
) -> None:
    assert f"{section}.{key}" in refused(tmp_path, f"{section}:\n  {key}: {value}\n")


def test_the_documented_defaults_are_inside_the_bounds() -> None:
    config = load_config(ROOT / "config.yaml", environ={})
    assert config.schedule.misfire_grace_hours == 6


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("0 9 31 2 *", "'0 9 31 2 *' does not fire within the next 5 years (no such date)"),
        ("0 9 30 2 mon", "does not fire within the next 5 years"),
        ("0 9 31 4,6,9,11 *", "does not fire within the next 5 years"),
        ("0 25 * * *", "is not a valid cron expression"),
        ("0 9 * *", "a cron expression has 5 fields"),
    ],
)
def test_a_cron_that_cannot_fire_is_refused(tmp_path: Path, cron: str, problem: str) -> None:
    message = refused(tmp_path, f'schedule:\n  cron: "{cron}"\n')
    assert "line 9: schedule.cron: " in message and problem in message


def test_a_cron_for_a_leap_day_fires_and_is_kept(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'schedule:\n  cron: "0 9 29 2 *"\n'), environ={})
    assert config.schedule.cron == "0 9 29 2 *"


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("{count:999999999}", "is not a usable format (no nested fields, widths up to 200)"),
        ("{title:{nope}}", "is not a usable format"),
        ("{title:d}", "is not a valid subject template"),
        ("{nope}", "unknown placeholder {nope}"),
    ],
)
def test_subject_formats_are_bounded(tmp_path: Path, subject: str, problem: str) -> None:
    assert problem in refused(tmp_path, f'digest:\n  subject: "{subject}"\n')


def test_a_padded_count_is_still_fine(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'digest:\n  subject: "#{count:>3} {title}"\n'), {})
    assert config.digest.subject == "#{count:>3} {title}"


def template(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("<mj-text>\n{{ item.title \n</mj-text>\n", 3, "unexpected '/'"),
        ("a\nb\n{% if x %}\nc\n", 3, "unexpected end of template; jinja was looking for"),
        ("one\n{{ item.title | no_such_filter }}\n", 2, "no filter named 'no_such_filter'"),
        ("{% for x in y %}{% endif %}\n", 1, "encountered unknown tag 'endif'"),
    ],
)
def test_a_broken_user_template_names_its_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = template(tmp_path, "email/post.mjml.j2", text)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path), environ={})
    assert str(caught.value).startswith(f"{path}, line {line}: ")
    assert problem in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_template_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = template(tmp_path, "email/digest.txt.j2", "")
    path.write_bytes(b"ok\n\xff\n")
    with pytest.raises(ConfigError, match=r"digest.txt.j2, line 2: the template is not valid"):
        load_config(write(tmp_path), environ={})


def test_every_builtin_template_compiles_in_the_checking_environment() -> None:
    assert BUILTIN_TEMPLATES == ROOT / "templates"
    compile_templates(BUILTIN_TEMPLATES)
    assert (BUILTIN_TEMPLATES / "email" / "post.mjml.j2").exists()
    demo = render_settings(load_config(ROOT / "config.yaml", environ={}))
    extra = set(environment(demo.templates).filters)
    assert extra - set(checking_environment().filters) == set()
    assert set(CUSTOM_FILTERS) <= extra


def test_a_template_error_at_render_time_names_the_file_and_line(tmp_path: Path) -> None:
    path = template(tmp_path, "email/digest.txt.j2", "{{ site.title }}\n{{ no_such_value }}\n")
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "p.md").write_text("---\ntitle: P\ndate: 2026-01-01\n---\nx\n", "utf-8")
    config = load_config(write(tmp_path, "digest:\n  lookback_days: 0\n"), environ={})
    from digest.issues.send import gather, next_edition

    now = datetime(2026, 2, 1, tzinfo=UTC)
    with pytest.raises(DigestError) as caught:
        render(
            render_settings(config),
            next_edition(gather(issue_settings(config), now=now), issue_settings(config), now),
        )
    assert str(caught.value) == (
        f"cannot render the digest: {path}, line 2: 'no_such_value' is undefined"
    )


def test_a_previous_secret_needs_rotated_at(tmp_path: Path) -> None:
    message = refused(tmp_path, "", {"DIGEST_WEB__PREVIOUS_SECRET": "old"})
    assert "previous_secret (DIGEST_WEB__PREVIOUS_SECRET) needs rotated_at" in message
    future = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    assert "is in the future" in refused(tmp_path, f"web:\n  rotated_at: {future}\n")


def test_a_previous_secret_verifies_only_inside_the_overlap(tmp_path: Path) -> None:
    rotated = datetime.now(UTC) - timedelta(days=10)
    config = load_config(
        write(
            tmp_path, f"web:\n  rotated_at: {rotated.isoformat()}\n  rotation_overlap_days: 30\n"
        ),
        environ={"DIGEST_WEB__PREVIOUS_SECRET": "old", "DIGEST_WEB__SECRET": "new"},
    )
    keys = keyring(config)
    old = make_token(Keyring("old"), "unsubscribe", 5, 1)
    assert read_token(keys, "unsubscribe", old).subscriber_id == 5
    for outside in (rotated - timedelta(seconds=1), rotated + timedelta(days=30)):
        with pytest.raises(InvalidToken):
            read_token(keys, "unsubscribe", old, now=outside)
    # the new secret is unaffected, and a previous secret with no end is never accepted
    assert read_token(keys, "unsubscribe", make_token(keys, "unsubscribe", 6)).subscriber_id == 6
    with pytest.raises(InvalidToken):
        read_token(Keyring("new", previous="old"), "unsubscribe", old)


FILE_KEYS = [
    ("smtp:\n  password_file: secrets/smtp\n", "smtp.password_file", "secrets/smtp"),
    ("smtp:\n  ca_file: certs/ca.pem\n", "smtp.ca_file", "certs/ca.pem"),
    (
        "dkim:\n  domain: b.example.com\n  selector: s\n  key_file: keys/s.pem\n",
        "dkim.key_file",
        "keys/s.pem",
    ),
    (
        "bounces:\n  postmark_user: pm\n  postmark_password_file: secrets/pm\n",
        "bounces.postmark_password_file",
        "secrets/pm",
    ),
    (
        "bounces:\n  imap:\n    host: imap.example.com\n    username: u\n"
        "    password_file: secrets/imap\n    ca_file: certs/imap.pem\n",
        "bounces.imap.password_file",
        "secrets/imap",
    ),
]


@pytest.mark.parametrize(("extra", "key", "relative"), FILE_KEYS)
def test_check_files_names_the_key_and_path(
    tmp_path: Path, extra: str, key: str, relative: str
) -> None:
    config = load_config(write(tmp_path, extra), environ={})
    with pytest.raises(ConfigError) as caught:
        check_files(config)
    path = tmp_path / relative
    assert str(caught.value) == f"{tmp_path / 'config.yaml'}: {key}: {path} does not exist."
    assert caught.value.exit_code == 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()
    with pytest.raises(ConfigError, match=f"{key}: {path} is not a file"):
        check_files(config)
    path.rmdir()
    path.write_text("x", encoding="utf-8")
    for other_key, other in needed_files(config):
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text("x", encoding="utf-8")
        assert other_key.endswith(("_file",))
    check_files(config)  # every file present: nothing to say


def test_a_password_from_the_environment_needs_no_file(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "smtp:\n  password_file: nowhere\n"),
        environ={"DIGEST_SMTP__PASSWORD": "from-env"},
    )
    check_files(config)


def command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A real process with a timeout: before the check, `serve` and `schedule` started and
    ran (a regression must fail, not hang)."""
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", "--config", str(tmp_path / "config.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_WEB__SECRET": "s"},
    )


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--port", "1"),
        ("schedule",),
        ("send", "--yes"),
        ("send", "--dry-run"),
        ("send", "--to", "me@example.com"),
    ],
)
@pytest.mark.slow
def test_serve_schedule_and_send_name_a_missing_file_before_touching_anything(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    write(
        tmp_path,
        f"database:\n  url: sqlite:///{tmp_path / 'db.sqlite3'}\n"
        "smtp:\n  password_file: secrets/smtp\n",
    )
    result = command(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"digest: error: {tmp_path / 'config.yaml'}: smtp.password_file: "
        f"{tmp_path / 'secrets' / 'smtp'} does not exist.\n"
    )
    assert not (tmp_path / "db.sqlite3").exists()  # no database created, nothing started


def test_posts_and_render_work_without_the_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "digest:\n  lookback_days: 0\n"
        f"database:\n  url: sqlite:///{tmp_path / 'db.sqlite3'}\n"
        "smtp:\n  password_file: secrets/smtp\n  ca_file: certs/ca.pem\n"
        "dkim:\n  domain: b.example.com\n  selector: s\n  key_file: keys/s.pem\n",
    )
    (tmp_path / "posts" / "p.md").write_text("---\ntitle: P\ndate: 2026-01-01\n---\nx\n", "utf-8")
    runner = CliRunner()
    posts = runner.invoke(main, ["--config", str(path), "posts"])
    assert posts.exit_code == 0, posts.output
    rendered = runner.invoke(main, ["--config", str(path), "render", "--out", str(tmp_path / "o")])
    assert rendered.exit_code == 0, rendered.output
    assert (tmp_path / "o" / "issue.html").exists()


def test_a_number_without_a_bound_of_its_own_gets_the_ceiling() -> None:
    """A setting added later without `le` is still bounded (merged branches add some)."""
    from pydantic import ValidationError

    from digest.config.validators import NUMBER_CEILING, Section

    class Probe(Section):
        hours: float = 1.0
        count: int | None = None
        flag: bool = False

    assert Probe(hours=NUMBER_CEILING, count=-NUMBER_CEILING, flag=True).count == -NUMBER_CEILING
    for values in ({"hours": NUMBER_CEILING * 1.5}, {"count": 10**12}):
        with pytest.raises(ValidationError, match="must be at most 1,000,000"):
            Probe(**values)


def test_the_demo_config_does_not_override_the_builtins_with_themselves(tmp_path: Path) -> None:
    """The repository's config.yaml names `templates`, which in a checkout is the built-in
    folder: it holds no overrides (not read twice, not checked as the user's), while a folder
    of the user's own is still read first and checked."""
    demo = load_config(ROOT / "config.yaml", environ={})
    assert demo.path(demo.templates_dir).resolve() == BUILTIN_TEMPLATES.resolve()
    assert user_templates(demo.path(demo.templates_dir)) is None
    own = template(tmp_path, "email/digest.txt.j2", "{% if %}")
    assert user_templates(own.parent.parent) == own.parent.parent.resolve()
    with pytest.raises(ConfigError, match=r"digest.txt.j2, line 1"):
        check_templates(own.parent.parent)


@pytest.mark.parametrize(
    ("extra", "clicks"),
    [
        ("", "off"),  # off by default
        ("tracking:\n  clicks: off\n", "off"),  # YAML reads a bare `off` as false
        ("tracking:\n  clicks: aggregate\n", "aggregate"),
        ("tracking:\n  clicks: personal\n", "personal"),
    ],
)
def test_click_tracking_modes(tmp_path: Path, extra: str, clicks: str) -> None:
    assert load_config(write(tmp_path, extra), environ={}).tracking.clicks == clicks


def test_an_unknown_click_tracking_mode_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, "tracking:\n  clicks: everyone\n")
    assert "tracking.clicks" in message and "personal" in message
