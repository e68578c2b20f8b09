"""`digest serve`'s provider webhooks, in-process: SES through SNS (signed with a key and
certificate we make; the certificate fetcher is the one part replaced, since AWS cannot be
reached here) and Postmark (basic auth), recording the same outcomes as mailed bounces."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient

from digest.config.schema import Config
from digest.store.database import open_database
from digest.web.hooks import Hooks
from digest.web.public import create_public_app
from tests.inbound.test_webhooks import CERT_URL, KEY, TOPIC, Fetcher, sns
from tests.support.bounce_fixtures import DELIVERY, ISSUE, fixture_bytes
from tests.support.bounce_store import (
    VERP_EMAIL,
    events,
    load,
    returned,
    seed,
    standing,
    write_config,
)


def live_certificate() -> bytes:
    """A certificate for KEY, valid around the real now (the hook checks the real clock)."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(KEY, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


class Confirmer:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> None:
        self.urls.append(url)


@pytest.fixture
def setup(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[TestClient, Config, Fetcher, Confirmer]]:
    (tmp_path / "postmark-secret").write_text("hook-password\n", "utf-8")
    path = write_config(
        tmp_path,
        database_url,
        ses_topic_arns=json.dumps([TOPIC]),
        postmark_user="postmark",
        postmark_password_file="postmark-secret",
    )
    config = load(path)
    seed(config, ("ann.lee@example.net", "gone@example.com", "complainer@example.org"))
    database = open_database(config.database_url)
    fetcher, confirmer = Fetcher(live_certificate()), Confirmer()
    hooks = Hooks(config, database, fetcher=fetcher, confirmer=confirmer)
    app = create_public_app(config, database, hooks=hooks)
    with TestClient(app) as client:
        yield client, config, fetcher, confirmer
    database.dispose()


def ses(name: str, **extra: str) -> bytes:
    return json.dumps(sns(fixture_bytes(name).decode(), **extra)).encode()


def test_ses_bounce_and_complaint_record_outcomes(
    setup: tuple[TestClient, Config, Fetcher, Confirmer],
) -> None:
    client, config, fetcher, _ = setup
    answer = client.post("/hooks/ses", content=ses("ses-bounce-permanent.json"))
    assert answer.status_code == 200 and answer.json() == {"recorded": 1}
    assert fetcher.urls == [CERT_URL]
    assert standing(config)[VERP_EMAIL] == "bounced"  # the VERP token in mail.source names 42
    assert [e[1:] for e in events(config)] == [("bounce", "ses", ISSUE, DELIVERY)]
    again = client.post("/hooks/ses", content=ses("ses-bounce-permanent.json"))
    assert again.status_code == 200 and again.json() == {"recorded": 0}  # SNS retries: no-op
    assert returned(config) == 1
    assert standing(config)["ann.lee@example.net"] == "active"  # the token wins over addresses


def test_ses_complaint(setup: tuple[TestClient, Config, Fetcher, Confirmer]) -> None:
    client, config, _fetcher, _ = setup
    answer = client.post("/hooks/ses", content=ses("ses-complaint.json", MessageId="m-2"))
    assert answer.status_code == 200 and answer.json() == {"recorded": 1}
    assert standing(config)[VERP_EMAIL] == "complained"
    assert [e[1:] for e in events(config)] == [("complaint", "ses", ISSUE, DELIVERY)]
    delivery = client.post("/hooks/ses", content=ses("ses-delivery.json", MessageId="m-3"))
    assert delivery.status_code == 200 and delivery.json() == {"recorded": 0}


def test_ses_refuses_what_it_cannot_verify(
    setup: tuple[TestClient, Config, Fetcher, Confirmer],
) -> None:
    client, config, fetcher, _ = setup
    payload = json.loads(ses("ses-bounce-permanent.json"))
    payload["Message"] = payload["Message"].replace("Permanent", "Transient")  # tampered
    assert client.post("/hooks/ses", content=json.dumps(payload)).status_code == 403
    other = json.loads(ses("ses-bounce-permanent.json", TopicArn="arn:aws:sns:us-east-1:9:x"))
    assert client.post("/hooks/ses", content=json.dumps(other)).status_code == 403
    off_list = json.loads(ses("ses-bounce-permanent.json"))
    off_list["SigningCertURL"] = "https://attacker.example/cert.pem"
    assert client.post("/hooks/ses", content=json.dumps(off_list)).status_code == 403
    assert client.post("/hooks/ses", content=b"not json").status_code == 400
    assert client.post("/hooks/ses", content=b"x" * (300 * 1024)).status_code == 413
    assert "attacker" not in " ".join(fetcher.urls)
    assert set(standing(config).values()) == {"active"} and returned(config) == 0


def test_ses_subscription_is_confirmed(
    setup: tuple[TestClient, Config, Fetcher, Confirmer],
) -> None:
    client, _config, _fetcher, confirmer = setup
    url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    body = sns(
        "You have chosen to subscribe",
        kind="SubscriptionConfirmation",
        SubscribeURL=url,
        Token="abc",
    )
    answer = client.post("/hooks/ses", content=json.dumps(body))
    assert answer.status_code == 200 and confirmer.urls == [url]
    forged = sns(
        "x", kind="SubscriptionConfirmation", SubscribeURL="https://evil.example/", Token="abc"
    )
    assert client.post("/hooks/ses", content=json.dumps(forged)).status_code == 403
    assert confirmer.urls == [url]


def test_postmark_needs_its_password(setup: tuple[TestClient, Config, Fetcher, Confirmer]) -> None:
    client, config, _fetcher, _ = setup
    body = fixture_bytes("postmark-hard-bounce.json")
    assert client.post("/hooks/postmark", content=body).status_code == 401
    wrong = base64.b64encode(b"postmark:guess").decode()
    refused = client.post(
        "/hooks/postmark", content=body, headers={"Authorization": f"Basic {wrong}"}
    )
    assert refused.status_code == 401 and returned(config) == 0
    right = base64.b64encode(b"postmark:hook-password").decode()
    auth = {"Authorization": f"Basic {right}"}
    answer = client.post("/hooks/postmark", content=body, headers=auth)
    assert answer.status_code == 200 and answer.json() == {"recorded": 1}
    assert standing(config)[VERP_EMAIL] == "bounced"
    assert [e[1:3] for e in events(config)] == [("bounce", "postmark")]
    assert client.post("/hooks/postmark", content=b"[]", headers=auth).status_code == 400


def test_hooks_are_off_until_configured(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    database = open_database(config.database_url)
    with TestClient(create_public_app(config, database)) as client:
        assert (
            client.post("/hooks/ses", content=ses("ses-bounce-permanent.json")).status_code == 404
        )
        assert client.post("/hooks/postmark", content=b"{}").status_code == 404
    database.dispose()
