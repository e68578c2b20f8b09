"""The configuration stage: config.yaml in, a validated `Config` and each stage's settings out.

`schema` holds the pydantic models of every section and `Config` (their shared value checks in
`validators`), `load` reads the file with its `DIGEST_<SECTION>__<KEY>` overrides and turns
every problem into one sentence, `credentials` reads secrets, `presend` checks what a send
needs (YAML is parsed with limits by digest.sources.safeyaml), `cron` holds every schedule rule and
`templatecheck` compiles a user's template overrides; `files` finds and reads the file (standard
library only) and `snapshot` keeps what a validation gave `digest posts` (the `IssueSettings` of
`issues`) so that its next run loads no pydantic. Only the entry points (cli, web, the
issue pipeline and scheduler in digest.issues) hold a `Config`: every stage below them
receives the small frozen settings object of its own `settings.py`, built from the `Config`
by `stages` (sources, excerpts, rendering) and `sending` (delivery, inbound).

Nothing is imported here: importing `digest.config` costs nothing until a module is used.
"""
