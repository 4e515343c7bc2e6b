"""The websocket under gunicorn's gevent worker: read in the connection's own greenlet.

Engine.IO's gevent driver serves websockets through simple-websocket, which starts a reader
greenlet for every connection, hands each message to the handler's greenlet through an event,
and accepts permessage-deflate, so every frame sent is compressed for one receiver at a time.
With a thousand people connected that was a thousand more greenlets (each with its own saved
stack), and on the fan-out path wsproto's compression was half of the cost of sending a frame
(about 15 µs of 22): our frames are a few dozen bytes of Yjs update that do not shrink.

``GeventWebSocket`` keeps Engine.IO's contract (``handler(ws)``, then ``ws.wait()``,
``ws.send()``, ``ws.close()``) and does the protocol with wsproto, offering no extension. Up to
a limit, a websocket is not read by a greenlet that waits for it: once upgraded, the event loop
watches its socket and a greenlet reads and hands Engine.IO what came only when something has
(:meth:`GeventWebSocket._open_then_listen`), so an idle connection holds no greenlet at all.
Past the limit it is read in the greenlet gunicorn gave the request, by Engine.IO's own handler.

Sends come from whichever greenlet made the packet (a broadcast, an acknowledgement), from the
short-lived writer of the socket's queue (:func:`outgoing_queue_class`) and, pongs, from the
reader, so a lock keeps one frame from being written into another.

A broadcast goes further (:func:`write_to_each`): Engine.IO would put the same packets into each
receiver's queue, wake each receiver's writer greenlet, and frame and send them there, one
receiver after another; that was most of the server's time with 200 people in a clause. The
packets are framed once instead and written straight to each receiver's socket, where that
keeps the receiver's order: nothing is waiting in its queue and its writer is not sending.
Otherwise they go through the queue as before. Under this driver every packet python-socketio
sends one socket (an acknowledgement, a reply) goes the same way (:func:`send_packet`).

:func:`install` puts the driver into one Socket.IO server's Engine.IO (its own copy of the
driver table, not the module's); Werkzeug's threads (development and tests) keep
simple-websocket, and there every broadcast goes through the queues. Under both, a message
Engine.IO cannot decode ends the connection before it reaches Engine.IO
(:func:`engine_io_readable`).
"""
from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from engineio import packet as engine_packet
from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
from engineio.packet import Packet as EnginePacket
from engineio.socket import Socket as EngineSocket
from socketio import packet as socketio_packet
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason, FrameProtocol
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

log = logging.getLogger(__name__)

RECEIVE_BYTES = 16 * 1024
# How long a greenlet that read a websocket's message waits for the next before it leaves the
# socket to the event loop's watching (GeventWebSocket._comes_soon).
LINGER_SECONDS = 1.0
# ... once this many reads in a row came within LINGER_SECONDS of the one before.
QUICK_READS_BEFORE_LINGERING = 3

Handler = Callable[["GeventWebSocket"], Any]


class _More:
    """What :meth:`GeventWebSocket._next_message` gives when no message is whole yet."""


_MORE = _More()


