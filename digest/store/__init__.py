"""The storage layer: the only place with SQL (DESIGN.md section 5).

`tables` holds the models, `database` the engine, sessions and migrations; `ledger` (issues),
`deliveries` (the state machine of one delivery), `recipients` (who an issue goes to),
`subscribers`, `lease`, `rate`, `jobs`, `events` (the event log and its feed), `report`,
`bounces`, `suppressed` and `apitokens` hold the queries of one concern each; `backup` (whole
copies: SQLite's backup API, pg_dump) and `copy` (every table into another database) serve
`digest db`. Everything above calls these functions; nothing above writes SQL.

Nothing is imported here: SQLAlchemy loads only when a module of the store is used.
"""
