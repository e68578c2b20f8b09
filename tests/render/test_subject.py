"""The subject line: a localised date by default, every documented placeholder, bad ones refused.

The default "{title} · {long_date}" holds lowercase letters in English and no letter at all
besides the title's in Chinese, so SpamAssassin's SUBJ_ALL_CAPS (every letter a capital) does
not fire for a CJK title; `{period}` still works for those who want the ISO week.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import render_settings
from digest.config.validators import SUBJECT_PLACEHOLDERS
from digest.errors import ConfigError
from digest.models import Edition, Post
from digest.render.edition import render, subject_for
from tests.support import paths

ROOT = paths.ROOT
NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
POSTS = (
    Post(id="a", title="Medusa：多个解码头", url="https://b.example.com/a/", date=NOW, body="x"),
    Post(id="b", title="Older", url="https://b.example.com/b/", date=NOW, body="y"),
)
EDITION = Edition("2026-W47", NOW, POSTS)


def configured(tmp_path: Path, title: str, subject: str | None = None) -> Config:
    text = (
        f"site:\n  title: {title}\n  base_url: https://b.example.com\n"
        "sources:\n  - {type: markdown, path: posts}\n"
    )
    if subject is not None:
        text += f"digest:\n  subject: {subject!r}\n"
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def all_capitals(subject: str) -> bool:
    """SpamAssassin's subject_is_all_caps (HeaderEval.pm), for a UTF-8 subject."""
    if " " not in subject.strip() or len(subject.strip()) < 10:
        return False
    letters = "".join(c for c in subject if c.isascii() and c.isalpha())
    return bool(letters) and letters == letters.upper()


def test_the_default_is_the_title_and_a_localised_date(tmp_path: Path) -> None:
    config = configured(tmp_path, "行路中")
    assert subject_for(render_settings(config), EDITION, "zh") == "行路中 · 2026年11月22日"
    assert subject_for(render_settings(config), EDITION, "en") == "行路中 · November 22, 2026"
    assert render(render_settings(config), EDITION, "zh").subject == "行路中 · 2026年11月22日"
    for locale in ("zh", "en"):
        assert not all_capitals(subject_for(render_settings(config), EDITION, locale))
    # what it replaces: the ISO week makes a Chinese subject all capitals
    assert all_capitals("行路中 · 2026-W47")


def test_every_placeholder(tmp_path: Path) -> None:
    subject = " | ".join("{" + name + "}" for name in SUBJECT_PLACEHOLDERS)
    config = configured(tmp_path, "行路中", subject)
    assert subject_for(render_settings(config), EDITION, "zh") == (
        "行路中 | 2026-W47 | 2026-11-22 | 2026年11月22日 | 2 | Medusa：多个解码头"
    )
    assert (
        subject_for(render_settings(config), EDITION, "en").split(" | ")[3] == "November 22, 2026"
    )


def test_the_old_default_still_works(tmp_path: Path) -> None:
    config = configured(tmp_path, "Incoming Transmission", "{title} · {period}")
    assert (
        render(render_settings(config), EDITION, "zh").subject == "Incoming Transmission · 2026-W47"
    )


def test_config_yaml_documents_every_placeholder() -> None:
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    comment = text.split("digest:", 1)[1].split("  subject:", 1)[0]
    for name in SUBJECT_PLACEHOLDERS:
        assert "{" + name + "}" in comment, name
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in SUBJECT_PLACEHOLDERS:
        assert "{" + name + "}" in readme, name


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("{title} · {week}", "unknown placeholder {week}; the placeholders are {title} {period}"),
        ("{title.upper}", "unknown placeholder {title.upper}"),
        ("{} news", "unknown placeholder {}"),
        ("{title", "is not a valid subject template"),
        ("{count:x<}{title:d}", "is not a valid subject template"),
    ],
)
def test_a_bad_subject_is_a_configuration_error(tmp_path: Path, subject: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        configured(tmp_path, "T", subject)
    assert "digest.subject" in str(caught.value) and message in str(caught.value)
    assert caught.value.exit_code == 2
