"""Delivery: one send engine and the parts it is built from (DESIGN.md section 5).

In the order a message meets them: `queue` (the ledger, or a plain list) hands out
recipients; `compose` picks their variant and links, `personalise` splices them into the
issue's prepared bytes, `dkim` signs; `rate` paces; `transport` sends over SMTP (our client
is `smtp`) or `outbox` writes `.eml` files for a dry run. `engine` runs a queue through a
transport over parallel connections, deciding by `retry` what to try again; `workers` runs
engines in several processes, `stop` makes them all stop together, never in the middle of
a message, and `settle` sees one issue through to its final status. `mailer` sends the
single transactional mails (the sign-up confirmation).
"""
