"""The life of an issue: which posts are new, the next issue, the plan, the send, the schedule.

This is the one package that knows the order of steps (DESIGN.md section 5): `select` says
which posts are new and keys an issue by its period; `upcoming` reads the sources and the
ledger into what the next issue would hold; `plan` says what a send would do without writing;
`send` runs a send (lease, create, deliver, settle, retries) for the CLI, the scheduler and the
benchmarks alike; `join` is `digest send --worker`; `schedule` is `digest schedule`; `status`
assembles what `digest status` shows. Entry points of the library: these hold the `Config` and
hand each stage below its own settings.

Nothing is imported here.
"""
