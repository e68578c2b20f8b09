"""The configuration stage: config.yaml in, a validated `Config` and each stage's settings out.

`schema` holds the pydantic models of every section and `Config`, `load` reads the file with
its `DIGEST_<SECTION>__<KEY>` overrides and secrets, `safeyaml` parses YAML with limits,
`cron` reads schedule expressions and `templatecheck` compiles a user's template overrides.
Only the entry points (cli, web, the issue pipeline, the scheduler) hold a `Config`; every
stage below them receives the small frozen settings object it uses (`settings`).

Nothing is imported here: importing `digest.config` costs nothing until a module is used.
"""
