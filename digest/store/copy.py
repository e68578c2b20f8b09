"""Every row of one database into another, SQLite or PostgreSQL either way, ids kept.

Tables are copied parents first (the foreign keys' order), each in id order, in batches, all
into one transaction of the target: a copy that fails leaves the target as empty as it was.
Values go through the models' own types, so time stamps stay UTC-aware and JSON stays JSON;
a JSON column tells SQL NULL from JSON `null` by a flag read alongside it, since both read
back as None. Ids are copied as they are, and every id sequence of the target is set past
the highest id the source ever gave out (its SQLite AUTOINCREMENT counter or PostgreSQL
sequence, not merely the largest id left), so no new row reuses the id of a row a link
already names. Then every table is counted on both sides.

The source is read as it stood at one instant (see `digest.ops.copy`): the caller hands this
module a snapshot, a SQLite backup file or a PostgreSQL repeatable-read transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Unicode,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url

from digest.errors import DigestError
from digest.store.tables import Base

# APScheduler's job table comes from migration 0002, not from the models; same shape here.
_scheduler = MetaData()
SCHEDULER_JOBS = Table(
    "apscheduler_jobs",
    _scheduler,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25)),
    Column("job_state", LargeBinary(), nullable=False),
    Index("ix_apscheduler_jobs_next_run_time", "next_run_time"),
)


# Tables a fresh migration fills itself (migration 0014 writes the database's identity): the
# source's rows replace the target's, so the copy is the same database to an outcome journal
# written before the move (digest.delivery.journal), which it replays.
FILLED_BY_MIGRATION = frozenset({"database_identity"})


def tables() -> list[Table]:
    """Every table digest keeps, parents before the tables that reference them."""
    return [*Base.metadata.sorted_tables, SCHEDULER_JOBS]


def _id_column(table: Table) -> Column[Any] | None:
    """The integer id a sequence (PostgreSQL) or ROWID counter (SQLite) hands out."""
    column = table.autoincrement_column
    return column if column is not None and isinstance(column.type, Integer) else None


def counts(connection: Connection) -> dict[str, int]:
    """Rows per table (0 for a table the database does not have)."""
    present = set(inspect(connection).get_table_names())
    return {
        table.name: (
            int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            if table.name in present
            else 0
        )
        for table in tables()
    }


def highest_ids(connection: Connection) -> dict[str, int]:
    """For each table with an id counter, the highest id it ever handed out (or the largest
    present, where the database keeps no counter)."""
    found: dict[str, int] = {}
    present = set(inspect(connection).get_table_names())
    for table in tables():
        column = _id_column(table)
        if column is None or table.name not in present:
            continue
        largest = int(connection.execute(select(func.max(column))).scalar() or 0)
        found[table.name] = max(largest, _counter(connection, table, column))
    return found


def _counter(connection: Connection, table: Table, column: Column[Any]) -> int:
    if connection.dialect.name == "sqlite":
        if not inspect(connection).has_table("sqlite_sequence"):
            return 0
        seq = connection.execute(
            text("SELECT seq FROM sqlite_sequence WHERE name = :name"), {"name": table.name}
        ).scalar()
        return int(seq or 0)
    value = connection.execute(
        text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:table, :column)::regclass)"),
        {"table": table.name, "column": column.name},
    ).scalar()
    return int(value or 0)


def _set_counter(connection: Connection, table: Table, column: Column[Any], value: int) -> None:
    """The next id the target hands out for `table` is `value + 1` (or more)."""
    if connection.dialect.name == "sqlite":
        if not table.kwargs.get("sqlite_autoincrement"):
            return  # plain ROWID: max(id) + 1, and the copied rows are there
        updated = connection.execute(
            text("UPDATE sqlite_sequence SET seq = :value WHERE name = :name AND seq < :value"),
            {"name": table.name, "value": value},
        ).rowcount
        if not updated and value:
            known = connection.execute(
                text("SELECT count(*) FROM sqlite_sequence WHERE name = :name"),
                {"name": table.name},
            ).scalar_one()
            if not known:
                connection.execute(
                    text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :value)"),
                    {"name": table.name, "value": value},
                )
        return
    value = max(value, _counter(connection, table, column))
    connection.execute(
        text("SELECT setval(pg_get_serial_sequence(:table, :column), :value, :called)"),
        {
            "table": table.name,
            "column": column.name,
            "value": max(value, 1),
            "called": value > 0,
        },
    )


def _writable(table: Table) -> Table:
    """`table` with its JSON columns writing Python None as SQL NULL (and JSON.NULL as
    JSON `null`), so that the copy can write each as it was read."""
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        if isinstance(column.type, JSON):
            column.type = JSON(none_as_null=True)
    return copy


def _rows(source: Connection, table: Table, batch: int) -> Iterator[list[dict[str, Any]]]:
    json_columns = [c.name for c in table.columns if isinstance(c.type, JSON)]
    flags = [table.c[name].is_(None).label(f"_null_{name}") for name in json_columns]
    query = select(table, *flags).order_by(*table.primary_key.columns)
    result = source.execution_options(yield_per=batch).execute(query)
    for partition in result.partitions(batch):
        rows = []
        for row in partition:
            found = row._mapping
            values = {column.name: found[column.name] for column in table.columns}
            for name in json_columns:
                if not found[f"_null_{name}"] and values[name] is None:
                    values[name] = JSON.NULL
            rows.append(values)
        yield rows


@contextmanager
def snapshot(connection: Connection) -> Iterator[Connection]:
    """Reads that all see the database at one instant: a read-only repeatable-read
    transaction on PostgreSQL. (A SQLite source is a backup file nobody else writes.)"""
    if connection.dialect.name == "postgresql":
        connection = connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    with connection.begin():
        yield connection


def copy_rows(source: Connection, target: Connection, *, batch: int = 2000) -> dict[str, int]:
    """Copy every row from `source` into the empty `target` (one transaction the caller
    commits), set the target's id counters, and return the source's counts per table.

    Raises DigestError when the target already holds rows."""
    held = {
        name: count
        for name, count in counts(target).items()
        if count and name not in FILLED_BY_MIGRATION
    }
    if held:
        name, count = next(iter(held.items()))
        raise DigestError(
            f"the target database is not empty ({count} rows in {name}): `digest db copy` "
            "fills a new, empty database."
        )
    present = set(inspect(source).get_table_names())
    copied = counts(source)
    for table in tables():
        if table.name not in present:
            continue
        writable = _writable(table)
        if table.name in FILLED_BY_MIGRATION:
            target.execute(writable.delete())
        for rows in _rows(source, table, batch):
            target.execute(writable.insert(), rows)
    keep_ids_past(target, highest_ids(source))
    return copied


def keep_ids_past(connection: Connection, highest: dict[str, int]) -> None:
    """Make each table's id counter hand out ids above `highest[table]` (where the database
    keeps a counter: every sequence on PostgreSQL, AUTOINCREMENT tables on SQLite); a
    counter already past it is left alone."""
    for table in tables():
        column = _id_column(table)
        if column is not None and table.name in highest:
            _set_counter(connection, table, column, highest[table.name])


def same_database(first: str, second: str) -> bool:
    """Whether two URLs name one database (one SQLite file, or one server's database)."""
    a, b = make_url(first), make_url(second)
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return Path(a.database or "").resolve() == Path(b.database or "").resolve()
    return (a.host, a.port or 5432, a.database) == (b.host, b.port or 5432, b.database)
