"""Which concurrency the server runs on, and how to run blocking work without stalling it.

The production server is gunicorn's gevent worker (docs/deploy.md): one OS thread serves every
socket as a greenlet, which holds a thousand connected people in one process where a thread per
socket (four per Socket.IO connection) collapsed under the GIL. The development server and the
test servers are Werkzeug threads. Code that waits on a disk or runs long in C (a commit's fsync,
argon2, an index write) goes through :func:`run_blocking`, so under gevent it runs on a real
thread and the event loop keeps serving; exports go further and run in a process of their own
(codedraft/exports/jobs.py), so a PDF layout never competes for the server's GIL.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Result = TypeVar("Result")


def gevent_active() -> bool:
    """Whether this process runs under gevent's monkey-patching (gunicorn's gevent worker)."""
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("threading"))


def socketio_async_mode(configured: str | None) -> str:
    """Flask-SocketIO's mode: gevent when the process is patched, else what is configured."""
    if gevent_active():
        return "gevent"
    return configured or "threading"


def run_blocking(function: Callable[..., Result], *args: Any) -> Result:
    """Call ``function(*args)`` and return its result. Under gevent it runs in the hub's pool of
    real threads (SQLite, libpq and argon2 release the GIL while they work), so one commit or one
    password hash never freezes every socket; otherwise it simply runs here."""
    if gevent_active():
        import gevent

        return gevent.get_hub().threadpool.apply(function, args)  # type: ignore[no-any-return]
    return function(*args)


def start_in_background(function: Callable[..., Any], *args: Any, name: str) -> None:
    """Start ``function(*args)`` on a real OS thread and return at once (its result is dropped).
    Under gevent that is a thread of the hub's pool: a greenlet running seconds of Python (a
    dictionary read) would hold every socket of the process until it finished."""
    if gevent_active():
        import gevent

        gevent.get_hub().threadpool.spawn(function, *args)
        return
    import threading

    threading.Thread(target=function, args=args, name=name, daemon=True).start()
