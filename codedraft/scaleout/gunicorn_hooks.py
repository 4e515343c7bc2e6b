"""gunicorn hooks for CodeDraft processes (gevent worker, one worker per process).

Why one worker per gunicorn: Socket.IO's long-polling transport needs every request of a
session to reach the process that holds it. gunicorn's master hands connections to its workers
with no stickiness, so each process is a separate gunicorn on its own port and the reverse proxy
(deploy/nginx.conf, ``ip_hash``) is what keeps a browser on one process.
"""
from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

from codedraft.numbers import stored_integer
from codedraft.server import enable_nodelay

# Allocations (net of frees) between two collections of the youngest generation; see post_worker_init.
YOUNG_COLLECTION_EVERY = 20_000

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class NoDelayMiddleware:
    """Sets TCP_NODELAY on the accepted socket of every request before the app sees it.

    gunicorn sets it on the listening socket, which Linux copies to accepted sockets; this makes
    it explicit for every platform. The /collab namespace does the same from
    ``environ["gunicorn.socket"]`` when a websocket connects (and records the result).
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket") or environ.get("gunicorn.sock")  # gthread, gevent
        if isinstance(sock, socket.socket):
            try:
                enable_nodelay(sock)
            except OSError:
                pass  # the peer went away already; the request will fail on its own
        return self.app(environ, start_response)


def nodelay_is_on(sock: socket.socket) -> bool:
    """Whether the kernel reports TCP_NODELAY on ``sock``."""
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def proxy_hops() -> int:
    """How many trusted proxies stand in front (``CODEDRAFT_PROXY_HOPS``, default 0).

    Behind nginx set it to 1: otherwise every request seems to come from the proxy's address and
    the per-client rate limits (login, comments, exports) would throttle everyone together.
    """
    return stored_integer(os.environ.get("CODEDRAFT_PROXY_HOPS", "0")) or 0


def wrap(app: WSGIApp) -> WSGIApp:
    """The app as a gunicorn process serves it: TCP_NODELAY always, proxy headers if trusted."""
    wrapped: WSGIApp = NoDelayMiddleware(app)
    hops = proxy_hops()
    if hops:
        wrapped = ProxyFix(wrapped, x_for=hops, x_proto=hops, x_host=hops)
    return wrapped


def post_worker_init(worker: Any) -> None:
    """Wrap the loaded app once per worker (gunicorn calls this after loading ``wsgi:app``),
    and start reading its codes' search dictionaries (after the fork: each worker its own)."""
    from codedraft.search.prepare import prepare_search_in_background

    flask_app = worker.wsgi
    flask_app.wsgi_app = wrap(flask_app.wsgi_app)
    # What loading the app made (modules, models, templates: some 150,000 objects) lives as long
    # as the worker: out of the collector's way, a full collection no longer walks it all. Those
    # collections came every few thousand allocations, so opening a clause with a long log
    # (10,000 rows read) paid for two or three of them, 25-100 ms each.
    gc.freeze()
    # A young collection every 20,000 allocations, not every 700: a co-editing worker allocates
    # and frees a few hundred objects per message, and with the default threshold the collector
    # ran many times per group commit. bench/realtime_bench.py, acknowledged updates per second
    # (3 runs each): 3,561-3,747 at 700, 3,934-4,351 at 20,000, no better at 100,000 and 11 MB more.
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
    prepare_search_in_background(flask_app)


def worker_exit(_server: Any, worker: Any) -> None:
    """A worker stopping (a restart, a deploy, SIGTERM) writes the clause bodies it owes first,
    so the body column equals the log without waiting for the next process to open the clause.
    A SIGKILLed worker cannot; the next open repairs that (ClauseStore._load)."""
    store = getattr(worker.wsgi, "extensions", {}).get("codedraft_collab")
    if store is None:
        return
    try:
        store.write_owed_bodies()
    except Exception:  # never keep a worker from stopping; the next open repairs the body
        logging.getLogger(__name__).exception("writing owed clause bodies at exit failed")
