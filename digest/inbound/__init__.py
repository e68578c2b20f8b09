"""What comes back: VERP tokens, classification of returned mail, mailboxes, webhooks.

`verp` makes and reads the envelope sender of each delivery; `classify` decides what one
returned message is (with `dsn`, `arf`, `prose`, `replies`, `parts` and `severity`: hard or
soft); `result` is what every reader produces; `mailbox` reads a Maildir, an mbox or IMAP;
`webhooks` parses provider payloads (SES, Postmark); `process` is the one path that records
results through `digest.store.bounces`. See docs/bounces.md for the rules.

Nothing is imported here.
"""
