"""The clause feed on Redis: a process opening a clause while another process's transaction is
still open (PostgreSQL takes a log id at insert and shows the row only at commit) gets that edit
from the feed once it is committed and published; no settle window, no polling of the log."""
from __future__ import annotations

import uuid

import redis
from pycrdt import Doc, Text
from sqlalchemy import create_engine, insert

from codedraft.codes.models import Clause
from codedraft.collab.feed import START, Published
from codedraft.collab.models import ClauseUpdate
from codedraft.collab.store import ClauseStore
from codedraft.extensions import db
from codedraft.scaleout.clause_stream import READ_COUNT, STREAM_SECONDS, RedisClauseFeed, stream_key
from codedraft.scaleout.keys import prefix_for_database as deployment_prefix
from codedraft.timeutil import utcnow
from tests.scaleout import cluster as cl
from tests.scaleout.conftest import make_scene
from tests.support.live import wait_for


def _update_appending(base_state: bytes, text: str, client_id: int) -> bytes:
    doc: Doc[Text] = Doc(client_id=client_id)
    doc.apply_update(base_state)
    body = doc.get("body", type=Text)
    before = doc.get_state()
    body.insert(len(str(body).encode()), text)
    return doc.get_update(before)


def test_an_edit_committed_after_the_clause_was_opened_comes_through_the_feed(pg_app):
    scene = make_scene(pg_app, body="Base.")
    prefix = deployment_prefix(pg_app.config["SQLALCHEMY_DATABASE_URI"])
    store = ClauseStore(pg_app, feed=RedisClauseFeed(cl.redis_url(), prefix))
    other = RedisClauseFeed(cl.redis_url(), prefix)  # the other process's publisher
    engine = create_engine(pg_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with pg_app.app_context():
            base = store.open(db.session.get(Clause, scene.clause.id)).doc.encode_state()
            db.session.remove()
        store.evict(scene.clause.uid)
        early = _update_appending(base, " early", 101)
        late = _update_appending(base, " late", 102)
        row = {"clause_id": scene.clause.id, "user_id": None, "created_at": utcnow(), "origin": "editor"}
        with engine.connect() as slow, engine.connect() as fast:
            early_id = slow.execute(insert(ClauseUpdate).returning(ClauseUpdate.id),
                                    [{**row, "update": early}]).scalar_one()  # the lower id, not committed
            with pg_app.app_context():
                opened = store.open(db.session.get(Clause, scene.clause.id))  # reads the log without it
                db.session.remove()
            assert "early" not in opened.doc.text
            late_id = fast.execute(insert(ClauseUpdate).returning(ClauseUpdate.id),
                                   [{**row, "update": late}]).scalar_one()
            fast.commit()
            other.publish([Published(scene.clause.id, late_id, late)])
            wait_for(lambda: "late" in opened.doc.text, 10, "the later edit from the feed")
            slow.commit()
            other.publish([Published(scene.clause.id, early_id, early)])
        wait_for(lambda: "early" in opened.doc.text and "late" in opened.doc.text, 10, "the early edit from the feed")
        assert opened.seen_update_id == max(early_id, late_id)
    finally:
        engine.dispose()
        other.close()
        store.feed.close()
        store.close()


def test_two_deployments_on_one_redis_never_read_each_others_clauses():
    """Clause ids start at 1 in every database: two deployments (or two test runs) sharing a
    Redis must each hear only their own clause 1."""
    ours = RedisClauseFeed(cl.redis_url(), deployment_prefix("postgresql://db-one/codedraft"))
    theirs = RedisClauseFeed(cl.redis_url(), deployment_prefix("postgresql://db-two/codedraft"))
    heard: list[tuple[int, bytes]] = []
    try:
        ours.start(lambda clause_id, edits: heard.extend((clause_id, e.update) for e in edits),
                   lambda: None, lambda: None)
        ours.follow(1, ours.position(1))
        theirs.publish([Published(1, 10, b"theirs")])  # first: it would be heard first
        ours.publish([Published(1, 11, b"ours")])
        wait_for(lambda: heard, 10, "our own edit")
        assert heard == [(1, b"ours")]
    finally:
        for feed in (ours, theirs):
            feed.close()


def test_a_process_that_starts_makes_the_others_read_the_log_again():
    """A process killed between its commit and its publication left edits only in the log; when
    a process starts it says so, and every other process reads its clauses again from the log."""
    prefix = deployment_prefix("postgresql://db-three/codedraft")
    running = RedisClauseFeed(cl.redis_url(), prefix)
    gaps: list[int] = []
    try:
        running.start(lambda clause_id, edits: None, lambda: gaps.append(1), lambda: None)
        restarted = RedisClauseFeed(cl.redis_url(), prefix)
        restarted.start(lambda clause_id, edits: None, lambda: None, lambda: None)
        wait_for(lambda: gaps, 10, "the running process to read the log again")
        restarted.close()
    finally:
        running.close()


def test_a_reader_whose_entries_were_trimmed_away_reads_the_log_instead():
    """A reader more than a stream's length behind would skip the trimmed entries without a
    word; it must notice and read the log."""
    prefix = deployment_prefix("postgresql://db-four/codedraft")
    writer, reader = RedisClauseFeed(cl.redis_url(), prefix), RedisClauseFeed(cl.redis_url(), prefix)
    gaps: list[int] = []
    heard: list[int] = []
    try:
        writer.publish([Published(7, 1, b"first")])
        behind = reader.position(7)  # the reader has read "first" and no more
        writer.publish([Published(7, 2 + n, b"lost") for n in range(5)])
        writer.publish([Published(7, 100 + n, b"kept") for n in range(READ_COUNT)])
        writer._redis.xtrim(stream_key(7, prefix), maxlen=READ_COUNT, approximate=False)
        reader.follow(7, behind)
        reader.start(lambda clause_id, edits: heard.extend(e.log_id for e in edits), lambda: gaps.append(1),
                     lambda: None)
        wait_for(lambda: len(heard) >= READ_COUNT, 10, "the kept entries")
        assert gaps, "the trimmed entries were skipped without reading the log"
        from_start, start_gaps = RedisClauseFeed(cl.redis_url(), prefix), []
        try:  # a reader that noted an empty stream lost what was trimmed since, too
            from_start.follow(7, START)
            from_start.start(lambda clause_id, edits: None, lambda: start_gaps.append(1), lambda: None)
            wait_for(lambda: start_gaps, 10, "the reader from the start to read the log")
        finally:
            from_start.close()
    finally:
        writer._redis.delete(stream_key(7, prefix))
        writer.close()
        reader.close()


def test_a_reader_that_keeps_up_never_reads_the_log():
    prefix = deployment_prefix("postgresql://db-five/codedraft")
    writer, reader = RedisClauseFeed(cl.redis_url(), prefix), RedisClauseFeed(cl.redis_url(), prefix)
    gaps: list[int] = []
    heard: list[int] = []
    try:
        reader.start(lambda clause_id, edits: heard.extend(e.log_id for e in edits), lambda: gaps.append(1),
                     lambda: None)
        reader.follow(8, reader.position(8))
        writer.publish([Published(8, n, b"edit") for n in range(READ_COUNT + 10)])
        wait_for(lambda: len(heard) == READ_COUNT + 10, 10, "every entry")
        assert heard == list(range(READ_COUNT + 10)), heard[-20:]
        assert not gaps
    finally:
        writer._redis.delete(stream_key(8, prefix))
        writer.close()
        reader.close()


def test_opening_a_clause_repairs_a_body_left_behind_the_log(pg_app):
    """With several processes a body is written when the feed is quiet; one that died owing it
    left the body column behind the log. The next process to open the clause writes it."""
    scene = make_scene(pg_app, body="Base.")
    store = ClauseStore(pg_app, feed=RedisClauseFeed(cl.redis_url(), deployment_prefix("repair-test")))
    try:
        with pg_app.app_context():
            base = store.open(db.session.get(Clause, scene.clause.id)).doc.encode_state()
            db.session.remove()
        store.evict(scene.clause.uid)
        with pg_app.app_context():
            db.session.execute(insert(ClauseUpdate), [{"clause_id": scene.clause.id, "user_id": None,
                                                       "created_at": utcnow(), "origin": "editor",
                                                       "update": _update_appending(base, " Owed.", 103)}])
            db.session.commit()
            assert db.session.get(Clause, scene.clause.id).body == "Base."
            store.open(db.session.get(Clause, scene.clause.id))
            db.session.remove()
            assert db.session.get(Clause, scene.clause.id).body == "Base. Owed."
    finally:
        store.close()


def test_a_stream_expires_a_day_after_its_last_edit_with_its_expiry_set_once_a_minute():
    feed = RedisClauseFeed(cl.redis_url(), deployment_prefix(f"postgresql://expiry-{uuid.uuid4().hex}/codedraft"))
    key = stream_key(1, feed._prefix)  # noqa: SLF001 (the stream's name)
    client = redis.Redis.from_url(cl.redis_url())
    try:
        feed.publish([Published(1, 1, b"first")])
        assert 0 < client.ttl(key) <= STREAM_SECONDS
        client.persist(key)  # so a second expiry command would show
        feed.publish([Published(1, 2, b"second")])
        assert client.ttl(key) == -1  # set less than a minute ago: not sent again
        feed.expiry_refresh_seconds = 0.0  # as if a minute had passed
        feed.publish([Published(1, 3, b"third")])
        assert 0 < client.ttl(key) <= STREAM_SECONDS
        assert [fields[b"u"] for _, fields in client.xrange(key)] == [b"first", b"second", b"third"]
    finally:
        client.delete(key)
        client.close()
        feed.close()
