"""config.yaml loading: defaults, environment overrides, and one-sentence errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config.credentials import smtp_password, web_secret
from digest.config.load import load_config
from digest.errors import ConfigError
from tests.support import paths

ROOT = paths.ROOT

MINIMAL = """\
site:
  title: Test Blog
  base_url: https://blog.example.com/
  postal_address: 1 Example Road
sources:
  - type: markdown
    path: posts
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_config_loads_and_documents_every_key() -> None:
    config = load_config(ROOT / "config.yaml", environ={})
    assert config.site.title == "Incoming Transmission"
    assert config.site.locale == "zh"
    assert config.excerpt.length == 350
    assert config.digest.max_posts == 12
    assert config.database_url.startswith("sqlite:////")
    assert config.database_url.endswith("/var/digest.sqlite3")
    lines = (ROOT / "config.yaml").read_text(encoding="utf-8").splitlines()
    # every key is documented: the nearest line above it (within its block) is a comment
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")) or ":" not in stripped:
            continue
        above = lines[index - 1].strip() if index else ""
        in_list_item = above.startswith("- ") or above.startswith("path:")
        assert above.startswith("#") or in_list_item, f"config.yaml line {index + 1}: {stripped}"


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), environ={})
    assert config.site.base_url == "https://blog.example.com"
    assert config.site.timezone == "Asia/Shanghai"
    assert config.schedule_timezone == "Asia/Shanghai"
    assert config.digest.lookback_days == 30
    assert config.path("posts") == tmp_path.resolve() / "posts"
    assert config.database_url == f"sqlite:///{tmp_path.resolve()}/var/digest.sqlite3"
    english = load_config(
        write(tmp_path, MINIMAL.replace("  postal", "  locale: en\n  postal")), environ={}
    )
    assert english.site.timezone == "UTC"


def test_environment_overrides_any_key(tmp_path: Path) -> None:
    env = {
        "DIGEST_SMTP__PORT": "2526",
        "DIGEST_SMTP__PASSWORD": "s3cret",
        "DIGEST_DATABASE__URL": "postgresql+psycopg://u@localhost/d",
        "DIGEST_SITE__LOCALE": "en",
        "DIGEST_CONFIG": "ignored",
        "OTHER": "x",
    }
    config = load_config(write(tmp_path, MINIMAL), environ=env)
    assert config.smtp.port == 2526
    assert smtp_password(config) == "s3cret"
    assert "s3cret" not in repr(config.smtp)
    assert config.database_url == "postgresql+psycopg://u@localhost/d"
    assert config.site.locale == "en"


def test_password_from_file(tmp_path: Path) -> None:
    (tmp_path / "smtp.secret").write_text("from-file\n", encoding="utf-8")
    config = load_config(
        write(tmp_path, MINIMAL + "smtp:\n  password_file: smtp.secret\n"), environ={}
    )
    assert smtp_password(config) == "from-file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MINIMAL + "smtp:\n  prot: 25\n",
            "config.yaml, line 9: unknown key smtp.prot (did you mean smtp.port?).",
        ),
        (
            MINIMAL + "smtp:\n  port: twenty\n",
            "config.yaml, line 9: smtp.port: input should be a valid integer",
        ),
        (MINIMAL.replace("  title: Test Blog\n", ""), "site.title is required but missing"),
        (
            MINIMAL + "digest:\n  max_posts: 0\n",
            "line 9: digest.max_posts: input should be greater",
        ),
        (MINIMAL + "site2: {}\n", "line 8: unknown key site2 (did you mean site?)."),
        (MINIMAL.replace("markdown", "gopher"), "line 6: sources.0: input tag 'gopher'"),
        (MINIMAL + "  - type: feed\n    ur: x\n", "line 9: unknown key sources.1.ur (did you mean"),
        (MINIMAL.replace("https://blog", "blog"), "site.base_url: 'blog.example.com/' must start"),
        (MINIMAL + "schedule:\n  timezone: Mars/Base\n", "'Mars/Base' is not a known time zone"),
        (MINIMAL.replace("sources:", "  permalink: /p/{titel}/\nsources:"), "uses {titel}"),
        (MINIMAL + "site:\n  locale: en\n", "line 8: duplicate key site."),
        ("site: [unclosed\n", "config.yaml, line 2:"),
        ("- just\n- a list\n", "the configuration must be a mapping"),
    ],
)
def test_bad_configuration_is_one_sentence(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    sentence = str(caught.value)
    assert message in sentence
    assert str(tmp_path / "config.yaml") in sentence
    assert "\n" not in sentence
    assert caught.value.exit_code == 2


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL), environ={"DIGEST_SMTP__PORT": "abc"})
    assert "set by environment variable DIGEST_SMTP__PORT" in str(caught.value)
    with pytest.raises(ConfigError, match=r"unknown key smtp\.prot"):
        load_config(write(tmp_path, MINIMAL), environ={"DIGEST_SMTP__PROT": "1"})


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"line 9: smtp.password is a secret: set it with "
        r"DIGEST_SMTP__PASSWORD or smtp.password_file",
    ):
        load_config(write(tmp_path, MINIMAL + "smtp:\n  password: hunter2\n"), environ={})
    with pytest.raises(ConfigError, match=r"web.secret is a secret"):
        load_config(write(tmp_path, MINIMAL + "web:\n  secret: s\n"), environ={})
    config = load_config(write(tmp_path, MINIMAL), environ={"DIGEST_WEB__SECRET": "from-env"})
    assert web_secret(config) == "from-env"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml", environ={})
