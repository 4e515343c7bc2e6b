"""Issue 7: nothing is lost when Redis restarts, for a client that keeps its socket open.

Between server processes a broadcast travels through Redis; one published while Redis is down
is gone. The edit itself was stored before it was acknowledged, so a client on the other process
gets it in the step 2 that answers its periodic step 1 (the server catches up from the database
first), without reconnecting. The browser provider does this every resyncInterval ms.
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

# The browser waits 10 s; a test cannot.
RESYNC_SECONDS = 0.5


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


def test_issue_7_periodic_step1_brings_edits_whose_broadcast_redis_lost(pg_cluster, scene):
    first, second = pg_cluster.add(), pg_cluster.add()
    a = cl.Typist(first.base, scene.cookie("chair"), "a")
    b = cl.Typist(second.base, scene.cookie("member"), "b")
    # On B's process as well, but without the periodic step 1: shows the broadcasts were lost.
    stale = cl.Typist(second.base, scene.cookie("chair"), "s")
    everyone = [a, b, stale]
    try:
        for typist in everyone:
            typist.connect()
            assert typist.join(scene.clause.uid)["ok"]
            assert typist.synced.wait(10)
        b.resync_every(RESYNC_SECONDS)
        b_sid = b.sio.get_sid("/collab")
        for index in range(3):
            a.type_token(index)
        wait_for(lambda: len({t.value() for t in everyone}) == 1, 15, "Redis to relay before the outage")

        with redis_stopped():
            typed_while_down = [a.type_token(len(a.typed)) for _ in range(5)]
            wait_for(lambda: a.acked >= set(typed_while_down), 15, "A's edits to be stored while Redis is down")

        # Both processes' listeners resubscribe with their own back-off.
        wait_for(lambda: _relays(a, stale), 30, "Redis to carry broadcasts again")
        assert not any(token in stale.value() for token in typed_while_down), stale.value()

        wait_for(lambda: b.value() == a.value(), 10 * RESYNC_SECONDS + 5, "B to catch up by its periodic step 1")
        assert b.sio.get_sid("/collab") == b_sid, "B must not have reconnected"
        assert b.resyncs > 0
        wait_for(lambda: a.acked == set(a.typed), 10, "every edit of A to be acknowledged")
        text = a.value()
        assert cl.count_tokens(text, a.typed) == {token: 1 for token in a.typed}
        assert b.value() == text
        assert _materialised_text(scene) == text
    finally:
        cl.ensure_redis()
        for typist in everyone:
            typist.close()
