"""A real server on a loopback port, and real clients for it (HTTP sign-in, Socket.IO, Yjs)."""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import engineio
import requests
import socketio
from flask import Flask
from pycrdt import Doc, Text, create_sync_message, handle_sync_message
from werkzeug.serving import make_server

from codedraft.collab.core import sync_update_message, unpack_frames
from codedraft.server import NoDelayRequestHandler

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` with the production request handler on a free port; yields its base URL."""
    NoDelayRequestHandler.quiet = True  # type: ignore[attr-defined]
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=NoDelayRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def http_sign_in(base: str, email: str, password: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10).text
    token = CSRF_META.search(page).group(1)  # type: ignore[union-attr]
    response = browser.post(f"{base}/login", data={"email": email, "password": password, "csrf_token": token},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:300]
    return browser


def cookie_header(browser: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


def wait_for(predicate: Callable[[], bool], timeout: float = 10, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {message}")


class _InOrderEngineIO(engineio.Client):
    """Handle incoming messages in arrival order, as a browser does.

    The stock client hands each message to a new thread, so under load a binary attachment can
    be decoded before the packet it belongs to; browsers never reorder like that.
    """

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InOrderEngineIO


class YClient:
    """A co-editor as the browser is one: a Yjs replica speaking y-protocols over Socket.IO."""

    def __init__(self, base: str, browser: requests.Session | None = None, *, headers: dict[str, str] | None = None):
        self.base = base
        self.doc: Doc[Text] = Doc()
        self.text = self.doc.get("body", type=Text)
        self.sio = InOrderClient(reconnection=False)
        self.errors: list[Any] = []
        self.roles: list[Any] = []
        self.acks: list[dict[str, Any]] = []
        self.received = 0
        # Awareness messages received, as sent by the server (presence is not replicated here).
        self.awareness: list[bytes] = []
        self.clause: str | None = None
        self.synced = threading.Event()
        self.resyncs = 0
        self._resync_stop = threading.Event()
        self._resync_thread: threading.Thread | None = None
        self._remote = False
        self._lock = threading.Lock()
        self.sio.on("y", self._on_y, namespace="/collab")
        self.sio.on("error", lambda data: self.errors.append(data), namespace="/collab")
        self.sio.on("role", lambda data: self.roles.append(data), namespace="/collab")
        all_headers = dict(headers or {})
        if browser is not None:
            all_headers["Cookie"] = cookie_header(browser)
        self.headers = all_headers
        self.doc.observe(self._on_local_change)

    def connect(self) -> YClient:
        self.sio.connect(self.base, namespaces=["/collab"], headers=self.headers, transports=["websocket"],
                         wait_timeout=10)
        return self

    def join(self, uid: str) -> dict[str, Any]:
        self.clause = uid
        ack = self.sio.call("join", {"clause": uid}, namespace="/collab", timeout=10)
        if ack.get("ok"):
            self.send(create_sync_message(self.doc))
        return ack

    def _on_y(self, data: dict[str, Any]) -> None:
        # The server's broadcasts of edits carry several frames in one message ("frames").
        for message in unpack_frames(data["frames"]) if "frames" in data else [data["msg"]]:
            self._on_frame(message)

    def _on_frame(self, message: bytes) -> None:
        self.received += 1
        if message[0] != 0:
            self.awareness.append(bytes(message))
            return
        with self._lock:
            self._remote = True
            try:
                reply = handle_sync_message(message[1:], self.doc)
            finally:
                self._remote = False
        if message[1] == 1:
            self.synced.set()
        if reply is not None:
            self.send(reply)

    def _on_local_change(self, event: Any) -> None:
        if not self._remote and self.clause is not None and self.sio.connected:
            self.send(sync_update_message(event.update))

    def send(self, frame: bytes, *, clause: str | None = None) -> None:
        self.sio.emit("y", {"clause": clause or self.clause, "msg": frame}, namespace="/collab",
                      callback=self.acks.append)

    def resync(self) -> None:
        """Send our sync step 1: the server answers with step 2, every edit we lack."""
        with self._lock:
            step1 = create_sync_message(self.doc)
        self.send(step1)

    def resync_every(self, seconds: float) -> None:
        """Send step 1 every ``seconds`` while connected to a clause, as the browser provider
        does (its resyncInterval), until close(): edits whose broadcast between server processes
        was lost arrive in the answer without reconnecting."""

        def loop() -> None:
            while not self._resync_stop.wait(seconds):
                if self.clause is None or not self.sio.connected:
                    continue
                try:
                    self.resync()
                except socketio.exceptions.SocketIOError:
                    continue  # the connection dropped meanwhile; rejoining syncs anyway
                self.resyncs += 1

        self._resync_thread = threading.Thread(target=loop, name="yclient-resync", daemon=True)
        self._resync_thread.start()

    def call(self, event: str, payload: Any) -> Any:
        return self.sio.call(event, payload, namespace="/collab", timeout=10)

    def insert(self, index_codepoints: int, value: str) -> None:
        from codedraft.collab.offsets import codepoint_to_utf8

        with self._lock:
            self.text.insert(codepoint_to_utf8(str(self.text), index_codepoints), value)

    def delete(self, index_codepoints: int, length: int) -> None:
        from codedraft.collab.offsets import codepoint_to_utf8

        with self._lock:
            current = str(self.text)
            start = codepoint_to_utf8(current, index_codepoints)
            end = codepoint_to_utf8(current, index_codepoints + length)
            del self.text[start:end]

    def value(self) -> str:
        with self._lock:
            return str(self.text)

    def state_vector(self) -> bytes:
        """What this replica has seen, read under the replica's lock: the Socket.IO thread may be
        applying a server message at the same moment, and a pycrdt document used from two threads
        at once fails ("Transaction is no longer valid")."""
        with self._lock:
            return self.doc.get_state()

    @contextmanager
    def editing(self) -> Iterator[Text]:
        """The body text, for several local edits sent as one update, with the replica locked."""
        with self._lock, self.doc.transaction():
            yield self.text

    def apply_local(self, update: bytes) -> None:
        """Apply ``update`` as if typed here: it is sent to the server like any local edit."""
        with self._lock:
            self.doc.apply_update(update)

    def close(self) -> None:
        """Drop the connection at once, as a closed tab does (a graceful close waits 3 s for the
        development server's close frame)."""
        self._resync_stop.set()
        if self._resync_thread is not None:
            self._resync_thread.join(5)
        if self.sio.connected:
            if self.sio.eio.ws is not None:
                self.sio.eio.ws.abort()
            self.sio.eio.disconnect(abort=True)
            wait_for(lambda: not self.sio.connected, 5, "disconnect")
