"""The configuration in force as the desk's Settings page shows it (digest.config.effective):
each value's origin (the file, the environment variable, the default) and no secret shown."""

from __future__ import annotations

from pathlib import Path

from digest.config.effective import MASK, effective
from digest.config.load import load_config
from tests.issues.test_send import write_config


def test_every_value_says_where_it_came_from_and_secrets_are_masked(tmp_path: Path) -> None:
    path = write_config(tmp_path, "postgresql+psycopg://digest:hunter22@db.example/digest", 2525)
    environ = {"DIGEST_SMTP__PORT": "2526", "DIGEST_SMTP__PASSWORD": "s3cret-in-env"}
    shown = {s.key: s for s in effective(load_config(path, environ=environ))}
    assert (shown["site.title"].value, shown["site.title"].origin) == (
        "Incoming Transmission",
        "file",
    )
    assert (shown["smtp.port"].value, shown["smtp.port"].origin) == (
        "2526",
        "environment (DIGEST_SMTP__PORT)",
    )
    assert shown["excerpt.length"].origin == "default"
    assert shown["smtp.password"].value == MASK
    assert shown["database.url"].value == f"postgresql+psycopg://digest:{MASK}@db.example/digest"
    assert shown["web.secret_file"].value == "web-secret"  # a path, not a secret
    every = " ".join(s.value for s in shown.values())
    assert "hunter22" not in every and "s3cret-in-env" not in every and "test-secret" not in every
