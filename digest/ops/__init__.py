"""Running digest as a service: `digest doctor` (every check that can fail before a send),
health and Prometheus metrics, JSON logs, alerts to the owner, backups and restores
(`backup`), and moving an instance between SQLite and PostgreSQL (`copy`). Each module is one
job; the settings they read are in `settings`, built from the configuration by their caller.
"""