class GeventWebSocket:
    """One websocket connection of gunicorn's gevent worker, as Engine.IO's driver."""

    def __init__(self, handler: Handler, server: Any, registry: dict[str, GeventWebSocket] | None = None,
                 own_greenlets: int = 0) -> None:
        self.handler = handler
        # How many open websockets of this driver may be served by greenlets of their own
        # (see _serve_on_its_own); past it, in gunicorn's greenlet.
        self.own_greenlets = own_greenlets
        # Engine.IO passes its Socket's bound handler: the sid under which a broadcast finds us.
        self.sid: str | None = getattr(getattr(handler, "__self__", None), "sid", None)
        self.registry = registry if registry is not None else {}
        self.max_message_bytes: int = server.max_http_buffer_size
        # A silent peer ends the read after Engine.IO's own ping deadline has passed, so a
        # connection whose other end vanished does not hold its greenlet (or, read by the event
        # loop, its place) for ever.
        self.idle_seconds: float = server.ping_interval + server.ping_timeout
        self.sock: socket.socket | None = None
        # The frames' side of wsproto, once the handshake is done. The handshake's own object
        # (an HTTP/1.1 parser with the request in it) is not kept: with a thousand people
        # connected it was some 4 MB held for nothing.
        self.connection: Connection | None = None
        from gevent.lock import Semaphore  # here: importing this module must not load gevent

        self.send_lock = Semaphore()
        self.open = False
        # A message whose frames have not all come yet (wsproto gives each frame as it comes).
        self._parts: list[str | bytes] = []
        self._size = 0
        # Reading by the event loop (_listen): its watchers, when the peer was last heard, and
        # whether a greenlet is reading now.
        self._readable: Any = None
        self._deadline: Any = None
        self._heard = 0.0
        # How many reads in a row came within LINGER_SECONDS of the one before (_comes_soon).
        self._quick_reads = 0
        self._reading = False
        self._ended = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from gevent.socket import socket as GeventSocket  # here: importing this module must not load gevent

        sock = environ.get("gunicorn.socket")
        # gevent's socket (what the worker's patched socket.socket is): its send takes a timeout.
        if not isinstance(sock, GeventSocket):
            raise RuntimeError("GeventWebSocket serves gunicorn's gevent worker only")
        self.sock = sock
        sock.settimeout(self.idle_seconds)
        if not self._handshake(environ):
            raise StopIteration()
        if self.sid is not None:
            if len(self.registry) < self.own_greenlets:
                self._serve_on_its_own(sock)
                raise StopIteration()
            self.registry[self.sid] = self
        self._serve()
        # gunicorn's gevent worker: the request was answered on the socket itself (the 101 and
        # every frame since), so no WSGI response follows; gunicorn closes the connection.
        raise StopIteration()

    def _serve(self) -> None:
        """Engine.IO's handler for this websocket, until the connection ends."""
        try:
            self.handler(self)
        finally:
            self.open = False
            if self.sid is not None and self.registry.get(self.sid) is self:
                del self.registry[self.sid]

    def _serve_on_its_own(self, sock: Any) -> None:
        """Serve the websocket in a new greenlet that owns its socket, and let gunicorn's go.

        gunicorn's greenlet reached here through gunicorn's request handling, the WSGI entry and
        Engine.IO's upgrade, and kept all of it (the request, its parser, their frames, a deep C
        stack saved at every switch) for as long as the websocket lasted. The new greenlet opens
        the websocket for Engine.IO and then leaves the reading to the event loop
        (:meth:`_open_then_listen`). The socket is taken from gunicorn first (its file descriptor,
        in a socket object of our own): gunicorn closes its own object when its greenlet ends,
        which then closes nothing. 1,000 viewers 173.2 -> 163.3 MB (bench/realtime_bench.py,
        quick runs, 8 December), before the event loop read for it. gunicorn's pool of
        ``worker_connections`` no longer counts these connections, so this driver serves at most
        ``own_greenlets`` of them so; the rest stay in gunicorn's greenlets, under its limit, as
        before."""
        from gevent import spawn  # here: importing this module must not load gevent
        from gevent.socket import socket as GeventSocket

        owned = GeventSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        owned.settimeout(self.idle_seconds)
        self.sock = owned
        assert self.sid is not None
        self.registry[self.sid] = self
        spawn(self._open_then_listen)

    # --- reading by the event loop ---------------------------------------------------------

    def _open_then_listen(self) -> None:
        """Engine.IO's handler for this websocket, except that no greenlet waits for the next
        message: the event loop watches the socket, and a greenlet reads and handles what came
        (:meth:`_read_and_handle`) only once something has.

        Engine.IO's handler waits in a greenlet for each message for as long as the connection
        lasts; with a thousand people connected, a thousand greenlets asleep, each with its
        saved stack and its Python frames: 1,000 viewers 161.0 -> 148.4 MB (bench/realtime_bench.py,
        quick runs, 8 December). What the handler does around its wait is done here the same way: the
        upgrade from polling (:meth:`_upgraded`), the writer (the socket's queue,
        :func:`outgoing_queue_class`), each message to ``Socket.receive`` in order, and at the
        end the writer finished and the socket closed as a broken transport (:meth:`_end`)."""
        engine = self.handler.__self__  # type: ignore[attr-defined]
        try:
            upgraded = self._upgraded(engine)
        except OSError:  # the websocket broke while answering the probe
            upgraded = False
        if not upgraded:
            self._let_go()
            return
        engine.queue.write_to(self)
        from gevent import get_hub

        loop = get_hub().loop
        assert self.sock is not None
        self._readable = loop.io(self.sock.fileno(), 1)
        # A silent peer is let go once nothing came for ``idle_seconds`` (looked at every
        # ``idle_seconds``: let go between one and two of them after it fell silent), as the
        # socket's timeout let go of Engine.IO's waiting greenlet.
        self._deadline = loop.timer(self.idle_seconds, self.idle_seconds)
        self._heard = loop.now()
        self._deadline.start(self._on_deadline)
        self._reading = True
        self._read_and_handle()

    def _upgraded(self, engine: Any) -> bool:
        """What Engine.IO's handler does first: a socket that came by polling proves the
        websocket (a "probe" ping, answered; then the upgrade packet); one that came straight by
        websocket is connected by it. False if the upgrade failed; polling goes on then."""
        if not engine.connected:
            engine.connected = True
            engine.upgraded = True
            return True
        engine.upgrading = True  # Engine.IO holds what it sends until the upgrade is done
        probe = self._next_packet()
        if probe is None or probe.packet_type != engine_packet.PING or probe.data != "probe":
            log.info("%s: failed websocket upgrade, no probe ping", self.sid)
            engine.upgrading = False
            return False
        self.send(EnginePacket(engine_packet.PONG, data="probe").encode())
        engine.queue.put(EnginePacket(engine_packet.NOOP))  # ends the poll that waits
        upgrade = self._next_packet()
        engine.upgrading = False
        engine.upgraded = upgrade is not None and upgrade.packet_type == engine_packet.UPGRADE
        if not engine.upgraded:
            log.info("%s: failed websocket upgrade, no upgrade packet", self.sid)
        return bool(engine.upgraded)

    def _next_packet(self) -> EnginePacket | None:
        message = self.wait()
        if message is None:
            return None
        try:
            return EnginePacket(encoded_packet=message)
        except Exception:  # noqa: BLE001 (whatever the decoder raises: not an upgrade)
            return None

    def _on_readable(self) -> None:
        """In the event loop, which must not wait: a new greenlet reads what came, switched to
        at once, as the event loop switches to a greenlet waiting for its socket (it is back here
        when the greenlet first waits). Started by ``spawn``, it would run only after everything
        else the loop had found ready in this turn: under load, each message would wait behind
        the others' work, where a waiting greenlet did not."""
        from gevent import Greenlet

        self._readable.stop()
        self._reading = True
        Greenlet(self._read_and_handle).switch()

    def _read_and_handle(self) -> None:
        """Handle every whole message read so far, reading on while the socket has bytes; then
        go back to the event loop's watching, or end the connection. Whatever goes wrong here
        ends this connection only, and ends it properly (a reader that died would leave it
        neither watched nor let go)."""
        try:
            if not self._read_until_quiet():
                return
        except Exception:
            log.exception("%s: reading the websocket failed; closing the connection", self.sid)
        self._reading = False
        self._end()

    def _read_until_quiet(self) -> bool:
        """False once the socket is quiet and watched again; True when the connection ends."""
        assert self.sock is not None and self.connection is not None
        while True:
            message = self._next_message()
            if message is _MORE:
                if self._ended:  # let go meanwhile: the descriptor may be another socket's by now
                    return False
                try:
                    data = os.read(self.sock.fileno(), RECEIVE_BYTES)
                except BlockingIOError:
                    if self._comes_soon():
                        continue
                    self._reading = False
                    self._readable.start(self._on_readable)
                    return False
                except OSError:  # reset by the peer, or closed here
                    data = b""
                if not data:
                    return True
                now = self._deadline.loop.now()
                self._quick_reads = self._quick_reads + 1 if now - self._heard < LINGER_SECONDS else 0
                self._heard = now
                try:
                    self.connection.receive_data(data)
                except LocalProtocolError:  # data after the connection closed
                    return True
            elif message is None or not self._handle(message):
                return True

    def _comes_soon(self) -> bool:
        """Whether the socket has bytes to read within ``LINGER_SECONDS``, waited for here.

        A peer that keeps sending (someone typing, a script) would otherwise cost a new greenlet
        per message: its creation, and its frame stack's memory mapped and unmapped. Without
        this wait, acknowledged updates per second were 2,306-2,681 against 2,682-2,819 with
        Engine.IO's waiting greenlet (bench/realtime_bench.py, quick runs taking turns, 8
        December); with it the two are within the machine's noise. Only a socket whose last
        reads came close together waits, and a socket that falls quiet holds no greenlet a second
        later: a thousand people opening a page at once each send two or three messages in a row
        and then nothing, and their readers waiting meanwhile raised the memory's high-water mark
        (1,000 viewers: about 1 MB)."""
        if self._quick_reads < QUICK_READS_BEFORE_LINGERING:
            return False
        from gevent import Timeout, get_hub

        with Timeout(LINGER_SECONDS, False):
            get_hub().wait(self._readable)
            return not self._ended
        return False

    def _handle(self, message: str | bytes) -> bool:
        """One message to Engine.IO, as its handler gives them; False if the connection ends."""
        engine = self.handler.__self__  # type: ignore[attr-defined]
        from engineio import exceptions

        try:
            engine.receive(EnginePacket(encoded_packet=message))
        except exceptions.UnknownPacketError:
            return True
        except exceptions.SocketIsClosedError:
            return False
        except Exception:
            log.exception("%s: receiving a packet failed; closing the connection", self.sid)
            return False
        return True

    def _on_deadline(self) -> None:
        """In the event loop: let go of a peer silent for ``idle_seconds``, unless a greenlet
        is reading from it now (a handler may take its time)."""
        if self._reading or self._ended:
            return
        if self._deadline.loop.now() - self._heard >= self.idle_seconds:
            from gevent import spawn

            self._readable.stop()
            self._reading = True
            spawn(self._end)

    def _end(self) -> None:
        """What Engine.IO's handler does when its connection ends: the writer writes what was
        queued and closes the websocket, and the socket closes as a broken transport (the
        namespace's disconnect runs); then the connection is let go."""
        if self._ended:
            return
        self._ended = True
        engine = self.handler.__self__  # type: ignore[attr-defined]
        try:
            engine.queue.put(None)
            engine.queue.join()
            engine.close(wait=False, abort=True, reason=engine.server.reason.TRANSPORT_CLOSE)
        finally:
            self._let_go()

    def _let_go(self) -> None:
        """Closed, out of the registry, the watchers and the socket closed."""
        self.open = False
        if self.sid is not None and self.registry.get(self.sid) is self:
            del self.registry[self.sid]
        for watcher in (self._readable, self._deadline):
            if watcher is not None:
                watcher.close()
        self._readable = self._deadline = None
        if self.sock is not None:
            self.sock.close()

    def _handshake(self, environ: dict[str, Any]) -> bool:
        """Answer the upgrade request gunicorn has read (its headers are in ``environ``)."""
        lines = [f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('RAW_URI') or '/'} HTTP/1.1"]
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                lines.append(f"{key[5:].replace('_', '-')}: {value}")
        handshake = H11Handshake(ConnectionType.SERVER)
        try:
            handshake.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            request = next(iter(handshake.events()), None)
            if not isinstance(request, Request):
                return False
            self._write(handshake.send(AcceptConnection()))
        except (RemoteProtocolError, LocalProtocolError, UnicodeEncodeError) as error:
            log.info("websocket handshake refused: %s", error)
            self._refuse(handshake)
            return False
        except OSError:
            return False
        self.connection = handshake.connection
        self.open = self.connection is not None
        return self.open

    def _refuse(self, handshake: H11Handshake) -> None:
        try:
            self._write(handshake.send(RejectConnection(status_code=400)))
        except (LocalProtocolError, OSError):
            pass

    def _write(self, data: bytes) -> None:
        assert self.sock is not None
        with self.send_lock:
            self.sock.sendall(data)

    # --- Engine.IO's side ------------------------------------------------------------------

    def send(self, message: str | bytes) -> None:
        """One message, text or binary; raises OSError once the connection is closed."""
        if not self.open:
            raise OSError("the websocket is closed")
        event = Message(data=message) if isinstance(message, bytes) else TextMessage(data=str(message))
        if self.connection is None:
            raise OSError("the websocket is not open")
        try:
            self._write(self.connection.send(event))
        except LocalProtocolError as error:
            self.open = False
            raise OSError(str(error)) from error

    def wait(self) -> str | bytes | None:
        """The next whole message, or None once the connection has ended (closed by either
        side, broken, silent past the ping deadline, or a protocol error)."""
        if self.connection is None:
            return None
        while True:
            message = self._next_message()
            if message is not _MORE:
                return message
            if not self._read():
                return None

    def _next_message(self) -> str | bytes | None | _More:
        """The next whole message in what has been read: None if the connection has ended,
        ``_MORE`` if no message is whole yet."""
        assert self.connection is not None
        for event in self.connection.events():
            if isinstance(event, (BytesMessage, TextMessage)):
                self._size += len(event.data)
                if self._size > self.max_message_bytes:
                    self.close(CloseReason.MESSAGE_TOO_BIG, "Message is too big")
                    return None
                self._parts.append(bytes(event.data) if isinstance(event.data, bytearray) else event.data)
                if event.message_finished:
                    message = _joined(self._parts)
                    self._parts, self._size = [], 0
                    if not engine_io_readable(message):
                        log.warning("closing websocket %s: not an Engine.IO packet", self.sid)
                        self.close(CloseReason.PROTOCOL_ERROR, "Not an Engine.IO packet")
                        return None
                    return message
            elif isinstance(event, Ping):
                self._answer(event.response())
            elif isinstance(event, CloseConnection):
                self._answer(event.response())
                self.open = False
                return None
        return _MORE

    def write_now(self, frames: bytes) -> bool:
        """Write already framed messages if the write can start now. True once they are this
        connection's (written, or being finished by a greenlet that holds the send lock; or the
        connection is gone); False if another write is under way or the socket cannot take a byte,
        and the caller queues them instead."""
        if not self.open or self.send_lock.locked():
            return False
        assert self.sock is not None
        self.send_lock.acquire()
        try:
            # gevent's send takes a timeout; 0: never wait here, the other receivers are waiting.
            sent = self.sock.send(frames, 0, 0.0)  # type: ignore[call-arg]
        except BlockingIOError:
            sent = 0
        except OSError:
            self.send_lock.release()
            self.open = False
            return True
        if sent == 0:
            self.send_lock.release()
            return False
        if sent < len(frames):
            import gevent

            gevent.spawn(self._finish_write, memoryview(frames)[sent:])
        else:
            self.send_lock.release()
        return True

    def _finish_write(self, rest: memoryview) -> None:
        assert self.sock is not None
        try:
            self.sock.sendall(rest)
        except OSError:
            self.open = False
        finally:
            self.send_lock.release()

    def close(self, reason: int = CloseReason.NORMAL_CLOSURE, message: str | None = None) -> None:
        if not self.open:
            return
        self.open = False
        self._answer(CloseConnection(code=reason, reason=message))

    # --- reading ---------------------------------------------------------------------------

    def _read(self) -> bool:
        """Feed what the socket has to wsproto; False once nothing more will come."""
        assert self.sock is not None and self.connection is not None
        try:
            data = self.sock.recv(RECEIVE_BYTES)
        except OSError:  # reset, or silent past the deadline (socket.timeout is an OSError)
            data = b""
        if not data:
            self.open = False
            return False
        try:
            # A malformed frame comes back from events() as a CloseConnection with its code.
            self.connection.receive_data(data)
        except LocalProtocolError:  # data after the connection closed
            self.open = False
            return False
        return True

    def _answer(self, event: Any) -> None:
        """A control frame (pong, close); a peer that is gone needs none."""
        if self.connection is None:
            return
        try:
            self._write(self.connection.send(event))
        except (LocalProtocolError, OSError):
            pass


