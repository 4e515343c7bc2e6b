"""Opening a clause with a long uncompacted log writes a snapshot, so the next open is cheap."""
from __future__ import annotations

from sqlalchemy import insert

from codedraft.codes import operations as codes
from codedraft.collab.models import ClauseSnapshot, ClauseUpdate
from codedraft.collab.store import SNAPSHOT_EVERY, ClauseStore
from codedraft.extensions import db
from codedraft.timeutil import utcnow
from tests.support.editing import typed_history


def test_a_long_tail_is_compacted_when_the_clause_is_opened(app, make_code):
    code = make_code("Compaction")
    clause = codes.add_clause(codes.add_chapter(code, "Chapter"), kind="section", title="Long log", body="")
    db.session.commit()
    updates, text = typed_history(SNAPSHOT_EVERY + 37)
    db.session.execute(insert(ClauseUpdate), [
        {"clause_id": clause.id, "user_id": None, "update": u, "created_at": utcnow(), "origin": "editor"}
        for u in updates])
    db.session.commit()
    assert db.session.get(ClauseSnapshot, clause.id) is None

    store, other_process = ClauseStore(app), ClauseStore(app)
    opened = store.open(clause)
    assert opened.doc.text == text
    db.session.expire_all()
    snapshot = db.session.get(ClauseSnapshot, clause.id)
    assert snapshot is not None and snapshot.upto_update_id == opened.seen_update_id
    assert opened.updates_since_snapshot == 0

    reopened = other_process.open(clause)  # snapshot plus the overlap only
    assert reopened.doc.text == text
    assert reopened.updates_since_snapshot <= 200
    store.close()
    other_process.close()


def test_a_short_tail_is_left_for_the_regular_compaction(app, make_code):
    code = make_code("No compaction")
    clause = codes.add_clause(codes.add_chapter(code, "Chapter"), kind="section", title="Short log", body="")
    db.session.commit()
    updates, text = typed_history(25)
    db.session.execute(insert(ClauseUpdate), [
        {"clause_id": clause.id, "user_id": None, "update": u, "created_at": utcnow(), "origin": "editor"}
        for u in updates])
    db.session.commit()
    store = ClauseStore(app)
    assert store.open(clause).doc.text == text
    assert db.session.get(ClauseSnapshot, clause.id) is None
    store.close()
