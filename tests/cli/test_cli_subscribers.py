"""`digest subscribers …`, `digest db upgrade` and `digest report` on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from digest.cli import main
from tests.support import paths

ROOT = paths.ROOT
EXAMPLE = ROOT / "subscribers" / "example.csv"


def cli(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["--config", str(ROOT / "config.yaml"), *args],
        env={"DIGEST_DATABASE__URL": database_url},
    )


def test_db_upgrade_then_up_to_date(empty_database_url: str) -> None:
    first = cli(empty_database_url, "db", "upgrade")
    assert first.exit_code == 0 and "Upgraded the database from revision none to" in first.output
    second = cli(empty_database_url, "db", "upgrade")
    assert "up to date" in second.output


def test_add_list_remove(database_url: str) -> None:
    assert (
        cli(
            database_url,
            "subscribers",
            "add",
            "Li.Na@Example.COM",
            "--name",
            "李娜",
            "--locale",
            "zh",
            "--categories",
            "Python;机器学习",
        ).exit_code
        == 0
    )
    listed = json.loads(cli(database_url, "subscribers", "list", "--json").stdout)
    assert [(r["email"], r["name"], r["categories"]) for r in listed] == [
        ("Li.Na@example.com", "李娜", ["Python", "机器学习"])
    ]
    again = cli(database_url, "subscribers", "add", "Li.Na@example.com")
    assert again.exit_code == 1 and "already a subscriber" in again.output
    removed = cli(database_url, "subscribers", "remove", "Li.Na@example.com")
    assert removed.exit_code == 0 and "Unsubscribed" in removed.output
    revived = cli(database_url, "subscribers", "add", "Li.Na@example.com")
    assert revived.exit_code == 1 and "only they can subscribe again" in revived.output
    listed = json.loads(cli(database_url, "subscribers", "list", "--json").stdout)
    assert listed[0]["status"] == "unsubscribed"
    erased = cli(database_url, "subscribers", "remove", "--erase", "Li.Na@example.com")
    assert erased.exit_code == 0
    assert json.loads(cli(database_url, "subscribers", "list", "--json").stdout) == []


def test_import_export(database_url: str, tmp_path: Path) -> None:
    imported = cli(database_url, "subscribers", "import", str(EXAMPLE))
    assert imported.exit_code == 0, imported.output
    assert "43 added, 0 updated, 0 unchanged, 0 rows skipped" in imported.output
    active = json.loads(
        cli(database_url, "subscribers", "list", "--status", "active", "--json").stdout
    )
    assert len(active) == 41
    out = tmp_path / "out.csv"
    assert cli(database_url, "subscribers", "export", str(out)).exit_code == 0
    assert out.read_text("utf-8").splitlines()[0] == "email,name,locale,categories,status"
    bad = tmp_path / "bad.csv"
    bad.write_text("email,name\nok@example.com,OK\nnope,Nope\n", "utf-8")
    partial = cli(database_url, "subscribers", "import", str(bad))
    assert partial.exit_code == 1
    assert f"{bad}, line 3: 'nope' is not a valid address" in partial.output
    assert "1 added" in partial.output


def test_report_without_issues(database_url: str) -> None:
    result = cli(database_url, "report")
    assert result.exit_code == 0 and "No issues yet." in result.output
    assert json.loads(cli(database_url, "report", "--json").stdout) == []
    missing = cli(database_url, "report", "2026-W01")
    assert missing.exit_code == 1 and "there is no issue '2026-W01'" in missing.output
