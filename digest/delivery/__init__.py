"""Delivery: one send engine and the parts it is built from (DESIGN.md section 5).

`engine` runs a queue through a transport; `smtp` is our pipelining SMTP client;
`personalise` splices each recipient's values into the issue's bytes; `dkim` signs them;
`workers` runs the engine in several processes; `mailer` sends single transactional mails.
"""
