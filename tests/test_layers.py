"""The layers DESIGN.md section 5 fixes: import-linter's contracts in pyproject.toml (the
pipeline's layers, no stage importing the module that defines `Config`, a store that imports
no web app, CLI or send engine), and SQL only in digest/store/, checked on the source."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "digest"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# what code outside store/ may take from SQLAlchemy: type names and exceptions, no queries
ALLOWED = {("sqlalchemy.orm", "Session"), ("sqlalchemy.exc", "IntegrityError")}
ALLOWED_MODULES = {"sqlalchemy.exc"}


def lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contracts, on the `digest` package in `folder`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.slow
def test_the_contracts_catch_a_stage_that_takes_the_config(tmp_path: Path) -> None:
    """The contracts bite: a copy of the package whose excerpt stage imports the schema, and
    whose store imports the send engine, breaks all three."""
    copy = tmp_path / "digest"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "templates"))
    rules = copy / "excerpt" / "rules.py"
    rules.write_text(
        rules.read_text("utf-8") + "\nfrom digest.config.schema import Config  # noqa\n", "utf-8"
    )
    ledger = copy / "store" / "ledger.py"
    ledger.write_text(
        ledger.read_text("utf-8") + "\nfrom digest.delivery import engine  # noqa\n", "utf-8"
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "0 kept, 3 broken" in result.stdout
    assert "digest.excerpt.rules -> digest.config.schema" in result.stdout


def imports(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_no_sql_outside_the_store() -> None:
    """Import-linter sees modules, not names: that only `Session` and `IntegrityError` are
    taken from SQLAlchemy outside digest/store/ is checked on the source."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "store" in path.parents:
            continue
        for module, name in imports(path):
            if module.split(".")[0] != "sqlalchemy":
                continue
            if (module, name) in ALLOWED or module in ALLOWED_MODULES:
                continue
            offenders.append(f"{path.relative_to(PACKAGE)}: from {module} import {name}")
    assert offenders == []
