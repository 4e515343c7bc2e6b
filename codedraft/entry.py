"""The app's WSGI entry: the Socket.IO transport goes straight to Socket.IO, the rest to Flask.

Flask-SocketIO puts its middleware (and Engine.IO's under it) in front of Flask, and our security
headers and shared public pages added two more. Every request went through all four, and two of
them paid each time for something only other servers need: a copy of the environ (Flask-SocketIO)
and a class made afresh to hand eventlet the socket (Engine.IO). A websocket's request lasts as
long as the connection, so it kept those objects, and a greenlet stack one C frame deeper for every
middleware, for its whole life: about 6 MB with a thousand people connected (bench/realtime_bench.py,
viewers_1000). Here one object decides once, by path, and each side gets only what it needs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, abort

from codedraft.security import with_transport_headers

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WsgiEntry:
    """Routes a request by its path: ``transport_path`` (Engine.IO's) to the Socket.IO server,
    with the transport's security headers; anything else to ``pages`` (Flask, behind the shared
    public pages)."""

    def __init__(self, app: Flask, socketio_server: Any, pages: WSGIApp, transport_path: str) -> None:
        self.app = app
        self.socketio_server = socketio_server
        self.pages = pages
        self.transport_path = transport_path

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or ""
        if path.startswith(self.transport_path):
            # Flask-SocketIO's handlers find the app here (what its own middleware set, on a copy).
            environ["flask.app"] = self.app
            return self.socketio_server.handle_request(environ, with_transport_headers(start_response))  # type: ignore[no-any-return]
        return self.pages(environ, start_response)


def install(app: Flask) -> None:
    """Replace the middlewares ``socketio.init_app`` installed with one entry. Call it after
    ``init_app``: the paths and the Flask app are read from what Flask-SocketIO put there."""
    from codedraft.public.shared_pages import SharedPagesMiddleware

    socketio_middleware = app.wsgi_app  # Flask-SocketIO's, an Engine.IO WSGIApp
    flask_wsgi_app = socketio_middleware.wsgi_app  # type: ignore[attr-defined]
    transport_path = socketio_middleware.engineio_path  # type: ignore[attr-defined]
    socketio_server = socketio_middleware.engineio_app  # type: ignore[attr-defined]
    pages = SharedPagesMiddleware(flask_wsgi_app, app)
    app.wsgi_app = WsgiEntry(app, socketio_server, pages, transport_path)  # type: ignore[method-assign]
    # Flask-SocketIO handles each socket event in a request context made from the socket's
    # environ, and pushing one matches its path against Flask's rules. Unmatched, Werkzeug raised
    # NotFound, kept as the request's routing exception: its traceback held the event's frames,
    # and they the request and the context, a cycle only the garbage collector could free, some
    # 70 objects for every message (bench/realtime_bench.py, 1,000 viewers: 18,000 of them found
    # at one collection). These rules match that path instead: one for a websocket's environ, one
    # for a polling request's (Werkzeug raises WebsocketMismatch for a rule of the other kind). No
    # request reaches them: the entry sends the transport's path to Socket.IO before Flask sees it.
    for websocket in (False, True):
        app.add_url_rule(f"/{transport_path.strip('/')}/", endpoint="socketio_transport", view_func=_not_flasks,
                         websocket=websocket)


def _not_flasks() -> Any:
    abort(404)