#: The first character of every Engine.IO text packet: its type (open ... noop), or "b" for
#: binary data in base64.
ENGINE_IO_TEXT_STARTS = frozenset("0123456b")


def engine_io_readable(message: str | bytes) -> bool:
    """Whether Engine.IO can decode ``message``. It decodes in its websocket loop, outside the
    loop's error handling: a text message that is empty, starts with anything but a packet type,
    or carries bad base64 raised out of it, past its clean-up (the socket's session and writer
    left behind), with a traceback. A driver returns such a message as the end of the connection."""
    if isinstance(message, bytes):
        return True
    if not message or message[0] not in ENGINE_IO_TEXT_STARTS:
        return False
    if message[0] == "b":
        try:
            base64.b64decode(message[1:])
        except (binascii.Error, ValueError):
            return False
    return True


class CheckedSimpleWebSocket(SimpleWebSocketWSGI):  # type: ignore[misc]
    """Engine.IO's websocket for threads (Werkzeug's server: `make run`, the tests), handing it only
    messages it can decode (see :func:`engine_io_readable`)."""

    def wait(self) -> str | bytes | None:
        message: str | bytes | None = super().wait()
        if message is not None and not engine_io_readable(message):
            log.warning("closing a websocket: not an Engine.IO packet")
            self.close()
            return None
        return message


