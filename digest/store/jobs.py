"""The scheduler's stored jobs (APScheduler's own table, created by migration 0002): their
next run times read without starting a scheduler, and jobs of rhythms no longer configured
removed. The table object is APScheduler's (`SQLAlchemyJobStore.jobs_t`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, delete, select
from sqlalchemy.exc import SQLAlchemyError

from digest.store.database import Database


def next_run_times(database: Database, jobs: Table) -> dict[str, float]:
    """Job id -> next run time (a POSIX timestamp) as stored; {} before the table exists."""
    try:
        with database.engine.connect() as connection:
            rows = connection.execute(select(jobs.c.id, jobs.c.next_run_time))
            result = {str(job_id): float(stamp) for job_id, stamp in rows if stamp is not None}
            connection.rollback()
    except SQLAlchemyError:
        return {}
    return result


def delete_jobs(database: Database, jobs: Table, ids: Sequence[str]) -> None:
    with database.engine.begin() as connection:
        connection.execute(delete(jobs).where(jobs.c.id.in_(list(ids))))
