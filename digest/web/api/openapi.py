"""The OpenAPI 3.1 document of the API, made from the operations (`spec`) and the pydantic
models (`schemas`) the handlers use: JSON Schema 2020-12, as OpenAPI 3.1 takes it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from digest.web.api.schemas import Error
from digest.web.api.spec import Operation

REF = "#/components/schemas/{model}"
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def document(operations: list[Operation], *, title: str, version: str) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = []
    for op in operations:
        if op.body is not None:
            models.append((op.body, "validation"))
        models.extend((m, "serialization") for _, m in op.answers.values() if m is not None)
    models.append((Error, "serialization"))
    _, schemas = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{title}: digest API",
            "version": version,
            "description": (
                "Subscribers, issues and the event log of one digest instance. Every "
                "operation but this document needs `Authorization: Bearer TOKEN` (made with "
                "`digest admin token create NAME --scope read|write`). Errors are "
                '`{"error": {"code": ..., "message": ...}}`.'
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    found: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        found["description"] = op.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in op.path_params.items()
    ] + [
        {"name": q.name, "in": "query", "required": False, "description": q.description,
         "schema": q.schema()}
        for q in op.query
    ]  # fmt: skip
    if parameters:
        found["parameters"] = parameters
    if op.body is not None:
        found["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}
            },
        }
    answers = dict(op.answers)
    if op.scope != "public":
        answers.setdefault(401, ("No valid token.", Error))
        answers.setdefault(429, ("Too many requests for this token.", Error))
    found["responses"] = {
        str(status): _response(description, model, op.headers.get(status, {}), status)
        for status, (description, model) in sorted(answers.items())
    }
    if op.scope == "public":
        found["security"] = []
    return found


def _response(
    description: str, model: type[BaseModel] | None, headers: dict[str, Any], status: int
) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=model.__name__)} if model else {"type": "object"}
    found: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if status == 429:
        found["headers"] = {**RETRY_AFTER, **headers}
    elif status == 401:
        found["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer."}
        }
    return found
