"""The audience: who may be on the list, and how they get on and off it.

`addresses` holds the rules for an address, a name, categories (no database); `csvfile` reads
and writes digest's own subscriber CSV, and `imports` recognises the exports of other services
(Mailchimp, Substack, Buttondown, listmonk, Ghost) and turns them into the same rows. Those
three know nothing of the database: `digest.store.subscribers` applies their rows. The modules
that change someone's standing for the CLI, the web form and the HTTP API alike (sign-up and
upsert) sit above the store and call it.

Nothing is imported here.
"""
