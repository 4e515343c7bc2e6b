"""The WSGI entry: the Socket.IO transport goes straight to Socket.IO, everything else to Flask."""
from __future__ import annotations

import socket
from typing import Any

from flask import request
from werkzeug.test import EnvironBuilder

from codedraft.entry import WsgiEntry


def call(app: Any, path: str, **environ_extra: Any) -> tuple[str, dict[str, str], bytes, dict[str, Any]]:
    environ = EnvironBuilder(path=path).get_environ()
    environ.update(environ_extra)
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answered["status"], answered["headers"] = status, dict(headers)

    body = b"".join(app.wsgi_app(environ, start_response))
    return answered["status"], answered["headers"], body, environ


def test_one_entry_stands_in_front_of_flask(app):
    assert isinstance(app.wsgi_app, WsgiEntry)


def test_the_transport_is_answered_by_socketio_with_the_transport_headers(app):
    left, right = socket.socketpair()
    try:
        status, headers, body, environ = call(app, "/socket.io/?EIO=4&transport=polling", **{"gunicorn.socket": left})
    finally:
        left.close()
        right.close()
    assert status.startswith("200") and body.startswith(b"0{")  # an Engine.IO open packet
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["X-Frame-Options"] == "DENY"
    # Flask-SocketIO's handlers find the app in the request's own environ; nothing is added for
    # eventlet (Engine.IO's middleware made a class for that on every request).
    assert environ["flask.app"] is app
    assert "eventlet.input" not in environ


def test_a_path_that_only_begins_like_the_transport_is_a_page_of_flask(app):
    status, headers, body, _environ = call(app, "/socket.iox")
    assert status.startswith("404")
    assert "text/html" in headers["Content-Type"]
    assert "default-src 'none'" not in headers["Content-Security-Policy"]


def test_a_socket_events_request_context_matches_a_rule(app):
    """Flask-SocketIO handles each socket event in a request context made from the socket's
    environ; an unmatched path left a routing exception whose traceback closed a reference cycle
    over the event's frames, request and context, for every message."""
    upgrade = {"HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade"}
    for extra in ({}, upgrade):  # a polling client's environ, a websocket's
        environ = EnvironBuilder(path="/socket.io/", query_string="EIO=4&transport=websocket").get_environ()
        environ.update(extra)
        with app.request_context(environ):
            assert request.routing_exception is None  # no exception, so no traceback to keep
            assert request.url_rule is not None and request.url_rule.websocket == bool(extra)
    # And no request reaches the rule: the entry hands the transport's path to Socket.IO first.
    status, _headers, _body, _environ = call(app, "/socket.io/", QUERY_STRING="EIO=4&transport=polling")
    assert status.startswith("200")