def _joined(parts: list[str | bytes]) -> str | bytes:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], bytes):
        return b"".join(part for part in parts if isinstance(part, bytes))
    return "".join(part for part in parts if isinstance(part, str))


class WebSocketDriver:
    """Engine.IO's ``websocket`` entry for one server: a GeventWebSocket per connection, and the
    open ones by Engine.IO sid (for :func:`write_to_each`)."""

    def __init__(self, own_greenlets: int = 0) -> None:
        self.open: dict[str, GeventWebSocket] = {}
        self.own_greenlets = own_greenlets
        # The server's side of the frame format, made once: framing is all it does here (no
        # extension, each message one whole frame, so it keeps no state between calls), and
        # making one per broadcast and per acknowledgement was 40 % of framing them.
        self.frames = FrameProtocol(client=False, extensions=[])

    def __call__(self, handler: Handler, server: Any) -> GeventWebSocket:
        return GeventWebSocket(handler, server, self.open, self.own_greenlets)


def install(socketio_server: Any, own_greenlets: int = 0) -> None:
    """Serve ``socketio_server``'s websockets with :class:`GeventWebSocket` under gevent, and with
    :class:`CheckedSimpleWebSocket` under threads. Under gevent, up to ``own_greenlets`` open
    websockets are each served by a greenlet of their own (GeventWebSocket._serve_on_its_own)."""
    engine = socketio_server.eio
    if engine.async_mode == "gevent":
        driver: Any = WebSocketDriver(own_greenlets)
    elif engine.async_mode == "threading":
        driver = CheckedSimpleWebSocket
    else:
        return
    table = {**engine._async, "websocket": driver}  # noqa: SLF001 (the driver table)
    if isinstance(driver, WebSocketDriver):
        table["queue"] = outgoing_queue_class()
    engine._async = table  # noqa: SLF001
    if isinstance(driver, WebSocketDriver):
        # Every packet python-socketio sends one socket (an event's acknowledgement above all)
        # takes the same road as a broadcast: written by the greenlet that made it when nothing
        # is queued before it. Through Engine.IO's queue, each acknowledgement woke the
        # receiver's writer greenlet to send a few bytes.
        socketio_server._send_packet = lambda eio_sid, packet: send_packet(socketio_server, [eio_sid], packet)
        engine.start_background_task = pings_by_timer(engine)


