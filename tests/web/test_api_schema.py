"""The API against its own OpenAPI document (issue 23): openapi-spec-validator accepts the
document, and schemathesis, generating requests from it (valid ones and, for every operation,
invalid ones too), finds no 500 and no answer that the document does not describe: status,
content type, headers and body schema. A bounded number of examples per operation keeps it
within the suite's time; a seed makes a failure repeatable."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from digest.access import tokens
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.delivery.mailer import SmtpMailer
from digest.store import subscribers as people
from digest.store.database import open_database
from digest.web.public import create_public_app
from tests.support.smtp_server import SMTPServer
from tests.web.test_public_web import make_config

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

EXAMPLES = 15  # per operation, generation mode and database
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[Starlette, str]]:
    """The public app with a token that may do everything, many times a minute, and a few
    people and events to find; on SQLite and PostgreSQL (which refuses what SQLite stores,
    such as a NUL character or an integer past 64 bits)."""
    with SMTPServer() as smtp:
        config = make_config(
            tmp_path,
            database_url,
            smtp.port,
            confirm_limit_per_ip=1_000_000,
            confirm_limit_per_address=1_000,
        )
        database = open_database(config.database_url)
        with database.session() as session:
            secret = tokens.create(
                session, "fuzz", scope="write", allow_confirmed=True, per_minute=1_000_000
            )
            for n in range(3):
                people.add(session, f"reader{n}@example.com", categories=["Python"])
        yield (
            create_public_app(
                config,
                database,
                mailer=SmtpMailer(
                    smtp_settings(config), sender_settings(config), dkim_settings(config)
                ),
            ),
            secret,
        )
        database.dispose()


def test_the_document_is_valid_openapi_3_1(served: tuple[Starlette, str]) -> None:
    app, _ = served
    with TestClient(app) as client:
        response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation
    assert set(document["paths"]) == {
        "/openapi.json",
        "/subscribers",
        "/subscribers/{email}",
        "/issues",
        "/issues/{key}",
        "/next-issue",
        "/events",
    }


def test_the_api_answers_as_its_document_says(served: tuple[Starlette, str]) -> None:
    app, secret = served
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    auth = {"Authorization": f"Bearer {secret}"}
    tried: dict[str, int] = {}
    answered: dict[int, int] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document holds no invalid operation
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @seed(23)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                response = case.call(headers=auth)
                case.validate_response(response, checks=CHECKS, headers=auth)
                label = case.operation.label
                tried[label] = tried.get(label, 0) + 1
                answered[response.status_code] = answered.get(response.status_code, 0) + 1
                assert "/api/v1/" in str(response.request.url), response.request.url

            run()
    assert len(tried) == 8 and min(tried.values()) >= 8, tried
    assert {200, 201, 404, 422} <= set(answered), answered  # valid requests and refused ones
