"""What the store says and writes follows what the log holds.

An edit is acknowledged only once the log holds it, also when it arrives a second time: a client
resends an edit whose first copy is still on its way to the log (its socket reconnected, or its
answer to the server's step 1 carried it), or another process's feed released it. The document
already holds it, so the second copy adds nothing; its answer must still wait for the commit. The
writer is held here by another connection's write lock on the SQLite file.

A server-side edit (a restore, an accepted amendment) is in the live document before its
transaction commits: until then neither the body column nor a peer's step 2 may carry it.
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from pycrdt import Doc, Text, create_sync_message, handle_sync_message
from sqlalchemy import select

from codedraft.codes import operations as codes
from codedraft.codes.models import Clause
from codedraft.collab.core import BODY, sync_update_message
from codedraft.collab.models import ClauseUpdate
from codedraft.collab.store import ClauseStore
from codedraft.extensions import db
from tests.support.editing import typed_after
from tests.support.live import wait_for

WORD = " resent-word"


def _rows_holding(app, clause_id: int, word: str) -> int:
    """Committed log rows whose bytes carry ``word``, read on a connection of their own."""
    with app.app_context():
        updates = db.session.scalars(select(ClauseUpdate.update).where(ClauseUpdate.clause_id == clause_id)).all()
        db.session.remove()
    return sum(word.encode() in update for update in updates)


@pytest.mark.parametrize("second_copy", ["update", "step2"])
def test_a_second_copy_is_acknowledged_only_once_the_first_is_stored(app, make_code, second_copy: str):
    clause = codes.add_clause(codes.add_chapter(make_code("Acks"), "Chapter"), kind="section", title="Acks",
                              body="Base.")
    db.session.commit()
    store = ClauseStore(app)
    opened = store.open(clause)
    edit = typed_after(opened.doc.encode_state(), WORD)
    # As an update, or inside the typist's answer to a step 1 (sync type 1).
    second = sync_update_message(edit) if second_copy == "update" else b"\x00\x01" + sync_update_message(edit)[2:]

    blocker = sqlite3.connect(Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")))
    blocker.execute("BEGIN IMMEDIATE")  # the writer cannot commit until this ends
    answers: dict[str, int] = {}

    def send(name: str, message: bytes) -> None:
        with app.app_context():
            store.receive(opened, message, user_id=None, may_write=True)
        answers[name] = _rows_holding(app, clause.id, WORD)  # what the log held when answered

    first_thread = threading.Thread(target=send, args=("first", sync_update_message(edit)))
    first_thread.start()
    wait_for(lambda: WORD in opened.doc.text, 10, "the first copy to be applied")
    second_thread = threading.Thread(target=send, args=("second", second))
    second_thread.start()
    second_thread.join(2)  # answered at once, before the fix: the log did not hold it then
    blocker.rollback()
    blocker.close()
    for thread in (first_thread, second_thread):
        thread.join(30)
    store.close()
    assert answers == {"first": 1, "second": 1}


def test_a_batch_never_writes_a_server_edit_that_rolls_back_into_the_body(app, make_code):
    """A typist's edit is stored while a server-side edit (a restore, an accepted amendment) waits
    uncommitted in the request's transaction. The writer's batch must not write the clause's text
    as the document shows it then into the body: rolled back, the body would keep the server's
    edit, which drafts, exports and search read. The body gets the typist's edit once it can."""
    clause = codes.add_clause(codes.add_chapter(make_code("Bodies"), "Chapter"), kind="section", title="Bodies",
                              body="Base.")
    db.session.commit()
    clause_id = clause.id
    store = ClauseStore(app)
    opened = store.open(clause)
    edit = typed_after(opened.doc.encode_state(), WORD)

    assert store.edit_live_text(clause, lambda live: "Restored. " + live.text, user_id=None, origin="restore")
    typing = threading.Thread(target=lambda: _receive_in_app(app, store, opened, sync_update_message(edit)))
    typing.start()  # its batch waits for this transaction's lock on the SQLite file
    wait_for(lambda: WORD in opened.doc.text, 10, "the typist's edit to be applied")
    db.session.rollback()
    typing.join(30)

    def body() -> str:
        with app.app_context():
            text = db.session.get(Clause, clause_id).body
            db.session.remove()
        return text

    assert "Restored." not in body()
    store.close()
    # The body lacks the typist's edit now; reopened, the clause owes it, and the next batch
    # (or server-side edit) writes it.
    reopened = ClauseStore(app)
    with app.app_context():
        again = reopened.open(db.session.get(Clause, clause_id))
        db.session.remove()
    assert again.doc.text == "Base." + WORD
    _receive_in_app(app, reopened, again, sync_update_message(typed_after(again.doc.encode_state(), " more")))
    assert body() == "Base." + WORD + " more"
    reopened.close()


def _receive_in_app(app, store: ClauseStore, opened, message: bytes) -> None:
    with app.app_context():
        store.receive(opened, message, user_id=None, may_write=True)


def test_a_step_1_is_answered_only_once_a_server_edit_is_committed_or_rolled_back(app, make_code):
    """A peer's step 1 is answered with the whole document. While a server-side edit waits
    uncommitted, the answer waits: sent at once, it carried an edit that then rolled back, and
    the peer would send that back as its own at its next sync."""
    clause = codes.add_clause(codes.add_chapter(make_code("Step 1"), "Chapter"), kind="section", title="Step 1",
                              body="Base.")
    db.session.commit()
    store = ClauseStore(app)
    opened = store.open(clause)
    assert store.edit_live_text(clause, lambda live: "Restored. " + live.text, user_id=None, origin="restore")
    peer: Doc[Text] = Doc()
    answers: list[bytes] = []

    def ask() -> None:
        with app.app_context():
            outcome = store.receive(opened, create_sync_message(peer), user_id=None, may_write=True)
            db.session.remove()
        assert outcome.reply is not None
        answers.append(outcome.reply)

    asking = threading.Thread(target=ask)
    asking.start()
    asking.join(1)  # answered at once, before the fix
    db.session.rollback()
    asking.join(30)
    store.close()
    assert len(answers) == 1
    handle_sync_message(answers[0][1:], peer)  # the answer's sync message, after its type byte
    assert str(peer.get(BODY, type=Text)) == "Base."
