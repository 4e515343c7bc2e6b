"""A batch PostgreSQL aborts to break a deadlock is stored on a second attempt, not lost."""
from __future__ import annotations

import threading
import time

from sqlalchemy import select, text

from codedraft.codes.models import Clause
from codedraft.collab.log import LogEntry
from codedraft.collab.models import ClauseUpdate
from codedraft.collab.store import ClauseStore
from codedraft.extensions import db
from tests.scaleout.conftest import make_scene, with_second_clause

LOCK_CLAUSE = text("UPDATE clauses SET updated_at = now() WHERE id = :id")


def _pending_edit(store: ClauseStore, clause: Clause, new_text: str) -> LogEntry:
    opened = store.open(clause)
    update = opened.doc.apply_text(new_text, origin="editor")
    assert update is not None
    return LogEntry(opened.clause_id, update, None, "editor", owner=opened)


def test_a_batch_aborted_by_a_deadlock_is_stored_on_the_next_attempt(pg_app):
    scene = make_scene(pg_app, body="First clause.")
    store = ClauseStore(pg_app)
    with pg_app.app_context():
        first, second = with_second_clause(scene, "Second clause.")
        batch = [_pending_edit(store, first, "First clause, edited."),
                 _pending_edit(store, second, "Second clause, edited.")]
        first_id, second_id = first.id, second.id
        db.session.remove()
    assert first_id < second_id  # the writer locks the first, then waits for the second

    def lock_the_first_clause_too(rival) -> None:
        time.sleep(0.3)  # the writer now holds the first clause and waits for the second
        rival.execute(LOCK_CLAUSE, {"id": first_id})  # a cycle: PostgreSQL aborts the writer's transaction
        rival.commit()

    with pg_app.app_context(), db.engine.connect() as rival:
        rival.execute(LOCK_CLAUSE, {"id": second_id})
        closing = threading.Thread(target=lock_the_first_clause_too, args=(rival,))
        closing.start()
        store.log.write_batch(batch)  # the writer's one step, here in this thread
        closing.join(15)

    assert not closing.is_alive()
    assert all(p.done.exception() is None for p in batch), [p.done.exception() for p in batch]
    assert store.log.stats["retries"] == 1
    ids = [p.done.result() for p in batch]
    with pg_app.app_context():
        stored = db.session.scalars(select(ClauseUpdate.id).where(ClauseUpdate.id.in_(ids))).all()
        bodies = {c.id: c.body for c in db.session.scalars(select(Clause).where(Clause.id.in_([first_id, second_id])))}
        db.session.remove()
    assert sorted(stored) == sorted(ids)
    assert bodies == {first_id: "First clause, edited.", second_id: "Second clause, edited."}
    store.close()
