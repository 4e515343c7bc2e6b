"""Packets no Socket.IO client library would send, written straight to the websocket: each ends
its own connection with one warning line, runs no handler it names, and leaves no traceback.

Under Werkzeug's threads here (the server `make run` starts); tests/scaleout/test_websocket_transport.py
sends the same under gunicorn's gevent worker.
"""
from __future__ import annotations

import logging

import pytest
from websocket import WebSocket, WebSocketTimeoutException, create_connection

from tests.conftest import PASSWORD
from tests.support.live import YClient, cookie_header, http_sign_in, wait_for

#: (what it is, the Engine.IO messages sent after joining /collab)
HOSTILE = [
    ("an empty text message", [""]),
    ("text that is no Engine.IO packet", ["hello"]),
    ("bad base64 binary", ["babc"]),
    ("an event without a name", ['42/collab,[]']),
    ("an event whose name is a number", ['42/collab,[5]']),
    ("the reserved disconnect event", ['42/collab,["disconnect",null]']),
    ("the reserved connect event", ['42/collab,["connect",null]']),
    ("an attachment that is not there", ['451-/collab,["y",{"clause":"x","msg":{"_placeholder":true,"num":7}}]',
                                        b"\x00"]),
]

#: The loggers of the Socket.IO client library the tests' editors use (not the server's).
CLIENT_LOGGERS = ("engineio.client", "socketio.client")


def open_collab(base: str, cookie: str) -> WebSocket:
    url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    connection = create_connection(url, header=[f"Cookie: {cookie}"], timeout=30)
    assert connection.recv().startswith("0{")  # Engine.IO's open packet
    connection.send("40/collab,")
    assert connection.recv().startswith("40/collab,")  # Socket.IO's connect, accepted
    return connection


def closed(connection: WebSocket) -> bool:
    """Whether the server has closed ``connection`` (a close frame, or the socket ended)."""
    try:
        connection.settimeout(1)
        frame = connection.recv_data_frame(True)
    except WebSocketTimeoutException:
        return False  # open, and quiet
    except Exception:  # noqa: BLE001  (websocket-client raises one of several on a closed socket)
        return True
    return frame[0] == 0x8  # opcode: close


@pytest.mark.parametrize(("what", "messages"), HOSTILE, ids=[what for what, _ in HOSTILE])
def test_a_packet_no_client_sends_ends_its_own_connection_without_a_traceback(stage, caplog, what, messages):
    caplog.set_level(logging.WARNING)
    cookie = cookie_header(http_sign_in(stage.base, stage.people["chair"].email, PASSWORD))
    bystander = stage.editor("member")
    connection = open_collab(stage.base, cookie)
    try:
        for message in messages:
            if isinstance(message, bytes):
                connection.send_binary(message)
            else:
                connection.send(message)
        wait_for(lambda: closed(connection), 30, f"the connection that sent {what} to close")
    finally:
        connection.shutdown()
    # Werkzeug's own access line for bytes it cannot read as a request (the client's reply to the
    # close, arriving after the websocket ended) is logged at error level, without a traceback.
    # The test's own Socket.IO clients log too: on a busy machine an idle one whose next ping is
    # late gives up ("packet queue is empty, aborting"), which says nothing about the server.
    assert not [record for record in caplog.records if not record.name.startswith(CLIENT_LOGGERS)
                and (record.exc_info or (record.levelno >= logging.ERROR and record.name != "werkzeug"))], what
    assert any("closing" in record.getMessage() for record in caplog.records), what
    # Everyone else goes on.
    bystander.insert(0, "still here ")
    wait_for(lambda: any(ack.get("ok") for ack in bystander.acks), 30, "the bystander's edit to be acknowledged")


def test_a_reserved_event_does_not_reopen_the_connection_with_a_fresh_budget(app, stage):
    """`connect` sent as an event ran the namespace's connect handler again: a new message budget
    (flood control undone) and a place outside the per-account count."""
    namespace = app.extensions["codedraft_collab_namespace"]
    cookie = cookie_header(http_sign_in(stage.base, stage.people["chair"].email, PASSWORD))
    held = [open_collab(stage.base, cookie) for _ in range(3)]
    try:
        wait_for(lambda: len(namespace.connections) == 3, 10, "three connections")
        for connection in held:
            connection.send('42/collab,["disconnect",null]')
        # Closed, each of them: none is left connected while forgotten by the namespace.
        for connection in held:
            wait_for(lambda connection=connection: closed(connection), 30, "every connection to close")
        wait_for(lambda: not namespace.connections, 10, "the namespace to hold none")
    finally:
        for connection in held:
            connection.shutdown()


def test_the_default_namespace_is_not_joined(stage):
    url = stage.base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    connection = create_connection(url, timeout=30)
    try:
        assert connection.recv().startswith("0{")
        connection.send("40")  # the default namespace "/", no cookie
        answer = connection.recv()
        assert answer.startswith("44"), answer  # Socket.IO's connect_error
    finally:
        connection.shutdown()
    # A signed-in client still joins /collab.
    assert YClient(stage.base, http_sign_in(stage.base, stage.people["chair"].email, PASSWORD)).connect()
