"""Reports and repair: `digest report` counts what came back per issue, `subscribers list`
shows why someone is suppressed, `subscribers reactivate` restores them (an event)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from digest.cli import main
from digest.cli.status import RETURNED
from tests.support.bounce_store import (
    VERP_EMAIL,
    cli,
    events,
    load,
    maildir,
    seed,
    standing,
    write_config,
)


def wide(path: Path, *args: str) -> Result:
    """A command's table output on a terminal wide enough that no cell is cut."""
    return CliRunner().invoke(main, ["--config", str(path), *args], env={"COLUMNS": "250"})


def test_report_list_and_reactivate(tmp_path: Path, database_url: str) -> None:
    path = write_config(tmp_path, database_url)
    config = load(path)
    seed(config, ("alice.smith@example.org", "carol@example.net"))
    box = maildir(
        tmp_path / "mail",
        "postfix-dsn-verp.eml",  # hard, issue 2026-W47
        "postfix-mailbox-full.eml",  # soft, same issue
        "arf-yahoo.eml",  # complaint, same issue (42 is bounced already)
        "postfix-dsn-no-verp.eml",  # hard, no issue: alice
        "mailto-unsubscribe-no-token.eml",  # carol, by her From address
    )
    assert cli(path, "bounces", "--maildir", str(box)).exit_code == 0
    report = cli(path, "report", "2026-W47", "--json")
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["returned"] == {"hard": 1, "soft": 1, "complaint": 1}
    table = wide(path, "report")
    header = next(line for line in table.output.splitlines() if "Issue" in line)
    assert [c for c in header.split() if c in RETURNED] == ["Hard", "Soft", "Complaints"]
    row = next(line for line in table.output.splitlines() if "2026-W47" in line)
    # hard, soft, complaints, then the rates (digest.store.report: two bounces and one
    # complaint over the one delivery sent), then unsubscribes
    assert [c.strip() for c in row.split("│")][-7:-2] == ["1", "1", "1", "200.00%", "100.00%"]
    assert json.loads(report.stdout)["bounce_rate"] == 2.0

    bounced = json.loads(cli(path, "subscribers", "list", "--status", "bounced", "--json").stdout)
    reasons = {row["email"]: row["reason"] for row in bounced}
    assert set(reasons) == {VERP_EMAIL, "alice.smith@example.org"}
    assert reasons[VERP_EMAIL]["kind"] == "bounce" and reasons[VERP_EMAIL]["issue"] == "2026-W47"
    assert "5.1.1" in reasons[VERP_EMAIL]["detail"]
    assert reasons["alice.smith@example.org"]["issue"] is None
    left = json.loads(cli(path, "subscribers", "list", "--status", "unsubscribed", "--json").stdout)
    assert [(r["email"], r["reason"]["method"]) for r in left] == [("carol@example.net", "mailto")]
    shown = wide(path, "subscribers", "list", "--status", "bounced")
    assert "bounce by mail (2026-W47): " in shown.output

    restored = cli(path, "subscribers", "reactivate", "Alice.Smith@Example.org")
    assert restored.exit_code == 0 and "Reactivated alice.smith@example.org (was bounced)" in (
        restored.output
    )
    assert standing(config)["alice.smith@example.org"] == "active"
    assert events(config)[-1][:3] == ("alice.smith@example.org", "reactivate", "cli")
    twice = cli(path, "subscribers", "reactivate", "alice.smith@example.org")
    assert twice.exit_code == 1 and "is active, not bounced" in twice.output
    own_choice = cli(path, "subscribers", "reactivate", "carol@example.net")
    assert own_choice.exit_code == 1 and "only they can subscribe again" in own_choice.output
    nobody = cli(path, "subscribers", "reactivate", "nobody@example.net")
    assert nobody.exit_code == 1 and "is not a subscriber" in nobody.output
    assert "Traceback" not in nobody.output