def pings_by_timer(engine: Any) -> Callable[..., Any]:
    """``engine.start_background_task``, except for Engine.IO's wait for a socket's next ping
    and its writer for a websocket (see :func:`outgoing_queue_class` for the writer).

    Engine.IO waits for each socket's next ping in a greenlet of its own (``Socket._send_ping``
    sleeps ``ping_interval`` seconds, then sends): with a thousand people connected, a thousand
    sleeping greenlets with their saved stacks, 7 MB of the server's memory (bench/realtime_bench.py,
    1,000 viewers: 192.8 against 185.7 MB). Here a timer of gevent's event loop does the waiting,
    and the ping is sent by a greenlet that lives only while it sends (sending may close a socket
    whose last ping went unanswered, and that runs the namespace's handlers, which may block).
    Every other task starts as before."""
    from gevent import get_hub, spawn  # here: importing this module must not load gevent

    start = engine.start_background_task

    def start_background_task(target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if _is_websocket_writer(target):
            return _write_on_demand(target) or start(target, *args, **kwargs)
        connection = getattr(target, "__self__", None)
        if getattr(target, "__func__", None) is not EngineSocket._send_ping or args or kwargs:  # noqa: SLF001
            return start(target, *args, **kwargs)
        timer = get_hub().loop.timer(engine.ping_interval)

        def due() -> None:
            timer.close()
            spawn(ping, connection)

        timer.start(due)
        return None

    return start_background_task


def outgoing_queue_class() -> type:
    """Engine.IO's queue of a socket's outgoing packets (gevent's JoinableQueue), written out to
    its websocket by a greenlet that lives only while there is something to write.

    Engine.IO starts a writer greenlet for every websocket, which waits on the queue for as long
    as the connection lasts. Nearly every packet goes straight to the socket instead
    (:func:`write_to_each`), so with a thousand people connected that was a thousand greenlets
    asleep, each with its saved stack, its frames and a timeout: 1,000 viewers 181.7 -> 173.1 MB
    (bench/realtime_bench.py, quick runs, 8 December). Here the writer Engine.IO would start is not started
    (:func:`pings_by_timer`); the queue is told which websocket it feeds instead, and a ``put``
    starts a greenlet that writes out what the queue holds, in order, and ends when it is empty.
    It does what Engine.IO's writer did: a ``None`` closes the websocket, so does a failed
    write, and from then on what comes is taken out unsent, so that ``join`` (which Engine.IO
    calls where it joined its writer, and on closing) returns. Before its websocket is open (a
    polling client) the queue is an ordinary one, which Engine.IO's polling reads."""
    from gevent import spawn  # here: importing this module must not load gevent
    from gevent.queue import Empty, JoinableQueue

    class OutgoingQueue(JoinableQueue):  # type: ignore[misc]
        __slots__ = ("websocket", "writing")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.websocket: GeventWebSocket | None = None
            self.writing = False

        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
            super().put(item, block, timeout)
            self._start_writing()

        def write_to(self, websocket: GeventWebSocket) -> OutgoingQueue:
            """From now on write what comes to ``websocket``; returns what Engine.IO joins."""
            self.websocket = websocket
            self._start_writing()
            return self

        def _start_writing(self) -> None:
            # No greenlet switches between the writer's last look at the queue and its clearing
            # of ``writing``, so a packet put meanwhile always finds a writer or starts one.
            if self.websocket is not None and not self.writing and self.qsize():
                self.writing = True
                spawn(self._write_out)

        def _write_out(self) -> None:
            websocket = self.websocket
            assert websocket is not None
            try:
                while True:
                    try:
                        queued = self.get(block=False)
                    except Empty:
                        return
                    try:
                        if queued is None:
                            websocket.close()
                        elif websocket.open:
                            websocket.send(queued.encode())
                    except Exception:  # noqa: BLE001 (Engine.IO's writer: any failure ends the socket)
                        websocket.close()
                    finally:
                        self.task_done()
            finally:
                self.writing = False

    return OutgoingQueue


def _is_websocket_writer(target: Callable[..., Any]) -> bool:
    """Whether ``target`` is the writer that ``Socket._websocket_handler`` starts."""
    code = getattr(target, "__code__", None)
    return code is not None and code in EngineSocket._websocket_handler.__code__.co_consts  # noqa: SLF001


def _write_on_demand(writer: Callable[..., Any]) -> Any:
    """Instead of starting Engine.IO's ``writer``, point its socket's queue at its websocket;
    returns what Engine.IO joins, or None where the queue is not an OutgoingQueue."""
    contents = [cell.cell_contents for cell in writer.__closure__ or ()]
    cells = dict(zip(writer.__code__.co_freevars, contents, strict=True))
    queue = getattr(cells.get("self"), "queue", None)
    websocket = cells.get("ws")
    if not hasattr(queue, "write_to") or not isinstance(websocket, GeventWebSocket):
        return None
    return queue.write_to(websocket)


def ping(connection: Any) -> None:
    """What ``Socket._send_ping`` does once its wait is over: ping a socket that is still open."""
    if not connection.closing and not connection.closed:
        connection.last_ping = time.time()
        connection.send(EnginePacket(engine_packet.PING))


def keep_what_a_socket_needs(environ: dict[str, Any]) -> None:
    """Let go of the connecting request's server objects that a socket's environ holds on to.

    python-socketio keeps the environ of a socket's first request for the socket's life (each
    event's request context is made from it). gunicorn puts a callback for early hints into it,
    which holds gunicorn's request and response, with the request's headers, parser and reader;
    and the request body's reader. A socket's events never send hints nor read that body: the
    callback goes, and the body becomes an empty one. Some 2.5 kB a socket
    (bench/realtime_bench.py, 1,000 viewers: 163.8 -> 161.0 MB, 8 December)."""
    environ.pop("wsgi.early_hints", None)
    if "wsgi.input" in environ:
        environ["wsgi.input"] = io.BytesIO()


def send_event(socketio_server: Any, namespace: str, eio_sids: list[str], event: str, data: Any) -> None:
    """Socket.IO's emit of ``event`` to the sockets ``eio_sids`` of this process: one packet,
    encoded once, written straight to each websocket where :func:`write_to_each` may and
    through Engine.IO's queue elsewhere (every socket, where this driver is not installed)."""
    if eio_sids:
        send_packet(socketio_server, eio_sids,
                    socketio_server.packet_class(socketio_packet.EVENT, namespace=namespace, data=[event, data]))


def send_packet(socketio_server: Any, eio_sids: list[str], packet: Any) -> None:
    """A Socket.IO packet to the sockets ``eio_sids`` of this process, encoded once, as
    :func:`send_event` sends it."""
    encoded = packet.encode()
    parts = encoded if isinstance(encoded, list) else [encoded]  # binary: a header and an attachment
    packets = [EnginePacket(engine_packet.MESSAGE, part) for part in parts]
    for eio_sid in write_to_each(socketio_server.eio, eio_sids, packets):
        for queued in packets:
            socketio_server.eio.send_packet(eio_sid, queued)


def framed(packets: list[EnginePacket], frames: FrameProtocol) -> bytes:
    """Engine.IO packets as the websocket frames a server sends (text or binary, unmasked, no
    extension), one after another, through ``frames`` (a server's FrameProtocol)."""
    return b"".join(bytes(frames.send_data(packet.encode(), fin=True)) for packet in packets)


def write_to_each(engine: Any, eio_sids: list[str], packets: list[EnginePacket]) -> list[str]:
    """Send ``packets`` to every socket of ``eio_sids``: framed once and written straight to
    each one whose order allows it (see the module's docstring). Returns the sids left to
    Engine.IO's queues (all of them where this driver is not installed)."""
    driver = engine._async.get("websocket")  # noqa: SLF001 (the driver table)
    if not isinstance(driver, WebSocketDriver):
        return eio_sids
    frames = framed(packets, driver.frames)
    queued = []
    for eio_sid in eio_sids:
        connection = engine.sockets.get(eio_sid)
        websocket = driver.open.get(eio_sid)
        if connection is None or websocket is None or not _nothing_before(connection) \
                or not websocket.write_now(frames):
            queued.append(eio_sid)
    return queued


def _nothing_before(connection: Any) -> bool:
    """Whether a packet written now reaches ``connection`` after everything sent to it before:
    it is on its websocket for good (not polling, not upgrading, not closing) and its queue is
    empty (its writer, :func:`outgoing_queue_class`, takes packets out only when it runs, then
    writes them under the send lock without yielding in between unless the socket is full)."""
    return bool(connection.upgraded and not connection.upgrading and not connection.closing
                and not connection.closed and connection.queue.qsize() == 0)
