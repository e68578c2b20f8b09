"""The sending limits' shared schedule: one row per limit set, locked while a slot is drawn.

Every sending process of every machine draws each message's slot here, in a transaction
that locks the row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write lock), so the
limits hold for all of them together. Time is the database server's clock on PostgreSQL
(workers on several machines need not agree on the time), this machine's on SQLite (one
machine). The arithmetic is the caller's (digest.delivery.rate): this module only keeps the
state and serialises who reads and writes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from sqlalchemy import Connection, Table, bindparam, select, text, update

from digest.store.database import Database, conflict_insert
from digest.store.tables import SendRate

_table = cast(Table, SendRate.__table__)
_LOCK = (
    select(_table.c.second_next, _table.c.hour_next)
    .where(_table.c.name == bindparam("b_name"))
    .with_for_update()
)
_WRITE = (
    update(_table)
    .where(_table.c.name == bindparam("b_name"))
    .values(second_next=bindparam("b_second"), hour_next=bindparam("b_hour"))
)
_CLOCK = text("SELECT extract(epoch FROM clock_timestamp())")

State = tuple[float, float]  # (per-second, per-hour) theoretical time of the next message
Draw = Callable[[State, float], tuple[State, float]]  # (state, now) -> (state, slot time)


def reserve(database: Database, name: str, draw: Draw) -> float:
    """Draw one slot of the schedule `name` with `draw`; returns the seconds until it (0 or
    more). The row is created on first use by whichever worker comes first. A database away is
    waited out (a slot drawn twice, when a commit went unanswered, only wastes that slot)."""

    def draw_one(connection: Connection) -> float:
        now = _now(connection)
        row = connection.execute(_LOCK, {"b_name": name}).first()
        if row is None:  # two first comers: the second's insert waits, then does nothing
            connection.execute(
                conflict_insert(connection, _table)
                .values(name=name, second_next=0.0, hour_next=0.0)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            row = connection.execute(_LOCK, {"b_name": name}).one()
        state, slot = draw((float(row[0]), float(row[1])), now)
        connection.execute(_WRITE, {"b_name": name, "b_second": state[0], "b_hour": state[1]})
        return max(0.0, slot - now)

    return database.run_transaction(draw_one)


def _now(connection: Connection) -> float:
    if connection.dialect.name == "postgresql":
        return float(connection.execute(_CLOCK).scalar_one())
    return time.time()
