"""A server-side edit (a restore, an accepted amendment) is in the live document before its
transaction commits. A compaction meanwhile must not write it into a snapshot: rolled back, it
would come back from the snapshot at the next open. On PostgreSQL, where the snapshot's own
transaction does not wait for the edit's (SQLite's single writer would make it wait)."""
from __future__ import annotations

from sqlalchemy import insert

from codedraft.codes.models import Clause
from codedraft.collab.models import ClauseSnapshot, ClauseUpdate
from codedraft.collab.store import SNAPSHOT_EVERY, ClauseStore
from codedraft.extensions import db
from codedraft.timeutil import utcnow
from tests.scaleout.conftest import make_scene
from tests.support.editing import typed_history


def test_no_snapshot_holds_a_server_edit_whose_transaction_rolls_back(pg_app):
    scene = make_scene(pg_app, body="")
    updates, text = typed_history(SNAPSHOT_EVERY + 5)
    store, next_process = ClauseStore(pg_app), ClauseStore(pg_app)
    try:
        with pg_app.app_context():
            db.session.execute(insert(ClauseUpdate), [
                {"clause_id": scene.clause.id, "user_id": None, "update": u, "created_at": utcnow(), "origin": "editor"}
                for u in updates])
            db.session.commit()
            clause = db.session.get(Clause, scene.clause.id)
            opened = store.open(clause, compact=False)
            assert store.owes_snapshot(opened)
            assert store.edit_live_text(clause, lambda live: live.text + " never committed", user_id=None,
                                        origin="restore")
            store.compact_if_long(opened)  # as the writer's next batch would, the edit uncommitted
            db.session.rollback()
            assert next_process.open(db.session.get(Clause, scene.clause.id)).doc.text == text
            # Compacted once nothing is uncommitted.
            reopened = store.open(db.session.get(Clause, scene.clause.id), compact=False)
            store.compact_if_long(reopened)
            db.session.expire_all()
            assert db.session.get(ClauseSnapshot, scene.clause.id) is not None
            db.session.remove()
    finally:
        store.close()
        next_process.close()
