"""Two server processes on PostgreSQL + Redis: editors on either converge, nothing is stored twice."""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
import redis

from tests.scaleout import cluster as cl
from tests.support.live import wait_for


def _converged(typists: list[cl.Typist]) -> bool:
    values = {t.value() for t in typists}
    return len(values) == 1


def test_editors_on_two_processes_converge_and_the_log_rebuilds_the_same_text(pg_cluster, scene):
    first, second = pg_cluster.add(), pg_cluster.add()
    typists = [cl.Typist(server.base, scene.cookie(who), name)
               for server, who, name in ((first, "chair", "a"), (first, "member", "b"),
                                         (second, "chair", "c"), (second, "member", "d"))]
    for typist in typists:
        typist.connect()
        assert typist.join(scene.clause.uid)["ok"]
        assert typist.synced.wait(10)
    cl.type_concurrently(typists, 25, 0.02, seed=7)
    tokens = [token for t in typists for token in t.typed]
    wait_for(lambda: _converged(typists) and all(len(t.acked) == len(t.typed) for t in typists), 30,
             "convergence and every acknowledgement")
    text = typists[0].value()
    assert all(count == 1 for count in cl.count_tokens(text, tokens).values())
    assert "Seed text." in text
    stored, rows, redundant = cl.stored_state(scene.app, scene.clause.id)
    assert stored == text
    assert redundant == 0, f"{redundant} of {rows} stored updates added nothing (stored twice)"
    assert not [t.refused for t in typists if t.refused]
    for typist in typists:
        typist.close()


def test_the_queue_carries_json_never_pickles(pg_cluster, scene):
    """SECURITY-CASES 15: every message published on the Socket.IO channel (presence here) is
    JSON text, binary as base64 attachments; the edits travel on the clause feed, a Redis stream
    whose entries are plain fields (log id, publisher token, the update's bytes), decoded by
    nothing but int() and Yjs."""
    from pycrdt import Doc

    from codedraft.collab.core import AwarenessEntry, awareness_message
    from codedraft.scaleout.clause_stream import stream_key
    from codedraft.scaleout.keys import prefix_for_database

    first, second = pg_cluster.add(), pg_cluster.add()
    subscriber = redis.Redis(cl.REDIS_HOST, cl.REDIS_PORT).pubsub()
    prefix = prefix_for_database(scene.app.config["SQLALCHEMY_DATABASE_URI"])
    subscriber.subscribe(f"{prefix}:socketio")
    published: list[bytes] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = subscriber.get_message(timeout=0.1)
            if message and message["type"] == "message":
                published.append(message["data"])

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        writer = cl.Typist(first.base, scene.cookie("chair"), "w")
        reader = cl.Typist(second.base, scene.cookie("member"), "r")
        for typist in (writer, reader):
            typist.connect()
            assert typist.join(scene.clause.uid)["ok"]
            assert typist.synced.wait(10)
        writer.type_token(1)
        writer.insert(0, "🙂 ")
        wait_for(lambda: reader.value() == writer.value(), 10, "the reader on the other process")
        presence = awareness_message({424242: AwarenessEntry(1, {"user": {"name": "w"}})})
        assert writer.call("y", {"clause": scene.clause.uid, "msg": presence})["ok"]
        wait_for(lambda: reader.awareness, 10, "presence on the other process")
    finally:
        stop.set()
        listener.join(2)
        subscriber.close()
    assert published, "nothing went through the Socket.IO channel"
    binary_seen = False
    for raw in published:
        assert not raw.startswith(b"\x80"), "a pickle on the queue"
        decoded = json.loads(raw)  # raises if any message is not JSON
        assert isinstance(decoded, dict) and "method" in decoded
        data = decoded.get("data")
        if isinstance(data, list) and len(data) > 1:
            binary_seen = True  # [packet, base64 attachment, ...]
    assert binary_seen, "no binary message went through the queue as base64"
    entries = redis.Redis.from_url(cl.redis_url()).xrange(
        stream_key(scene.clause.id, prefix))
    assert entries, "no edit on the clause feed"
    for _entry_id, fields in entries:
        assert set(fields) == {b"i", b"o", b"u"}
        assert fields[b"i"].isdigit() and bytes.fromhex(fields[b"o"].decode())
        Doc().apply_update(fields[b"u"])  # a Yjs update, nothing else
    writer.close()
    reader.close()


def test_login_rate_limit_is_shared_by_all_processes(pg_cluster, scene):
    """Flask-Limiter keeps its counters in Redis: 5 failed logins spread over two processes
    make the sixth, on either, a 429 with Retry-After."""
    import requests

    from tests.support.live import CSRF_META

    cl.clear_rate_limits()
    first, second = pg_cluster.add(), pg_cluster.add()
    statuses = []
    for attempt in range(6):
        base = (first, second)[attempt % 2].base
        browser = requests.Session()
        token = CSRF_META.search(browser.get(f"{base}/login", timeout=10).text).group(1)
        response = browser.post(f"{base}/login", data={"email": scene.people["chair"].email, "password": "wrong",
                                                       "csrf_token": token}, allow_redirects=False, timeout=10)
        statuses.append(response.status_code)
    assert 429 not in statuses[:5], statuses
    assert statuses[5] == 429, statuses
    assert int(response.headers["Retry-After"]) > 0
    cl.clear_rate_limits()


@pytest.mark.parametrize("key", ["gunicorn.socket", "gunicorn.sock"])
def test_the_namespace_sets_nodelay_on_a_gunicorn_socket(key):
    """The namespace reads the accepted socket from gunicorn's environ key: "gunicorn.socket"
    in the gthread worker, "gunicorn.sock" in the gevent worker (the production one)."""
    from codedraft.collab.namespace import _set_nodelay_from_environ
    from codedraft.scaleout.gunicorn_hooks import NoDelayMiddleware, nodelay_is_on

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        with client, accepted:
            accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            assert not nodelay_is_on(accepted)
            assert _set_nodelay_from_environ({key: accepted}) is True
            accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            seen = []
            NoDelayMiddleware(lambda environ, start: seen.append(nodelay_is_on(accepted)) or [])(
                {key: accepted}, lambda *a: None)
            assert seen == [True]


def test_migrations_run_on_postgresql(pg_database):
    """`codedraft db upgrade` on an empty PostgreSQL database builds the migrated schema."""
    import os
    import subprocess
    import sys

    import psycopg

    with cl.fresh_database("codedraft_mig") as name:
        env = {**os.environ, "SECRET_KEY": "x", "DATABASE_URL": f"postgresql://root@127.0.0.1:5432/{name}"}
        env.pop("REDIS_URL", None)
        done = subprocess.run([str(Path(sys.executable).parent / "codedraft"), "db", "upgrade"], cwd=cl.ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        with psycopg.connect(f"postgresql://root@127.0.0.1:5432/{name}") as connection:
            types = dict(connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'clause_updates'"
            ).fetchall())
    assert types["update"] == "bytea"
    assert types["id"] == "bigint"
