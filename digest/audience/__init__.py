"""The audience: who may be on the list, and how they get on and off it.

`addresses` holds the rules for an address, a name, categories (no database); `csvfile` reads
and writes digest's own subscriber CSV, and `imports` recognises the exports of other services
(Mailchimp, Substack, Buttondown, listmonk, Ghost) and turns them into the same rows; the store
(`digest.store.subscribers.import_rows`) applies them. Above the store, for the web form, the
HTTP API, the CLI and the desk alike: `signup` (double opt-in: the confirmation mail's limits,
the confirmation), `upsert` (add or update one subscriber by address, never bringing back
someone who left) and `remove` (unsubscribe or erase one). `settings` holds what they read
from the configuration.

Nothing is imported here.
"""
