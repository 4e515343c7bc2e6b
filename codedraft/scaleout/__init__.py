"""Running CodeDraft as several server processes: PostgreSQL + Redis, gunicorn hooks, checks.

See docs/deploy.md. Nothing here is needed by a single-process (SQLite) installation.
"""
