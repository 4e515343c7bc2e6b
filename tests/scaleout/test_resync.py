"""Nothing is lost when Redis restarts, for clients that keep their sockets open and never ask.

Between server processes an edit travels on its clause's feed (a Redis stream). While Redis is
down the process that stores an edit cannot publish it: it acknowledges it (it is in
PostgreSQL), keeps it, and publishes it once Redis answers; the other process's reader lost its
connection, so once it is back it reads the log of every clause it holds and sends its sockets
what they lack (ClauseStore.resync_from_log). Redis restarts empty here (no persistence), so the
streams themselves are gone: the log is what fills the gap. No client resyncs.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from codedraft.codes.models import Clause
from codedraft.extensions import db
from tests.scaleout import cluster as cl
from tests.support.live import wait_for


@contextmanager
def redis_stopped() -> Iterator[None]:
    """The machine's Redis is shut down (as cl.redis_restart does it) for the block, and always
    started again afterwards: other tests share it."""
    client = redis.Redis(cl.REDIS_HOST, cl.REDIS_PORT, socket_timeout=1)
    try:
        subprocess.run(["redis-cli", "-h", cl.REDIS_HOST, "-p", str(cl.REDIS_PORT), "shutdown", "nosave"],
                       capture_output=True, timeout=10, check=False)
        wait_for(lambda: not cl.answers(client), 10, "Redis to stop")
        yield
    finally:
        client.close()
        cl.ensure_redis()


def _relays(sender: cl.Typist, receiver: cl.Typist) -> bool:
    """One probe edit from ``sender`` reaches ``receiver`` on the other process, through Redis."""
    before = receiver.received
    sender.type_token(len(sender.typed))
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        if receiver.received > before:
            return True
        time.sleep(0.05)
    return False


def _materialised_text(scene) -> str:
    with scene.app.app_context():
        body = db.session.get(Clause, scene.clause.id).body
        db.session.remove()
    return body


def test_issue_7_edits_stored_while_redis_was_down_reach_the_other_process_unasked(pg_cluster, scene):
    first, second = pg_cluster.add(), pg_cluster.add()
    a = cl.Typist(first.base, scene.cookie("chair"), "a")
    b = cl.Typist(second.base, scene.cookie("member"), "b")
    also = cl.Typist(second.base, scene.cookie("chair"), "s")
    everyone = [a, b, also]
    try:
        for typist in everyone:
            typist.connect()
            assert typist.join(scene.clause.uid)["ok"]
            assert typist.synced.wait(10)
        b_sid = b.sio.get_sid("/collab")
        for index in range(3):
            a.type_token(index)
        wait_for(lambda: len({t.value() for t in everyone}) == 1, 15, "the feed to carry edits before the outage")

        with redis_stopped():
            typed_while_down = [a.type_token(len(a.typed)) for _ in range(5)]
            wait_for(lambda: a.acked >= set(typed_while_down), 15, "A's edits to be stored while Redis is down")

        wait_for(lambda: b.value() == a.value() == also.value(), 60,
                 "the other process's clients to get what was typed while Redis was down")
        assert all(token in b.value() for token in typed_while_down)
        assert b.sio.get_sid("/collab") == b_sid, "B must not have reconnected"
        assert b.resyncs == 0 and also.resyncs == 0
        wait_for(lambda: _relays(a, b), 30, "the feed to carry edits again")
        wait_for(lambda: a.acked == set(a.typed), 10, "every edit of A to be acknowledged")
        wait_for(lambda: b.value() == a.value(), 10, "B to hold the last edit")
        text = a.value()
        assert cl.count_tokens(text, a.typed) == {token: 1 for token in a.typed}
        wait_for(lambda: _materialised_text(scene) == text, 15, "the body to equal the text")
    finally:
        cl.ensure_redis()
        for typist in everyone:
            typist.close()
