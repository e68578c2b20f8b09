"""Shared test servers and helpers: SMTP, PostgreSQL, Postfix, Dovecot, processes, browser."""
