"""The gevent driver's greenlets (codedraft/websocket.py), on real websockets.

Engine.IO's own writer waited on every socket's queue for as long as the socket lived; here a
greenlet writes only while something is queued (outgoing_queue_class). And a websocket is served
by a greenlet of its own that owns the socket, not in gunicorn's (GeventWebSocket._serve_on_its_own),
up to a limit. These tests run websockets over socket pairs, gevent's own sockets on one side and
wsproto as the browser on the other.
"""
from __future__ import annotations

import gc
import io
import json

import gevent
import gevent.socket
import greenlet
import socketio
from engineio.packet import CLOSE, MESSAGE, Packet
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Message, Request

from codedraft.websocket import GeventWebSocket, install, keep_what_a_socket_needs, outgoing_queue_class


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


def live_greenlets() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and not o.dead)


class SocketIOServer:
    """A real python-socketio server with this driver installed, reached the way gunicorn's
    greenlet reaches it (the upgrade request in an environ, the socket in it)."""

    def __init__(self, own_greenlets: int, **settings: object) -> None:
        # As the app's: each socket's events handled in order, in its reader (codedraft/web.py).
        self.sio = socketio.Server(async_mode="gevent", async_handlers=False, **settings)
        install(self.sio, own_greenlets=own_greenlets)
        self.disconnected: list[str] = []
        self.sio.on("echo", lambda sid, data: data)
        self.sio.on("fail", self.fail)
        self.sio.on("disconnect", lambda sid, reason=None: self.disconnected.append(sid))

    @staticmethod
    def fail(sid: str, data: object) -> None:
        raise RuntimeError("a handler that fails")

    def request(self, query: str, server_side: gevent.socket.socket | None, key: str = "") -> gevent.Greenlet:
        """One request, in a greenlet of its own as gunicorn runs it; for a websocket upgrade,
        the greenlet returns once the driver lets it go."""
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/socket.io/", "QUERY_STRING": query,
                   "RAW_URI": f"/socket.io/?{query}", "HTTP_HOST": "127.0.0.1"}
        if server_side is not None:
            environ.update(upgrade_environ(server_side, key))
            environ["RAW_URI"] = f"/socket.io/?{query}"
        answer: dict[str, object] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
            answer["status"] = status

        def gunicorn_greenlet() -> object:
            try:
                return b"".join(self.sio.handle_request(environ, start_response))
            except StopIteration:
                return None
            finally:
                if server_side is not None:
                    server_side.close()  # as gunicorn does when its greenlet is done with a connection

        return gevent.spawn(gunicorn_greenlet)

    def websocket(self, query: str = "EIO=4&transport=websocket") -> tuple[Browser, gevent.Greenlet]:
        server_side, client_side = gevent.socket.socketpair()
        browser = Browser(client_side)
        return browser, self.request(query, server_side, browser.key)


def send(browser: Browser, text: str) -> None:
    with gevent.Timeout(10):
        while browser.ws.state is ConnectionState.CONNECTING:  # the server's 101 first
            browser.ws.receive_data(browser.sock.recv(65536))
            browser.events.extend(e for e in browser.ws.events() if not isinstance(e, AcceptConnection))
    browser.sock.sendall(browser.ws.send(Message(data=text)))


def connect_socketio(browser: Browser) -> None:
    """Engine.IO's open packet read, Socket.IO's connect sent and answered."""
    assert texts(browser.read_until(1))[0].startswith("0{")
    send(browser, "40")
    assert texts(browser.read_until(2))[1].startswith("40{")


def test_a_connected_websocket_holds_no_greenlet_while_it_is_idle_and_answers_when_spoken_to():
    server = SocketIOServer(own_greenlets=10)
    first, _request = server.websocket()
    connect_socketio(first)  # Engine.IO's own service greenlet starts with its first socket
    gevent.sleep(0.05)
    before = live_greenlets()
    browser, request = server.websocket()
    connect_socketio(browser)
    with gevent.Timeout(10):
        request.join()  # gunicorn's greenlet is done with the connection at once
    assert request.value is None
    gevent.sleep(0.05)
    assert live_greenlets() == before  # nobody waits on the idle socket
    send(browser, '420["echo","hello"]')
    assert texts(browser.read_until(3))[2] == '430["hello"]'  # the event loop saw it come
    gevent.sleep(0.05)
    assert live_greenlets() == before  # the greenlet that handled it is gone again
    send(browser, '421["echo","again"]')
    assert texts(browser.read_until(4))[3] == '431["again"]'
    browser.sock.sendall(browser.ws.send(CloseConnection(code=1000)))
    assert browser.reads_to_the_end()  # the socket closed...
    with gevent.Timeout(10):
        while not server.disconnected:
            gevent.sleep(0.01)  # ...and the namespace heard the disconnect
    browser.sock.close()
    first.sock.close()


def test_a_failing_handler_is_logged_and_its_socket_reads_on():
    """Engine.IO logs a handler's exception and goes on; the reader must go on with it."""
    server = SocketIOServer(own_greenlets=10)
    browser, _request = server.websocket()
    connect_socketio(browser)
    send(browser, '42["fail","x"]')
    send(browser, '420["echo","still here"]')
    assert texts(browser.read_until(3))[2] == '430["still here"]'
    assert server.disconnected == []
    browser.sock.close()


def test_past_the_limit_a_websocket_stays_in_gunicorns_greenlet():
    server = SocketIOServer(own_greenlets=1)
    first, first_request = server.websocket()
    connect_socketio(first)
    second, second_request = server.websocket()
    connect_socketio(second)
    send(second, '420["echo","still served"]')
    assert texts(second.read_until(3))[2] == '430["still served"]'
    with gevent.Timeout(10):
        first_request.join()
    assert not second_request.dead  # gunicorn's greenlet serves it, under gunicorn's limit
    second.sock.sendall(second.ws.send(CloseConnection(code=1000)))
    with gevent.Timeout(10):
        second_request.join()
    first.sock.close()
    second.sock.close()


def test_a_socket_that_came_by_polling_upgrades_and_a_silent_one_is_let_go():
    server = SocketIOServer(own_greenlets=10, ping_interval=0.3, ping_timeout=0.3)
    opened = server.request("EIO=4&transport=polling", None)
    with gevent.Timeout(10):
        body = opened.get()
    sid = json.loads(bytes(body).decode()[1:])["sid"]
    browser, request = server.websocket(f"EIO=4&transport=websocket&sid={sid}")
    send(browser, "2probe")
    assert texts(browser.read_until(1)) == ["3probe"]
    send(browser, "5")  # upgrade
    send(browser, "40")
    # The noop that ends a waiting poll comes by websocket when no poll waits, as in Engine.IO.
    assert [t for t in texts(browser.read_until(3)) if t != "6"][1].startswith("40{")
    send(browser, '420["echo","upgraded"]')
    assert [t for t in texts(browser.read_until(4)) if t != "6"][2] == '430["upgraded"]'
    # Then silent: the pings go unanswered and, once nothing came for a ping interval and
    # timeout, the socket is let go, and the namespace hears the disconnect.
    assert browser.reads_to_the_end()
    with gevent.Timeout(10):
        while not server.disconnected:
            gevent.sleep(0.01)
    assert request.dead
    browser.sock.close()


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
