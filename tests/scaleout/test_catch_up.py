"""The clause feed on Redis: a process opening a clause while another process's transaction is
still open (PostgreSQL takes a log id at insert and shows the row only at commit) gets that edit
from the feed once it is committed and published; no settle window, no polling of the log."""
from __future__ import annotations

from pycrdt import Doc, Text
from sqlalchemy import create_engine, insert

from codedraft.codes.models import Clause
from codedraft.collab.feed import Published
from codedraft.collab.models import ClauseUpdate
from codedraft.collab.store import ClauseStore
from codedraft.extensions import db
from codedraft.scaleout.clause_stream import RedisClauseFeed
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
    store = ClauseStore(pg_app, feed=RedisClauseFeed(cl.redis_url()))
    other = RedisClauseFeed(cl.redis_url())  # the other process's publisher
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
