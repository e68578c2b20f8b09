"""The MJML we produce compiles with MJML.js, the reference compiler, at validationLevel=strict.

mjml-python renders our email, but people take the templates and `digest render --out`'s
issue.mjml to the reference compiler or an MJML editor. MJML.js (npm `mjml`, pinned by
tests/mjml/package-lock.json, installed by scripts/system-deps) compiles `issue.mjml` for both
locales, and for a post whose title, category and cover text hold every character that HTML
escapes, without a validation error or a crash (an `&#39;` in a style attribute used to crash
its CSS inliner).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from tests.support import paths

ROOT = paths.ROOT
MJML_DIR = paths.TESTS / "mjml"
COMPILE = MJML_DIR / "compile.js"
HOSTILE = 'Sean\'s "quoted" <b>tags</b> & ampersands; 引号‘’「」'


def mjml_js(*paths: Path) -> list[dict[str, object]]:
    node = shutil.which("node")
    installed = MJML_DIR / "node_modules" / "mjml" / "package.json"
    assert node is not None and installed.exists(), "MJML.js is missing: run scripts/system-deps"
    result = subprocess.run(
        [node, str(COMPILE), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(paths), result.stdout + result.stderr
    return lines


def render_out(config: Path, out: Path, locale: str) -> Path:
    result = CliRunner().invoke(
        main, ["--config", str(config), "render", "--out", str(out), "--locale", locale]
    )
    assert result.exit_code == 0, result.output
    return out / "issue.mjml"


@pytest.fixture(scope="module")
def hostile_blog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "posts").mkdir()
    (folder / "config.yaml").write_text(
        f"site:\n  title: {json.dumps(HOSTILE)}\n  base_url: https://b.example.com\n"
        f"  postal_address: {json.dumps(HOSTILE)}\n"
        "sources:\n  - type: markdown\n    path: posts\ndigest:\n  lookback_days: 0\n",
        encoding="utf-8",
    )
    front = json.dumps(HOSTILE)
    (folder / "posts" / "2026-11-20-hostile.md").write_text(
        f"---\ntitle: {front}\ncategories: [{front}]\ncover: images/a.png\ncover_alt: {front}\n"
        f"summary: {front}\n---\n{HOSTILE}\n\n```js\nconst a = '<b>' & 1;\n```\n",
        encoding="utf-8",
    )
    return folder / "config.yaml"


def test_the_demo_compiles_strictly_in_both_locales(tmp_path: Path) -> None:
    sources = [render_out(ROOT / "config.yaml", tmp_path / lang, lang) for lang in ("zh", "en")]
    for source in sources:
        assert "&#39;" not in source.read_text(encoding="utf-8").split("<mj-body", 1)[0]
    for outcome in mjml_js(*sources):
        assert outcome["ok"] is True and outcome["errors"] == [], outcome
        assert isinstance(outcome["html"], int) and outcome["html"] > 10_000


def test_text_that_html_escapes_compiles_strictly(hostile_blog: Path, tmp_path: Path) -> None:
    sources = [render_out(hostile_blog, tmp_path / lang, lang) for lang in ("zh", "en")]
    assert "&lt;b&gt;tags&lt;/b&gt;" in sources[0].read_text(encoding="utf-8")
    for outcome in mjml_js(*sources):
        assert outcome["ok"] is True and outcome["errors"] == [], outcome


def test_the_check_catches_what_strict_validation_refuses(tmp_path: Path) -> None:
    """The harness itself: a crash and a validation error both fail."""
    source = render_out(ROOT / "config.yaml", tmp_path / "zh", "zh")
    text = source.read_text(encoding="utf-8")
    crash = tmp_path / "entity.mjml"  # what we produced before: an entity in font-family
    crash.write_text(text.replace("'Segoe UI'", "&#39;Segoe UI&#39;"), encoding="utf-8")
    illegal = tmp_path / "illegal.mjml"
    illegal.write_text(text.replace("<mj-text ", '<mj-text colour="red" ', 1), encoding="utf-8")
    crashed, refused = mjml_js(crash, illegal)
    assert crashed["ok"] is False
    assert refused["ok"] is False and "colour" in str(refused["errors"])
