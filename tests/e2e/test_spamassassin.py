"""SpamAssassin's local rules score the demo's dry-run messages as clean mail.

Debian's `spamassassin` (scripts/system-deps) reads the .eml files `digest send --dry-run`
writes, with local tests only (`-L`: no DNS, no network) and no Bayes database, for the demo
blog under a Chinese site title (行路中) and under its English one, each for a Chinese and an
English subscriber. Every message scores at most 0.3 and trips neither SUBJ_ALL_CAPS (a Chinese
title plus `2026-W47` has no lowercase letter) nor HTML_FONT_LOW_CONTRAST (a white-on-white
preheader). Before issue 13 the Chinese title scored 1.2 and the English one 0.7.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
from email import policy
from email.header import Header
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from digest.cli import main
from tests.support import paths

ROOT = paths.ROOT
MAX_SCORE = 0.3
UNWANTED = {"SUBJ_ALL_CAPS", "HTML_FONT_LOW_CONTRAST", "HTML_FONT_INVALID_COLOR"}


def demo_copy(folder: Path, title: str) -> Path:
    """The demo configuration under another site title, with its state in `folder`."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["site"]["title"] = title
    data["sources"] = [{"type": "markdown", "path": str(ROOT / "examples" / "blog")}]
    data["sender"]["from"] = f"{title} <digest@blog.example.com>"
    data["templates_dir"] = "templates"  # none in the folder: the built-in templates
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    (folder / "people.csv").write_text(
        "email,name,locale,categories,status\n"
        "wang.fang@example.com,王芳,zh,,active\n"
        "ada.park@example.org,Ada Park,en,,active\n",
        encoding="utf-8",
    )
    return path


def dry_run(config: Path) -> list[Path]:
    runner = CliRunner()
    people = config.parent / "people.csv"
    imported = runner.invoke(main, ["--config", str(config), "subscribers", "import", str(people)])
    assert imported.exit_code == 0, imported.output
    outbox = config.parent / "out"
    result = runner.invoke(
        main, ["--config", str(config), "send", "--dry-run", "--outbox", str(outbox)]
    )
    assert result.exit_code == 0, result.output
    messages = sorted(outbox.glob("*.eml"))
    assert len(messages) == 2, result.output
    return messages


def spamassassin(message: Path, home: Path) -> tuple[float, dict[str, float], EmailMessage]:
    """The score, each rule hit with its points, and the checked message."""
    binary = shutil.which("spamassassin")
    assert binary is not None, "spamassassin is missing: run scripts/system-deps"
    result = subprocess.run(
        [binary, "-t", "-L", "--cf=use_bayes 0"],
        input=message.read_bytes(),
        capture_output=True,
        env={**os.environ, "HOME": str(home)},  # user prefs and state stay in the test's folder
        timeout=300,
        check=True,
    )
    checked = email.message_from_bytes(result.stdout, policy=policy.default)
    assert isinstance(checked, EmailMessage)
    status = re.sub(r",\s+", ",", " ".join(str(checked["X-Spam-Status"]).split()))
    found = re.search(r"score=(-?\d+(?:\.\d+)?) .*?tests=(\S*)", status)
    assert found is not None, status
    rules = {rule for rule in found.group(2).split(",") if rule and rule != "none"}
    report = result.stdout.decode("utf-8", "replace").split("Content analysis details", 1)[1]
    points = {
        rule: float(value)
        for value, rule in re.findall(r"^\s*(-?\d+\.\d+) ([A-Z][A-Z0-9_]+)\b", report, re.M)
    }
    assert set(points) == rules, (points, rules)
    return float(found.group(1)), points, checked


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SpamAssassin's HOME: an ASCII path (its taint checks refuse any other)."""
    return tmp_path_factory.mktemp("sa-home")


@pytest.mark.parametrize("title", ["行路中", "Incoming Transmission"])
def test_the_demo_scores_as_clean_mail(title: str, tmp_path: Path, home: Path) -> None:
    messages = dry_run(demo_copy(tmp_path, title))
    languages = set()
    for message in messages:
        score, rules, checked = spamassassin(message, home)
        assert score <= MAX_SCORE, f"{message.name}: {score} ({rules})"
        assert not set(rules) & UNWANTED, rules
        # List-Id, List-Unsubscribe and Precedence: bulk read as a real list (a bonus), and
        # the message is clean without it too
        assert rules["MAILING_LIST_MULTI"] < 0
        assert score - rules["MAILING_LIST_MULTI"] <= MAX_SCORE, (
            f"{message.name}: {score} ({rules})"
        )
        languages.add(checked.get_body(("html",)).get_content().split('lang="', 1)[1][:2])  # type: ignore[union-attr]
    assert languages == {"zh", "en"}


def test_the_check_sees_the_rules_it_guards_against(tmp_path: Path, home: Path) -> None:
    """The harness itself: the old subject, preheader and headers trip both rules again and
    score what the issue measured (1.2)."""
    [message, _] = dry_run(demo_copy(tmp_path, "行路中"))
    data = message.read_bytes()
    subject = Header("行路中 · 2026-W47", "utf-8").encode()
    data = re.sub(
        rb"Subject: .*?\r\n(?! )", f"Subject: {subject}\r\n".encode(), data, count=1, flags=re.S
    )
    data = data.replace(
        b'<div class="preheader" style="',
        b'<div class="preheader" style="display:none;font-size:1px;color:#ffffff;',
    )
    data = data.replace(b"Precedence: bulk\r\n", b"")
    old = tmp_path / "old.eml"
    old.write_bytes(data)
    score, rules, _ = spamassassin(old, home)
    assert {"SUBJ_ALL_CAPS", "HTML_FONT_LOW_CONTRAST"} <= set(rules) and score >= 1.2
