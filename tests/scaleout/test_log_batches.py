"""The writer's group commit on PostgreSQL: every batch size in one statement, ids in batch order."""
from __future__ import annotations

from sqlalchemy import select, text

from codedraft.codes.models import Clause
from codedraft.collab.log import LogEntry
from codedraft.collab.models import ClauseUpdate
from codedraft.collab.store import ClauseStore
from codedraft.extensions import db
from tests.scaleout.conftest import make_scene, with_second_clause


def _edits(store: ClauseStore, clauses: list[Clause], count: int, author: int | None) -> list[LogEntry]:
    """``count`` edits spread over ``clauses`` in turn, every other one by ``author``."""
    batch = []
    for n in range(count):
        opened = store.open(clauses[n % len(clauses)])
        update = opened.doc.apply_text(f"{opened.doc.text} {n}", origin="editor")
        assert update is not None
        batch.append(LogEntry(opened.clause_id, update, author if n % 2 else None,
                              "editor" if n % 3 else "restore", owner=opened))
    return batch


def test_each_batch_size_stores_its_rows_under_ids_in_batch_order(pg_app):
    scene = make_scene(pg_app, body="One.")
    store = ClauseStore(pg_app)
    with pg_app.app_context():
        first, second = with_second_clause(scene, "Two.")
        author = scene.people["member"].id
        # 1 and 2 rows, then sizes past psycopg's preparing threshold, and one larger than any before.
        for size in (1, 2, 7, 7, 7, 7, 7, 7, 3, 60):
            batch = _edits(store, [first, second], size, author)
            store.log.write_batch(batch)
            assert all(p.done.exception() is None for p in batch), [p.done.exception() for p in batch]
            ids = [p.done.result() for p in batch]
            assert ids == sorted(ids) and len(set(ids)) == size
            rows = {row.id: row for row in db.session.scalars(select(ClauseUpdate).where(ClauseUpdate.id.in_(ids)))}
            assert [(rows[i].clause_id, rows[i].user_id, rows[i].update, rows[i].origin) for i in ids] == \
                [(p.clause_id, p.user_id, p.update, p.origin) for p in batch]
            assert len({rows[i].created_at for i in ids}) == 1
        db.session.remove()
    store.close()


def _kill_the_writers_connection(store: ClauseStore) -> None:
    """End the writer's pooled PostgreSQL backend from outside, as a restart of PostgreSQL would."""
    with store.log._writer_bind().connect() as connection:  # noqa: SLF001 (the writer's own engine)
        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with db.engine.connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}).scalar_one()


def test_a_connection_that_died_while_idle_is_replaced_and_the_batch_stored_once(pg_app):
    scene = make_scene(pg_app, body="Alive.")
    store = ClauseStore(pg_app)
    with pg_app.app_context():
        clause = db.session.get(Clause, scene.clause.id)
        store.log.write_batch(_edits(store, [clause], 2, None))  # the writer's connection now exists
        _kill_the_writers_connection(store)
        batch = _edits(store, [clause], 3, None)
        store.log.write_batch(batch)
        assert all(p.done.exception() is None for p in batch), [p.done.exception() for p in batch]
        assert store.log.stats["reconnects"] == 1 and store.log.stats["retries"] == 0
        stored = db.session.scalars(select(ClauseUpdate.update).where(ClauseUpdate.clause_id == clause.id)
                                    .order_by(ClauseUpdate.id)).all()
        assert stored[-3:] == [p.update for p in batch] and len(stored) == 1 + 2 + 3  # the seed, then each once
        # The writer's other writes (here the body column) replace a dead connection too.
        _kill_the_writers_connection(store)
        assert store.log.write_body_if_stale(clause.id, "Alive again.")
        assert store.log.stats["reconnects"] == 2
        db.session.expire_all()
        assert db.session.get(Clause, clause.id).body == "Alive again."
        db.session.remove()
    store.close()
