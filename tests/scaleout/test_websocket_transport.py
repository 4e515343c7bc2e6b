"""The websocket under gunicorn's gevent worker (codedraft/websocket.py), served for real.

Broadcasts are written straight to each receiver's socket when nothing is queued for it, and a
write that the socket cannot take at once is finished by a greenlet of its own. These tests
stop a receiver's process outright (a frozen laptop) while others type megabytes: nobody else
may wait for it, and once it runs again it must get everything, in order.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests
from websocket import create_connection

from codedraft.extensions import db
from tests.realtime.test_transport_packets import HOSTILE, closed, open_collab
from tests.scaleout import cluster as cl
from tests.scaleout.conftest import make_scene
from tests.support.live import YClient, wait_for

ROOT = Path(__file__).resolve().parents[2]
# 80 edits of 200 kB: more than a loopback connection's buffers hold on both ends (a few MB), so
# the server's writes to the stopped reader must stop part-way and wait.
EDITS, EDIT_BYTES = 80, 200_000


def _sqlite_server(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'codedraft.sqlite3'}"
    app = cl.local_app(uri)
    with app.app_context():
        db.create_all()
        db.session.remove()
    return app, cl.Cluster(uri, tmp_path, None)


def test_a_stopped_receiver_holds_up_no_one_and_gets_everything_in_order_when_it_runs_again(tmp_path: Path):
    app, cluster = _sqlite_server(tmp_path)
    scene = make_scene(app, body="")
    # A ping deadline far beyond the test: the reader's connection must survive its stop, so
    # what it gets afterwards is the same stream, not a rejoin's sync.
    server = cluster.add(threads=16, extra_env={"CODEDRAFT_PING_TIMEOUT": "600"})
    reader = subprocess.Popen([sys.executable, "-m", "tests.scaleout.stopped_reader", server.base,
                               scene.cookie("reviewer"), scene.clause.uid],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    typists = [YClient(server.base, cl.browser_with(scene.cookie(who))) for who in ("chair", "member")]
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "ready"
        os.kill(reader.pid, signal.SIGSTOP)
        for typist in typists:
            typist.connect()
            assert typist.join(scene.clause.uid)["ok"]
            assert typist.synced.wait(10)
        for n in range(EDITS):
            typists[n % 2].insert(0, chr(ord("a") + n % 26) * EDIT_BYTES)
        total = EDITS * EDIT_BYTES
        # Everyone running is served while the reader is stopped: every edit acknowledged,
        # and each typist has the other's.
        wait_for(lambda: sum(len(t.acks) for t in typists) >= EDITS + 2, 120, "every edit acknowledged")
        assert all(ack.get("ok") for t in typists for ack in t.acks)
        wait_for(lambda: all(len(t.value()) == total for t in typists), 120, "the typists to converge")
        assert typists[0].value() == typists[1].value()
        # Broadcasts still flow: short edits, each reaching the other typist through the fan-out
        # (nobody resyncs here), while the reader's socket is still full.
        for n in range(10):
            typists[n % 2].insert(0, f"<{n}>")
            wait_for(lambda n=n: all(t.value().startswith(f"<{n}>") for t in typists), 60,
                     f"short edit {n} to reach both")
        total += sum(len(f"<{n}>") for n in range(10))
        # A newcomer still joins and syncs, and the server answers pages.
        newcomer = YClient(server.base, cl.browser_with(scene.cookie("chair"))).connect()
        assert newcomer.join(scene.clause.uid)["ok"]
        wait_for(lambda: newcomer.value() == typists[0].value(), 60, "the newcomer to sync")
        newcomer.close()
        assert requests.get(f"{server.base}/login", timeout=10).status_code == 200

        os.kill(reader.pid, signal.SIGCONT)
        reader.stdin.write(f"{total}\n")
        reader.stdin.flush()
        answer = reader.stdout.readline().strip()
        assert answer == hashlib.sha256(typists[0].value().encode()).hexdigest(), answer
        assert reader.stdout.readline().strip() == "same connection"
        assert reader.wait(30) == 0
    finally:
        if reader.poll() is None:
            os.kill(reader.pid, signal.SIGCONT)
            reader.kill()
            reader.wait(30)
        for pipe in (reader.stdin, reader.stdout):
            if pipe is not None:
                pipe.close()
        for typist in typists:
            typist.close()
        cluster.close()
        with app.app_context():
            db.engine.dispose()
    assert "Traceback" not in server.log_path.read_text()


def test_bad_frames_close_only_their_own_connection(tmp_path: Path):
    """Straight at the websocket, under Socket.IO: a message over the limit, a frame that breaks
    the protocol (unmasked, from a client), a client that vanishes mid-frame, and packets that
    Engine.IO or Socket.IO cannot take. Each ends its own connection; the server keeps serving
    without a traceback."""
    app, cluster = _sqlite_server(tmp_path)
    scene = make_scene(app)
    server = cluster.add(threads=16)
    url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
    cookie = scene.cookie("chair")
    opened = []
    try:
        big = create_connection(url, header=[f"Cookie: {cookie}"], timeout=30)
        opened.append(big)
        assert big.recv().startswith("0{")  # Engine.IO's open packet
        big.send("4" + "x" * (3 * 1024 * 1024))  # over SOCKET_MAX_MESSAGE_BYTES (2 MiB)
        wait_for(lambda: closed(big), 30, "the oversized message's connection to close")

        raw = create_connection(url, header=[f"Cookie: {cookie}"], timeout=30)
        opened.append(raw)
        assert raw.recv().startswith("0{")
        raw.sock.sendall(b"\x81\x05hello")  # a text frame without the mask every client must use
        wait_for(lambda: closed(raw), 30, "the unmasked frame's connection to close")

        cut = create_connection(url, header=[f"Cookie: {cookie}"], timeout=30)
        opened.append(cut)
        assert cut.recv().startswith("0{")
        cut.sock.sendall(b"\x82\xfe\x10\x00\x01\x02\x03\x04" + b"\x00" * 100)  # 4 kB announced, 100 sent
        cut.sock.close()

        # What no Socket.IO client sends (tests/realtime/test_transport_packets.py has the list).
        for what, messages in HOSTILE:
            hostile = open_collab(server.base, cookie)
            opened.append(hostile)
            for message in messages:
                hostile.send_binary(message) if isinstance(message, bytes) else hostile.send(message)
            wait_for(lambda hostile=hostile: closed(hostile), 30, f"the connection that sent {what} to close")

        # An upgrade request without the handshake's key: refused with a 400, nothing else.
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as keyless:
            keyless.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                            + f"Cookie: {cookie}\r\n\r\n".encode())
            answer = _read_untilclosed(keyless)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]

        editor = YClient(server.base, cl.browser_with(cookie)).connect()
        assert editor.join(scene.clause.uid)["ok"]
        assert editor.synced.wait(10)
        editor.insert(0, "still here ")
        wait_for(lambda: any(ack.get("ok") for ack in editor.acks), 30, "the edit to be acknowledged")
        editor.close()
    finally:
        for connection in opened:
            connection.shutdown()  # the socket itself (close() would try a closing handshake first)
        cluster.close()
        with app.app_context():
            db.engine.dispose()
    assert "Traceback" not in server.log_path.read_text()


def _read_untilclosed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def _next_ping(connection) -> None:
    """Read ``connection`` until the server's next Engine.IO ping, then answer it."""
    connection.settimeout(30)
    while connection.recv() != "2":
        pass
    connection.send("3")


def test_pings_keep_an_answering_socket_and_drop_a_silent_one(tmp_path: Path):
    """Under gevent the wait for each socket's next ping is a timer, not a greenlet
    (codedraft.websocket.pings_by_timer): pings still come every interval to a socket that
    answers, and a socket that never answers is still dropped after the ping timeout."""
    app, cluster = _sqlite_server(tmp_path)
    scene = make_scene(app, body="")
    server = cluster.add(threads=16, extra_env={"CODEDRAFT_PING_INTERVAL": "0.5", "CODEDRAFT_PING_TIMEOUT": "1"})
    answering = open_collab(server.base, scene.cookie("member"))
    silent = open_collab(server.base, scene.cookie("reviewer"))
    try:
        for _ in range(3):
            _next_ping(answering)
        wait_for(lambda: closed(silent), 30, "the socket that never answered a ping to be dropped")
        for _ in range(3):  # pinged on, well past the silent one's deadline
            _next_ping(answering)
        assert "Traceback" not in server.log_path.read_text()
    finally:
        answering.shutdown()
        silent.shutdown()
        cluster.close()
