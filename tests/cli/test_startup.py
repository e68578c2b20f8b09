"""Start-up that matches the work: `digest --help` and `digest --version` load the standard
library, click and a few modules of digest, nothing else (so that a dependency added later
cannot creep into every command's start-up), `--version` reads the constant, and the commands
that only read a blog load no database layer when there is no database to read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import digest
from digest.cli.subscribers import LISTED_STATUSES
from digest.store.tables import Status
from tests.support import paths

# Every module of digest that `--help` and `--version` may load: the command line's own
# modules (each command's module is imported to list it) and what their options name.
ALLOWED_DIGEST = frozenset(
    {
        "digest",
        "digest.cli",
        "digest.cli.__main__",
        "digest.cli.admin",
        "digest.cli.base",
        "digest.cli.bounces",
        "digest.cli.db",
        "digest.cli.dkim",
        "digest.cli.doctor",
        "digest.cli.editorial",
        "digest.cli.form",
        "digest.cli.init",
        "digest.cli.output",
        "digest.cli.posts",
        "digest.cli.send",
        "digest.cli.serve",
        "digest.cli.status",
        "digest.cli.subscribers",
        "digest.cli.webhooks",
        "digest.errors",
        "digest.excerpt",
        "digest.excerpt.settings",
    }
)

# Runs the command in a fresh interpreter; prints what it imported (after the interpreter's
# own start-up: site, the editable install's finder) as JSON on the last line of stderr.
PROBE = """
import json, sys
before = set(sys.modules)
from digest.cli import main
try:
    main({args!r}, prog_name="digest")
except SystemExit:
    pass
print(json.dumps(sorted(set(sys.modules) - before)), file=sys.stderr)
"""


def imported(*args: str, cwd: Path | None = None) -> tuple[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=list(args))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    return result.stdout, json.loads(result.stderr.strip().splitlines()[-1])


def outside_the_allowlist(modules: list[str]) -> list[str]:
    stdlib = sys.stdlib_module_names
    return [
        name
        for name in modules
        if name.split(".")[0] not in stdlib
        and not name.startswith("_sysconfigdata_")  # the interpreter's build data (sysconfig)
        and name.split(".")[0] != "click"
        and name not in ALLOWED_DIGEST
    ]


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_load_only_the_allowlist(option: str) -> None:
    out, modules = imported(option)
    assert out  # it did print
    assert outside_the_allowlist(modules) == []
    assert "digest.cli.posts" in modules or option == "--version"  # the probe sees imports


def test_the_allowlist_check_catches_a_dependency() -> None:
    assert outside_the_allowlist(["rich.console", "sqlalchemy", "digest.config.schema"]) == [
        "rich.console",
        "sqlalchemy",
        "digest.config.schema",
    ]


def test_version_is_the_constant_and_reads_no_package_metadata() -> None:
    out, modules = imported("--version")
    assert out.strip() == f"digest, version {digest.__version__}"
    assert "importlib.metadata" not in modules


def test_the_status_choices_are_the_tables_own() -> None:
    assert set(LISTED_STATUSES) == {s.value for s in Status} - {Status.ERASED.value}


def write_blog(root: Path) -> Path:
    (root / "posts").mkdir()
    (root / "posts" / "2026-11-20-one.md").write_text(
        "---\ntitle: One\n---\nThe first post, with `code` and $x^2$.\n", "utf-8"
    )
    config = root / "config.yaml"
    config.write_text(
        "site:\n  title: T\n  base_url: https://b.example.com\n"
        "sources:\n  - type: markdown\n    path: posts\n"
        "digest:\n  lookback_days: 0\n",
        "utf-8",
    )
    return config


HEAVY = ("sqlalchemy", "alembic", "jinja2", "premailer", "mjml", "psycopg", "starlette")


@pytest.mark.parametrize(
    "args",
    [["posts"], ["posts", "--all", "--json"], ["excerpt", "posts/2026-11-20-one.md"]],
    ids=["posts", "posts --all", "excerpt"],
)
def test_reading_a_blog_loads_no_database_layer(tmp_path: Path, args: list[str]) -> None:
    config = write_blog(tmp_path)
    out, modules = imported("--config", str(config), *args, cwd=tmp_path)
    assert "One" in out or "first post" in out
    assert {name.split(".")[0] for name in modules} & set(HEAVY) == set()
    assert not (tmp_path / "var" / "digest.sqlite3").exists()  # nothing created either


def test_posts_reads_an_existing_sqlite_database_without_the_database_layer(
    tmp_path: Path,
) -> None:
    config = write_blog(tmp_path)
    created = subprocess.run(
        [sys.executable, "-m", "digest.cli", "--config", str(config), "status"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "var" / "digest.sqlite3").exists()
    out, modules = imported("--config", str(config), "posts", "--json", cwd=tmp_path)
    assert json.loads(out)[0]["title"] == "One"
    assert {name.split(".")[0] for name in modules} & set(HEAVY) == set()


def test_render_loads_no_database_layer(tmp_path: Path) -> None:
    config = write_blog(tmp_path)
    out, modules = imported("--config", str(config), "render", "--out", "out", cwd=tmp_path)
    assert "Wrote" in out and (tmp_path / "out" / "issue.html").exists()
    assert {name.split(".")[0] for name in modules} & {"sqlalchemy", "alembic"} == set()
    assert not (tmp_path / "var" / "digest.sqlite3").exists()


def test_init_loads_no_database_layer(tmp_path: Path) -> None:
    blog = paths.ROOT / "tests" / "fixtures" / "blogs" / "hexo"
    out, modules = imported("--config", str(tmp_path / "config.yaml"), "init", str(blog))
    assert "Wrote" in out
    assert {name.split(".")[0] for name in modules} & {"sqlalchemy", "alembic"} == set()


def test_loading_the_configuration_loads_no_database_jinja_or_markdown(tmp_path: Path) -> None:
    config = write_blog(tmp_path)
    code = (
        "import sys; from digest.config.load import load_config\n"
        f"load_config({str(config)!r}, environ={{}})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for heavy in (*HEAVY, "markdown_it", "rich", "regex"):
        assert f"'{heavy}'" not in loaded


def test_a_sending_process_loads_no_renderer() -> None:
    """A sending process composes from the variants stored before it starts, so importing the
    send path (what a spawned sending process or a `--worker` imports) loads no Jinja, MJML,
    premailer or cssutils: the renderer is imported only when a variant must be rendered."""
    probe = (
        "import sys, digest.delivery.workers, digest.delivery.compose; "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=paths.ROOT
    )
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    assert "digest" in loaded and "sqlalchemy" in loaded  # the probe did import the send path
    assert loaded & {"jinja2", "mjml", "premailer", "cssutils"} == set()
    assert "digest.render.edition" not in result.stdout.split()
