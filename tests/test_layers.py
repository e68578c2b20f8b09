"""The layers DESIGN.md section 5 fixes, checked on the source: SQL only in digest/store/,
and the CLI and the web app built on the library, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "digest"

# what code outside store/ may take from SQLAlchemy: type names and exceptions, no queries
ALLOWED = {("sqlalchemy.orm", "Session"), ("sqlalchemy.exc", "IntegrityError")}
ALLOWED_MODULES = {"sqlalchemy.exc"}


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


def test_the_library_does_not_import_the_cli_or_the_web_app() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("cli", "web"):
            continue
        for module, _ in imports(path):
            if module.startswith(("digest.cli", "digest.web")):
                offenders.append(f"{relative}: {module}")
    assert offenders == []
