"""The gevent driver's greenlets (codedraft/websocket.py), on real websockets.

Engine.IO's own writer waited on every socket's queue for as long as the socket lived; here a
greenlet writes only while something is queued (outgoing_queue_class). And a websocket is served
by a greenlet of its own that owns the socket, not in gunicorn's (GeventWebSocket._serve_on_its_own),
up to a limit. These tests run websockets over socket pairs, gevent's own sockets on one side and
wsproto as the browser on the other.
"""
from __future__ import annotations

import io

import gevent
import gevent.socket
from engineio.packet import CLOSE, MESSAGE, Packet
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request

from codedraft.websocket import GeventWebSocket, keep_what_a_socket_needs, outgoing_queue_class


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

    def reads_to_the_end(self) -> bool:
        """Whether the server closes the connection (within 10 s)."""
        with gevent.Timeout(10, False):
            while self.sock.recv(65536):
                pass
            return True
        return False


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


class EngineIOSocket:
    """What the driver reads from the Engine.IO socket whose handler it runs: its sid."""

    def __init__(self, sid: str, browser: Browser) -> None:
        self.sid = sid
        self.browser = browser
        self.served_in: gevent.Greenlet | None = None

    def handler(self, ws: GeventWebSocket) -> None:
        """Say hello, then echo every message until the browser closes."""
        self.served_in = gevent.getcurrent()
        ws.send("hello " + self.sid)
        while (message := ws.wait()) is not None:
            ws.send(message)


def upgraded(sid: str, registry: dict[str, GeventWebSocket], own_greenlets: int):
    """One upgrade as gunicorn's greenlet runs it; returns the browser, the Engine.IO socket,
    gunicorn's socket object and the greenlet that ran the upgrade (finished or not)."""
    server_side, client_side = gevent.socket.socketpair()
    browser = Browser(client_side)
    engine_socket = EngineIOSocket(sid, browser)

    def gunicorn_greenlet() -> None:
        try:
            GeventWebSocket(engine_socket.handler, EngineIOSettings(), registry, own_greenlets)(
                upgrade_environ(server_side, browser.key), lambda *a: None)
        except StopIteration:
            pass
        finally:
            server_side.close()  # as gunicorn does when its greenlet is done with a connection

    request = gevent.spawn(gunicorn_greenlet)
    return browser, engine_socket, server_side, request


def test_a_websocket_is_served_by_a_greenlet_of_its_own_until_the_limit_then_by_gunicorns():
    registry: dict[str, GeventWebSocket] = {}
    first, first_socket, first_gunicorn_socket, first_request = upgraded("a", registry, own_greenlets=1)
    with gevent.Timeout(10):
        first_request.join()  # gunicorn's greenlet is done with it at once...
    assert texts(first.read_until(1)) == ["hello a"]  # ...and it is served all the same
    assert first_gunicorn_socket.fileno() == -1  # gunicorn's socket object no longer holds it
    assert first_socket.served_in is not first_request and "a" in registry
    first.sock.sendall(first.ws.send(Message(data="4still there?")))  # gunicorn's close closed nothing
    assert texts(first.read_until(2)) == ["hello a", "4still there?"]

    second, second_socket, _socket, second_request = upgraded("b", registry, own_greenlets=1)
    assert texts(second.read_until(1)) == ["hello b"]
    # Past the limit: served in gunicorn's greenlet, under gunicorn's own connection limit.
    assert second_socket.served_in is second_request and not second_request.dead

    second.sock.sendall(second.ws.send(CloseConnection(code=1000)))
    with gevent.Timeout(10):
        second_request.join()
    first.sock.sendall(first.ws.send(CloseConnection(code=1000)))
    with gevent.Timeout(10):
        while registry:
            gevent.sleep(0.01)
    # The greenlet of its own closed the socket it owned: the browser reads the end of it.
    assert first.reads_to_the_end()
    first.sock.close()
    second.sock.close()


def test_a_sockets_environ_lets_go_of_the_connecting_requests_server_objects():
    class GunicornResponse:  # what gunicorn's early-hints callback holds on to
        pass

    held = GunicornResponse()
    body = io.BytesIO(b"")
    environ = {"wsgi.early_hints": lambda headers: held, "wsgi.input": body, "PATH_INFO": "/socket.io/",
               "HTTP_COOKIE": "session=1"}
    keep_what_a_socket_needs(environ)
    assert "wsgi.early_hints" not in environ
    assert environ["wsgi.input"] is not body and environ["wsgi.input"].read() == b""
    assert environ["PATH_INFO"] == "/socket.io/" and environ["HTTP_COOKIE"] == "session=1"
