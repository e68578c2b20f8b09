"""The HTTP API under `/api/v1/` (DESIGN.md section 9): a Starlette app that `digest serve`
mounts, described by an OpenAPI 3.1 document at `/api/v1/openapi.json`.

One concept per module: `spec` describes each operation once (the route table and the
OpenAPI document are both made from it), `auth` checks bearer tokens and their limits,
`errors` answers every failure as `{"error": {"code", "message"}}`, `schemas` holds the
bodies, `subscribers`, `issues` and `events` the handlers, `app` puts them together. Handlers
are thin: the work is done by the library functions the CLI (and the desk) call.

Nothing is imported here.
"""
