"""The multi-process catch-up reads what other processes stored, even when PostgreSQL commits a
lower log id after a higher one (ids are taken at insert time, visible only at commit)."""
from __future__ import annotations

from pycrdt import Doc, Text
from sqlalchemy import create_engine, insert

from codedraft.codes.models import Clause
from codedraft.collab.models import ClauseUpdate
from codedraft.collab.store import ClauseStore
from codedraft.extensions import db
from codedraft.timeutil import utcnow
from tests.scaleout import cluster as cl
from tests.scaleout.conftest import make_scene


def _update_appending(base_state: bytes, text: str, client_id: int) -> bytes:
    doc: Doc[Text] = Doc(client_id=client_id)
    doc.apply_update(base_state)
    body = doc.get("body", type=Text)
    before = doc.get_state()
    body.insert(len(str(body).encode()), text)
    return doc.get_update(before)


def test_an_update_committed_late_with_a_lower_id_is_still_caught_up(pg_database):
    app = cl.local_app(pg_database, COLLAB_CATCH_UP=True)
    scene = make_scene(app, body="Base.")
    store = ClauseStore(app)
    with app.app_context():
        opened = store.open(db.session.get(Clause, scene.clause.id))
        db.session.remove()
    base = opened.doc.encode_state()
    early = _update_appending(base, " early", 101)
    late = _update_appending(base, " late", 102)
    engine = create_engine(pg_database)
    row = {"clause_id": scene.clause.id, "user_id": None, "created_at": utcnow(), "origin": "editor"}
    try:
        with engine.connect() as slow, engine.connect() as fast:
            slow.execute(insert(ClauseUpdate), [{**row, "update": early}])  # takes the lower id, not committed
            fast.execute(insert(ClauseUpdate), [{**row, "update": late}])
            fast.commit()
            store.catch_up(opened)  # sees only the higher id
            assert "late" in opened.doc.text and "early" not in opened.doc.text
            slow.commit()
        store.catch_up(opened)
        assert "early" in opened.doc.text and "late" in opened.doc.text
    finally:
        engine.dispose()
        store.close()
        with app.app_context():
            db.engine.dispose()
