"""The development and single-process server: Werkzeug threads with TCP_NODELAY.

Without TCP_NODELAY, Nagle's algorithm and delayed ACKs put a 40-48 ms floor under
message delivery once about ten clients type (measured here, see DESIGN.md).
"""
from __future__ import annotations

import socket
from typing import Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, run_simple


def enable_nodelay(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayRequestHandler(WSGIRequestHandler):
    """Each accepted connection, HTTP and websocket alike, sends small frames at once."""

    def setup(self) -> None:
        super().setup()
        enable_nodelay(self.connection)

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "quiet", False):
            return
        super().log_request(*args, **kwargs)


def serve(app: Flask, *, host: str = "127.0.0.1", port: int = 5000, quiet: bool = False) -> None:
    """Serve until interrupted. Socket.IO is mounted as WSGI middleware by ``init_app``."""
    from codedraft.search.prepare import prepare_search_in_background

    NoDelayRequestHandler.quiet = quiet  # type: ignore[attr-defined]
    prepare_search_in_background(app)
    run_simple(host, port, app, threaded=True, use_reloader=False, request_handler=NoDelayRequestHandler)
