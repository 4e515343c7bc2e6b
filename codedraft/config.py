"""The one place that reads the environment.

Everything else receives configuration through ``app.config``; tests pass a
mapping to :func:`codedraft.create_app` instead of setting variables.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from codedraft.numbers import stored_integer

DEFAULT_STAKEHOLDER_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("provider", "GPAI provider / developer"),
    ("academia", "Academia"),
    ("open-source", "Open-source"),
    ("civil-society", "Civil society"),
    ("rightsholder", "Rightsholder"),
    ("industry", "Industry"),
    ("public-body", "Public body"),
    ("individual", "Individual expert"),
)


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (the driver installed), not psycopg2."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def from_environment(instance_path: Path) -> dict[str, Any]:
    """Build the configuration mapping from ``CODEDRAFT_*`` and the usual variables."""
    sqlite_path = instance_path / "codedraft.sqlite3"
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": database_url(os.environ.get("DATABASE_URL", f"sqlite:///{sqlite_path}")),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        # Names this deployment's keys on a shared Redis; by default a hash of the database URL.
        "REDIS_KEY_PREFIX": os.environ.get("CODEDRAFT_REDIS_KEY_PREFIX") or None,
        "SESSION_COOKIE_SECURE": _flag("CODEDRAFT_SECURE_COOKIES", False),
        "CODEDRAFT_BASE_URL": os.environ.get("CODEDRAFT_BASE_URL", "http://127.0.0.1:5000"),
        "SEARCH_INDEX_DIR": os.environ.get("CODEDRAFT_SEARCH_DIR", str(instance_path / "search")),
        "SEARCH_BACKEND": os.environ.get("CODEDRAFT_SEARCH_BACKEND", "auto"),
        # A serving process reads its codes' language dictionaries once started (search/prepare.py).
        "SEARCH_PREPARE_ON_START": _flag("CODEDRAFT_SEARCH_PREPARE", True),
        "EXPORT_DIR": os.environ.get("CODEDRAFT_EXPORT_DIR", str(instance_path / "exports")),
        # Mail is on only when an SMTP server is named (smtp://user:password@host:port, or
        # smtps:// for TLS from the start); without it invitations stay printed links.
        "SMTP_URL": os.environ.get("SMTP_URL") or None,
        "MAIL_FROM": os.environ.get("CODEDRAFT_MAIL_FROM", "CodeDraft <codedraft@localhost>"),
        # How long a clause document nobody here uses stays in memory, and how often to look.
        **_seconds("COLLAB_IDLE_SECONDS", "CODEDRAFT_IDLE_SECONDS"),
        **_seconds("COLLAB_SWEEP_SECONDS", "CODEDRAFT_SWEEP_SECONDS"),
        # How long a socket may stay silent after a ping before it is dropped (Engine.IO's
        # ping timeout; its default, 20 s, when unset).
        **_seconds("SOCKET_PING_TIMEOUT_SECONDS", "CODEDRAFT_PING_TIMEOUT"),
        # How often the server pings each socket (Engine.IO's ping interval; its default, 25 s,
        # when unset).
        **_seconds("SOCKET_PING_INTERVAL_SECONDS", "CODEDRAFT_PING_INTERVAL"),
        # Websockets one gevent worker holds (gunicorn.conf.py's worker_connections reads the same).
        **_count("SOCKET_MAX_CONNECTIONS", "CODEDRAFT_CONNECTIONS"),
        # Co-editing connections one account may hold in one process (a clause page holds one).
        **_count("COLLAB_SOCKETS_PER_ACCOUNT", "CODEDRAFT_SOCKETS_PER_ACCOUNT"),
        # Owner routing (measured against the clause feed, not the default; docs/deploy.md): every
        # process's public URL, in one order, and this process's own.
        "COLLAB_ROUTE_URLS": [u for u in os.environ.get("CODEDRAFT_ROUTE_URLS", "").split(",") if u] or None,
        "COLLAB_ROUTE_SELF": os.environ.get("CODEDRAFT_ROUTE_SELF") or None,
        # OpenID Connect sign-in (EU Login or another provider): on when both the client id and
        # the provider's metadata URL (.../.well-known/openid-configuration) are set.
        "OIDC_METADATA_URL": os.environ.get("CODEDRAFT_OIDC_METADATA_URL") or None,
        "OIDC_CLIENT_ID": os.environ.get("CODEDRAFT_OIDC_CLIENT_ID") or None,
        "OIDC_CLIENT_SECRET": os.environ.get("CODEDRAFT_OIDC_CLIENT_SECRET") or None,
        "OIDC_SCOPE": os.environ.get("CODEDRAFT_OIDC_SCOPE", "openid email profile"),
        "OIDC_PROVIDER_NAME": os.environ.get("CODEDRAFT_OIDC_PROVIDER_NAME", "EU Login"),
    }


def _seconds(key: str, variable: str) -> dict[str, float]:
    """``{key: seconds}`` if the variable is set (the code's default applies otherwise)."""
    raw = os.environ.get(variable)
    if raw is None:
        return {}
    try:
        return {key: float(raw)}
    except ValueError:
        raise ValueError(f"{variable} must be a number of seconds, not {raw!r}") from None


def _count(key: str, variable: str) -> dict[str, int]:
    """``{key: n}`` if the variable is set to a positive whole number (the code's default applies
    otherwise)."""
    raw = os.environ.get(variable)
    if raw is None:
        return {}
    number = stored_integer(raw)
    if not number:
        raise ValueError(f"{variable} must be a whole number above 0, not {raw!r}")
    return {key: number}


DEFAULTS: dict[str, Any] = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "codedraft_session",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 60 * 60 * 12,
    "WTF_CSRF_TIME_LIMIT": None,
    "WTF_CSRF_SSL_STRICT": True,
    "BABEL_DEFAULT_LOCALE": "en",
    "STAKEHOLDER_CATEGORIES": DEFAULT_STAKEHOLDER_CATEGORIES,
    "INVITATION_DAYS": 14,
    # Brute force and floods (SECURITY-CASES 30): attempts per window, per client.
    "LOGIN_ATTEMPTS_PER_MINUTE": 5,
    # Applications for an account, per client address.
    "REGISTRATIONS_PER_HOUR": 5,
    # Scaled out, the counters live in Redis; while Redis restarts, count in memory per process
    # instead of failing the request (docs/deploy.md).
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "MARKDOWN_MAX_CHARS": 400_000,
}


def engine_options(url: str) -> dict[str, Any]:
    """Connection pool settings by database.

    A SQLite file needs no liveness ping (there is no server to go away), and every socket
    thread may hold a connection while it works, so its pool is large. A server database keeps
    the ping, since its connections can be dropped under us, and a fixed pool with no overflow:
    under gevent dozens of socket handlers each hold a connection for one query, and overflow
    connections are closed on return, so a burst beyond the pool meant a new PostgreSQL backend
    (a fork) per message. 50 typists on one process: p99 868 ms with 10 + 10 overflow, 263 ms
    with 20 + 0 (bench/realtime_scaled.py). Waiting a moment for a pooled connection is cheap.
    With the search pool (5 + 5) and the writer, three processes stay within PostgreSQL's
    default max_connections of 100.
    """
    if url.startswith("sqlite"):
        return {"pool_size": 64, "max_overflow": 64, "pool_pre_ping": False}
    return {"pool_size": 20, "max_overflow": 0, "pool_pre_ping": True}
