"""The storage layer: the only place with SQL (DESIGN.md section 5).

`tables` holds the models, `database` the engine, sessions and migrations; `ledger`,
`subscribers`, `lease` and `report` hold the queries of one concern each.
"""

from digest.store.database import (
    Database,
    alembic_config,
    connect,
    current_revision,
    head_revision,
    include_object,
    open_database,
    upgrade,
)
from digest.store.tables import (
    Base,
    Delivery,
    DeliveryStatus,
    ErasedAddress,
    Event,
    Issue,
    IssuePost,
    IssueStatus,
    Lease,
    ReturnedMail,
    Status,
    Subscriber,
    UTCDateTime,
    Variant,
    Worker,
    utcnow,
)

__all__ = [
    "Base",
    "Database",
    "Delivery",
    "DeliveryStatus",
    "ErasedAddress",
    "Event",
    "Issue",
    "IssuePost",
    "IssueStatus",
    "Lease",
    "ReturnedMail",
    "Status",
    "Subscriber",
    "UTCDateTime",
    "Variant",
    "Worker",
    "alembic_config",
    "connect",
    "current_revision",
    "head_revision",
    "include_object",
    "open_database",
    "upgrade",
    "utcnow",
]
