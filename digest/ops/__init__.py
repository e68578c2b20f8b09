"""Running digest as a service: backups and restores (`backup`), moving an instance between
SQLite and PostgreSQL (`copy`). Each module is one job; settings they read are in `settings`.
"""
