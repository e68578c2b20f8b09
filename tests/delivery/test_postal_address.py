"""site.postal_address is optional until a real send needs it (a fresh `digest init` config).

Reading posts, rendering, previewing and dry runs work without it; a real send, a `--to` test
copy and the scheduler's send (digest.config.presend.check_sendable, which every send path
calls) stop with one sentence naming the key, before any issue is created or any mail leaves.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from digest.cli import main
from digest.config.load import load_config
from digest.config.presend import check_sendable
from digest.errors import ConfigError
from digest.store.database import open_database
from digest.store.tables import Issue, Subscriber
from tests.support import paths
from tests.support.smtp_server import SMTPServer

ROOT = paths.ROOT
BLOG = ROOT / "examples" / "blog"


def write_config(tmp_path: Path, port: int, address: str = "") -> Path:
    path = tmp_path / "config.yaml"
    (tmp_path / "web-secret").write_text("secret\n", encoding="utf-8")
    path.write_text(
        f"""site:
  title: No Address Yet
  base_url: https://blog.example.com
{address}sources:
  - type: markdown
    path: {BLOG}
digest:
  lookback_days: 3650
database:
  url: sqlite:///{tmp_path / "digest.sqlite3"}
smtp:
  host: 127.0.0.1
  port: {port}
  timeout: 5
web:
  secret_file: web-secret
""",
        encoding="utf-8",
    )
    database = open_database(load_config(path).database_url)
    with database.session() as session:
        session.add(Subscriber(email="reader@example.com", name="R", status="active"))
    database.dispose()
    return path


def issues(path: Path) -> int:
    database = open_database(load_config(path).database_url)
    with database.session() as session:
        count = session.scalar(select(func.count()).select_from(Issue)) or 0
    database.dispose()
    return count


def test_without_an_address_everything_but_a_real_send_works(tmp_path: Path) -> None:
    path = write_config(tmp_path, port=2)
    config = load_config(path)
    assert config.site.postal_address is None
    runner = CliRunner()
    for args in (["posts"], ["render", "--out", str(tmp_path / "out")], ["send", "--dry-run"]):
        result = runner.invoke(main, ["--config", str(path), *args])
        assert result.exit_code == 0, (args, result.output)
    html = (tmp_path / "out" / "issue.html").read_text(encoding="utf-8")
    assert "NO ADDRESS YET" in html and "None" not in html
    assert issues(path) == 0


@pytest.mark.parametrize("args", [["send", "--yes"], ["send", "--to", "me@example.com"]])
def test_a_real_send_without_an_address_names_the_key_and_sends_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, server.port)
        result = CliRunner().invoke(main, ["--config", str(path), *args])
    assert result.exit_code == 2, result.output
    assert "site.postal_address is required to send a digest" in result.output
    assert "Traceback" not in result.output
    assert server.mailbox.messages == []
    assert issues(path) == 0


def test_with_an_address_the_check_passes_and_a_blank_one_fails(tmp_path: Path) -> None:
    path = write_config(tmp_path, port=2, address="  postal_address: 1 Example Road\n")
    config = load_config(path)
    check_sendable(config)
    blank = config.model_copy(
        update={"site": config.site.model_copy(update={"postal_address": "  "})}
    )
    with pytest.raises(ConfigError, match=r"site\.postal_address is required"):
        check_sendable(blank)
