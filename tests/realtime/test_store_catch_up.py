"""Several processes (the catch-up, here on SQLite): an edit held back for what it builds on and
released when another process's row arrives is stored, and broadcast to the room."""
from __future__ import annotations

import time

import pytest
from pycrdt import Doc, Text
from sqlalchemy import func, insert, select, update

from codedraft import create_app, signals
from codedraft.codes import operations as codes
from codedraft.collab.core import BODY, sync_update_message
from codedraft.collab.models import ClauseUpdate
from codedraft.codes.models import Clause
from codedraft.collab.store import RECONCILE_WINDOW_SECONDS, ClauseStore
from codedraft.extensions import db
from codedraft.timeutil import utcnow
from tests.conftest import app_config
from tests.support.editing import set_live_text
from tests.support.live import wait_for


class RoomRecorder:
    """Listens where the Socket.IO namespace does: records the edits the store sends to rooms."""

    def __init__(self, app) -> None:
        self.sent: list[tuple[str, bytes]] = []
        signals.live_text_committed.connect(self.committed, sender=app)

    def committed(self, _app, *, edits: list[tuple[str, bytes]]) -> None:
        self.sent.extend(edits)


def _two_edits(state: bytes) -> tuple[bytes, bytes]:
    typist: Doc[Text] = Doc(client_id=4242)
    typist.apply_update(state)
    body = typist.get(BODY, type=Text)
    updates = []
    for word in (" first", " second"):
        before = typist.get_state()
        body.insert(len(str(body)), word)
        updates.append(typist.get_update(before))
    return updates[0], updates[1]


@pytest.fixture
def catching_up(tmp_path):
    """An app that catches up as if other processes wrote too, a clause reading "Base." opened
    in a store of its own; yields (app, clause, store, opened) inside the app context."""
    app = create_app(app_config(tmp_path, COLLAB_CATCH_UP=True))
    with app.app_context():
        db.create_all()
        clause = codes.add_clause(codes.add_chapter(codes.create_code("Held"), "Chapter"), kind="section",
                                  title="Held", body="Base.")
        db.session.commit()
        store = ClauseStore(app)
        yield app, clause, store, store.open(clause)
        store.close()
        db.session.remove()


def _stored_by_another_process(clause_id: int, update: bytes) -> None:
    db.session.execute(insert(ClauseUpdate), [{"clause_id": clause_id, "user_id": None, "update": update,
                                               "created_at": utcnow(), "origin": "editor"}])
    db.session.commit()


def test_a_released_edit_is_stored_and_broadcast(catching_up):
    app, clause, store, opened = catching_up
    recorder = RoomRecorder(app)
    base = opened.doc.encode_state()
    first, second = _two_edits(base)

    outcome = store.receive(opened, sync_update_message(second), user_id=None, may_write=True)
    assert outcome.deferred and opened.doc.text == "Base."

    # Another process stores what it builds on; this one finds it at its next catch-up.
    _stored_by_another_process(clause.id, first)
    store.catch_up(opened)
    assert opened.doc.text == "Base. first second"

    wait_for(lambda: len(recorder.sent) == 1, 5, "the released edit to be broadcast")
    uid, message = recorder.sent[0]
    assert uid == clause.uid
    # A client on another process that has the other row gets " second" from this broadcast.
    listener: Doc[Text] = Doc()
    listener.apply_update(base)
    listener.apply_update(first)
    listener.apply_update(_payload(message))
    assert str(listener.get(BODY, type=Text)) == "Base. first second"
    stored = db.session.scalar(select(func.count()).select_from(ClauseUpdate)
                               .where(ClauseUpdate.clause_id == clause.id))
    assert stored == 3  # the seed, the other process's row, and the released edit stored here


def _payload(message: bytes) -> bytes:
    """The update inside a y-protocols sync-update frame (type 0, step 2: varuint length, bytes)."""
    assert message[0] == 0 and message[1] == 2
    length, shift, at = 0, 0, 2
    while True:
        byte = message[at]
        length |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            break
        shift += 7
    return message[at:at + length]


def test_an_edit_building_on_a_row_not_yet_seen_is_acknowledged_at_once(catching_up):
    """The sender saw another process's edit (through Redis) before this process looked at the
    log: the edit is not held back and refused; the log is read at once and it is accepted."""
    _app, clause, store, opened = catching_up
    first, second = _two_edits(opened.doc.encode_state())
    _stored_by_another_process(clause.id, first)
    opened.quick_look_at = opened.thorough_look_at = time.monotonic()  # no look is due

    outcome = store.receive(opened, sync_update_message(second), user_id=None, may_write=True)
    assert not outcome.deferred and outcome.update is not None and outcome.broadcast is not None
    assert opened.doc.text == "Base. first second"
    stored = db.session.scalar(select(func.count()).select_from(ClauseUpdate)
                               .where(ClauseUpdate.clause_id == clause.id))
    assert stored == 3


def test_a_body_left_stale_by_one_process_is_rewritten_once_it_catches_up(catching_up):
    app, clause, one, _opened = catching_up
    two = ClauseStore(app)  # a second process on the same database
    try:
        set_live_text(one, clause, "Base. From one.", user_id=None, origin="editor")
        set_live_text(two, clause, "Base. From one. From two.", user_id=None, origin="editor")  # caught up first
        # What process one's writer leaves when it stores last from a replica that lacks two's edit.
        db.session.execute(update(Clause).where(Clause.id == clause.id).values(body="Base. From one."))
        db.session.commit()

        assert one.reconcile_bodies() == [clause.uid]
        assert two.reconcile_bodies() == []  # its replica agrees with the body now
        db.session.expire_all()
        assert db.session.get(Clause, clause.id).body == "Base. From one. From two." == one.opened(clause.uid).doc.text

        db.session.execute(update(Clause).where(Clause.id == clause.id).values(body="Stale again."))
        db.session.commit()
        later = one.opened(clause.uid).body_written_at + RECONCILE_WINDOW_SECONDS + 1
        assert one.reconcile_bodies(now=later) == []  # long after its last write it leaves the body alone
    finally:
        two.close()


def test_one_process_never_reconciles(app, make_code):
    clause = codes.add_clause(codes.add_chapter(make_code("Alone"), "Chapter"), kind="section", title="Alone",
                              body="Alone.")
    db.session.commit()
    store = ClauseStore(app)  # no Redis: its replica is the only one, and its body writes are final
    set_live_text(store, clause, "Alone, edited.", user_id=None, origin="editor")
    assert store.reconcile_bodies() == []
    store.close()
