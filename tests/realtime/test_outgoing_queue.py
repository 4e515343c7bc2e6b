"""A socket's outgoing queue under the gevent driver (codedraft/websocket.py: outgoing_queue_class).

Engine.IO's own writer waited on every socket's queue for as long as the socket lived; here a
greenlet writes only while something is queued. These tests run one real websocket over a
socket pair, gevent's own sockets on one side and wsproto as the browser on the other.
"""
from __future__ import annotations

import gevent
import gevent.socket
from engineio.packet import CLOSE, MESSAGE, Packet
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request

from codedraft.websocket import GeventWebSocket, outgoing_queue_class


class EngineIOSettings:
    """What GeventWebSocket reads from Engine.IO's server."""

    max_http_buffer_size = 1_000_000
    ping_interval = 25
    ping_timeout = 20


def upgrade_environ(server_side: gevent.socket.socket, key: str) -> dict[str, object]:
    """The upgrade request as gunicorn hands it over: read, in the environ."""
    return {"REQUEST_METHOD": "GET", "RAW_URI": "/socket.io/?EIO=4&transport=websocket",
            "HTTP_HOST": "127.0.0.1", "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade",
            "HTTP_SEC_WEBSOCKET_KEY": key, "HTTP_SEC_WEBSOCKET_VERSION": "13", "gunicorn.socket": server_side}


class Browser:
    """The client's end: reads what the server sent, as wsproto events."""

    def __init__(self, sock: gevent.socket.socket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        # Not sent: the server reads the request from the environ. Its key is what the answer must match.
        request = self.ws.send(Request(host="127.0.0.1", target="/")).decode("latin-1")
        self.key = next(line.split(":", 1)[1].strip() for line in request.split("\r\n")
                        if line.lower().startswith("sec-websocket-key:"))
        self.events: list[object] = []

    def read_until(self, wanted: int) -> list[object]:
        with gevent.Timeout(10, False):  # what has not come by then is missing: the asserts say so
            while len(self.events) < wanted:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.ws.receive_data(data)
                self.events.extend(e for e in self.ws.events() if not isinstance(e, AcceptConnection))
        return self.events


def served(body):
    """Run ``body(ws, browser)`` inside GeventWebSocket's handler, as Engine.IO's would run."""
    server_side, client_side = gevent.socket.socketpair()
    browser = Browser(client_side)
    outcome: dict[str, object] = {}

    def handler(ws: GeventWebSocket) -> None:
        outcome["result"] = body(ws, browser)

    try:
        GeventWebSocket(handler, EngineIOSettings())(upgrade_environ(server_side, browser.key), lambda *a: None)
    except StopIteration:
        pass
    finally:
        server_side.close()
        client_side.close()
    return outcome["result"]


def texts(events: list[object]) -> list[str]:
    return [e.data for e in events if isinstance(e, Message)]


def test_nothing_is_written_before_the_websocket_is_given_and_everything_after_in_order():
    def body(ws: GeventWebSocket, browser: Browser):
        queue = outgoing_queue_class()()
        queue.put(Packet(MESSAGE, "first"))
        queue.put(Packet(MESSAGE, "second"))
        gevent.sleep(0)
        waiting = queue.qsize()  # a polling client's queue: Engine.IO's poll reads it
        queue.write_to(ws)
        queue.put(Packet(MESSAGE, "third"))
        got = texts(browser.read_until(3))
        gevent.sleep(0)
        return waiting, got, queue.writing, queue.unfinished_tasks

    waiting, got, writing, unfinished = served(body)
    assert waiting == 2
    assert got == ["4first", "4second", "4third"]
    # The writer ended with the queue: no greenlet stays behind for an idle socket.
    assert writing is False and unfinished == 0


def test_none_closes_the_websocket_and_what_follows_is_dropped_so_join_returns():
    def body(ws: GeventWebSocket, browser: Browser):
        queue = outgoing_queue_class()().write_to(ws)
        queue.put(Packet(MESSAGE, "last words"))
        queue.put(None)  # what Engine.IO queues when the socket ends
        queue.put(Packet(CLOSE))  # Engine.IO's close may still queue a packet
        with gevent.Timeout(10):
            queue.join()  # where Engine.IO joined its writer
        events = browser.read_until(2)
        return ws.open, texts(events), [e for e in events if isinstance(e, CloseConnection)]

    still_open, got, closes = served(body)
    assert still_open is False
    assert got == ["4last words"]
    assert len(closes) == 1


def test_a_failed_write_closes_the_websocket_and_later_packets_are_dropped():
    def body(ws: GeventWebSocket, browser: Browser):
        queue = outgoing_queue_class()().write_to(ws)
        browser.sock.close()
        ws.sock.close()  # the peer is gone: the next write fails
        queue.put(Packet(MESSAGE, "to no one"))
        queue.put(Packet(MESSAGE, "nor this"))
        with gevent.Timeout(10):
            queue.join()
        return ws.open, queue.qsize()

    still_open, left = served(body)
    assert still_open is False
    assert left == 0
