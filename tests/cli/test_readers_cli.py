"""The readers' commands of issue 25 as a user runs them: `digest webhooks list|retry|test`
against a real receiver on 127.0.0.1 (a failed post stays pending with its error, `retry`
posts it again at once, `test` posts a message that verifies with `standardwebhooks`), and
`digest form` in both styles."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from standardwebhooks import Webhook

from digest.cli import main
from digest.config.load import load_config
from digest.store.database import open_database
from digest.store.events import append
from digest.store.tables import Subscriber
from tests.delivery.test_webhooks import SECRET, configured, receiver
from tests.issues.test_send import write_config


def run(path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(path), *args])


def outbox(path: Path) -> list[dict[str, object]]:
    listed = run(path, "webhooks", "list", "--json")
    assert listed.exit_code == 0, listed.output
    messages: list[dict[str, object]] = json.loads(listed.output)["messages"]
    return messages


def test_webhooks_list_retry_and_test(tmp_path: Path) -> None:
    with receiver(failures=1) as (url, got):
        path = configured(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25, url)
        config = load_config(path, environ={})
        assert run(path, "db", "upgrade").exit_code == 0
        database = open_database(config.database_url)
        with database.session() as session:
            person = Subscriber(email="ada@example.com", status="active")
            session.add(person)
            session.flush()
            append(session, "confirm", "web", subscriber_id=person.id)
        database.dispose()

        first = run(path, "webhooks", "retry")  # the receiver answers 500
        assert first.exit_code == 1 and "0 delivered, 1 failed" in first.output
        [pending] = outbox(path)
        assert pending["state"] == "pending" and pending["attempts"] == 1
        assert "500" in str(pending["last_error"])
        assert json.loads(run(path, "webhooks", "list", "--json").output)["receivers"] == [url]

        second = run(path, "webhooks", "retry")  # due at once, whatever its backoff said
        assert second.exit_code == 0 and "1 delivered, 0 failed" in second.output
        [delivered] = outbox(path)
        assert delivered["state"] == "delivered" and delivered["id"] == pending["id"]
        assert run(path, "webhooks", "retry").output.startswith("0 delivered, 0 failed")

        tested = run(path, "webhooks", "test")
        assert tested.exit_code == 0 and f"{url}: ok" in tested.output
    assert len(got) == 3  # 500, the retry, the test: nothing posted twice once delivered
    verifier = Webhook(SECRET)
    for headers, body in got:
        verifier.verify(body, headers)
    assert [json.loads(body)["type"] for _, body in got] == ["confirmed", "confirmed", "test"]
    assert got[0][0]["webhook-id"] == got[1][0]["webhook-id"]  # the retry keeps its id


def test_webhooks_test_without_receivers_says_so(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    answer = run(path, "webhooks", "test")
    assert answer.exit_code != 0
    assert "no webhooks are configured" in answer.output
    assert "Traceback" not in answer.output


def test_form_in_both_styles(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    text = path.read_text("utf-8").replace(
        "  secret_file: web-secret\n",
        "  secret_file: web-secret\n"
        "  privacy_url: https://blog.example.com/privacy/\n"
        "  return_to: [https://blog.example.com]\n",
    )
    path.write_text(text, encoding="utf-8")
    plain, minimal = (run(path, "form", "--style", style) for style in ("plain", "minimal"))
    assert plain.exit_code == 0 and minimal.exit_code == 0, plain.output + minimal.output
    for printed in (plain.output, minimal.output):
        assert 'action="https://news.example.com/subscribe"' in printed
        assert 'href="https://blog.example.com/privacy/"' in printed
        assert 'name="return_to" value="https://blog.example.com/"' in printed
        assert 'name="website"' in printed  # the honeypot
        assert 'src="https://news.example.com/static/signup.js"' in printed
    assert plain.output.count(' style="') > 3
    # minimal: only the honeypot's own hiding stays inline; the rest is the blog's CSS
    assert minimal.output.count(' style="') == 1
    assert 'aria-hidden="true" style="position:absolute' in minimal.output


def test_the_form_says_clicks_are_recorded_only_with_personal(tmp_path: Path) -> None:
    """With the snippet's script a reader signs up without leaving the blog, so never sees
    digest's sign-up page: the snippet itself says that clicks are recorded per reader, in the
    site's language, when `tracking.clicks` is `personal`, and only then."""
    from tests.web.test_clicks import NOTICE

    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    base = path.read_text("utf-8")
    for mode in ("off", "aggregate", "personal"):
        for locale in ("zh", "en"):
            text = base.replace("  locale: zh\n", f"  locale: {locale}\n")
            assert f"  locale: {locale}\n" in text
            path.write_text(text + f"tracking:\n  clicks: {mode}\n", encoding="utf-8")
            for style in ("plain", "minimal"):
                printed = run(path, "form", "--style", style)
                assert printed.exit_code == 0, printed.output
                assert (NOTICE[locale] in printed.output) is (mode == "personal"), (mode, locale)
