"""Several processes (here two stores on one SQLite database, sharing an in-memory clause feed):
each applies what the other stored from the feed, in order; a held edit released by the feed is
stored and broadcast; a gap in the feed is filled from the log; the body ends equal to the log."""
from __future__ import annotations

import pytest
from pycrdt import Doc, Text
from sqlalchemy import func, insert, select, update

from codedraft import create_app, signals
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause
from codedraft.collab.core import BODY, sync_update_message
from codedraft.collab.feed import START, MemoryClauseFeed, MemoryFeedHub
from codedraft.collab.models import ClauseUpdate
from codedraft.collab.store import ClauseStore
from codedraft.extensions import db
from codedraft.timeutil import utcnow
from tests.conftest import app_config
from tests.support.editing import set_live_text
from tests.support.live import wait_for


class RoomRecorder:
    """Listens where the Socket.IO namespace does: records the edits the stores send to rooms."""

    def __init__(self, app) -> None:
        self.sent: list[tuple[str, bytes]] = []
        signals.live_text_committed.connect(self.committed, sender=app)

    def committed(self, _app, *, edits: list[tuple[str, bytes]]) -> None:
        self.sent.extend(edits)


def _edits(state: bytes, words: tuple[str, ...], client_id: int = 4242) -> list[bytes]:
    typist: Doc[Text] = Doc(client_id=client_id)
    typist.apply_update(state)
    body = typist.get(BODY, type=Text)
    updates = []
    for word in words:
        before = typist.get_state()
        body.insert(len(str(body)), word)
        updates.append(typist.get_update(before))
    return updates


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


def _rows(clause_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(ClauseUpdate).where(ClauseUpdate.clause_id == clause_id))


@pytest.fixture
def two_processes(tmp_path):
    """Two stores on one database and one feed hub, as two server processes on one Redis; a
    clause reading "Base." open in both. Yields (app, clause, one, two) inside the app context."""
    hub = MemoryFeedHub()
    app = create_app(app_config(tmp_path))
    with app.app_context():
        db.create_all()
        clause = codes.add_clause(codes.add_chapter(codes.create_code("Held"), "Chapter"), kind="section",
                                  title="Held", body="Base.")
        db.session.commit()
        one, two = ClauseStore(app, feed=MemoryClauseFeed(hub)), ClauseStore(app, feed=MemoryClauseFeed(hub))
        one.open(clause)
        two.open(clause)
        yield app, clause, one, two
        one.close()
        two.close()
        db.session.remove()


def test_an_edit_stored_by_one_process_reaches_the_other_through_the_feed(two_processes):
    app, clause, one, two = two_processes
    recorder = RoomRecorder(app)
    first, = _edits(one.opened(clause.uid).doc.encode_state(), (" typed",))
    one.receive(one.opened(clause.uid), sync_update_message(first), user_id=None, may_write=True)
    wait_for(lambda: two.opened(clause.uid).doc.text == "Base. typed", 5, "the other process to apply it")
    # Sent to the other process's own sockets (the Socket.IO queue carries no edits).
    wait_for(lambda: recorder.sent, 5, "the other process to send it to its sockets")
    assert [uid for uid, _ in recorder.sent] == [clause.uid]
    assert _rows(clause.id) == 2  # the seed and the edit, stored once


def test_a_released_edit_is_stored_and_broadcast(two_processes):
    app, clause, one, two = two_processes
    base = one.opened(clause.uid).doc.encode_state()
    first, second = _edits(base, (" first", " second"))

    # The second edit comes to process two before what it builds on: held, not acknowledged.
    outcome = two.receive(two.opened(clause.uid), sync_update_message(second), user_id=None, may_write=True)
    assert outcome.deferred and two.opened(clause.uid).doc.text == "Base."

    recorder = RoomRecorder(app)
    # Process one stores the first; two reads it from the feed, which releases the second.
    one.receive(one.opened(clause.uid), sync_update_message(first), user_id=None, may_write=True)
    wait_for(lambda: two.opened(clause.uid).doc.text == "Base. first second", 5, "the release")
    wait_for(lambda: one.opened(clause.uid).doc.text == "Base. first second", 5, "process one to get the second")
    wait_for(lambda: _rows(clause.id) == 3, 5, "the released edit to be stored")
    # Two sent its sockets the first edit (from the feed) and the released one once stored.
    wait_for(lambda: len([m for uid, m in recorder.sent if uid == clause.uid]) >= 3, 5, "the broadcasts")
    listener: Doc[Text] = Doc()
    listener.apply_update(base)
    for _uid, message in recorder.sent:
        listener.apply_update(_payload(message))
    assert str(listener.get(BODY, type=Text)) == "Base. first second"


def test_an_edit_building_on_an_unread_feed_entry_is_acknowledged_at_once(two_processes):
    """The sender had another process's edit before this process read it from the feed: the feed
    is read at once and the edit accepted, not held. What was read is sent to this process's
    sockets too: its reader will not bring it again, and the other sockets lack it."""
    app, clause, one, two = two_processes
    two.feed.connected = False  # two's reader is behind
    base = one.opened(clause.uid).doc.encode_state()
    first, second = _edits(base, (" first", " second"))
    one.receive(one.opened(clause.uid), sync_update_message(first), user_id=None, may_write=True)
    wait_for(lambda: one.feed.position(clause.id) != START, 5, "the edit to be published")  # just after the ack
    assert two.opened(clause.uid).doc.text == "Base."
    two.feed.connected = True  # reading on demand works again; nothing was delivered meanwhile

    recorder = RoomRecorder(app)
    outcome = two.receive(two.opened(clause.uid), sync_update_message(second), user_id=None, may_write=True)
    assert not outcome.deferred and outcome.update is not None and outcome.broadcast is not None
    assert two.opened(clause.uid).doc.text == "Base. first second"
    assert _rows(clause.id) == 3
    # Another socket of process two: what the room was sent, then the answer's broadcast.
    other_socket: Doc[Text] = Doc()
    other_socket.apply_update(base)
    for message in [m for uid, m in recorder.sent if uid == clause.uid] + [outcome.broadcast]:
        other_socket.apply_update(_payload(message))
    assert str(other_socket.get(BODY, type=Text)) == "Base. first second"


def test_edits_missed_while_the_feed_was_down_are_read_from_the_log(two_processes):
    """Process two cannot read the feed, and one cannot publish: when the feed is back, two reads
    the log again and sends its sockets what it missed; nothing needs a client to ask."""
    app, clause, one, two = two_processes
    one.feed.connected = two.feed.connected = False
    typed = _edits(one.opened(clause.uid).doc.encode_state(), (" one", " two", " three"))
    for edit in typed:
        one.receive(one.opened(clause.uid), sync_update_message(edit), user_id=None, may_write=True)
    wait_for(lambda: len(one.feed._unpublished) == 3, 5, "the writer to try publishing")
    assert two.opened(clause.uid).doc.text == "Base."
    recorder = RoomRecorder(app)
    had = two.opened(clause.uid).doc.encode_state()

    two.feed.reconnect()  # two's gap: it reads the log
    assert two.opened(clause.uid).doc.text == "Base. one two three"
    assert [uid for uid, _ in recorder.sent] == [clause.uid]
    listener: Doc[Text] = Doc()
    listener.apply_update(had)
    listener.apply_update(_payload(recorder.sent[0][1]))
    assert str(listener.get(BODY, type=Text)) == "Base. one two three"

    one.feed.reconnect()  # one publishes what waited; two has it already and stores nothing
    assert _rows(clause.id) == 4
    assert two.write_owed_bodies() in ([], [clause.uid])
    db.session.expire_all()
    assert db.session.get(Clause, clause.id).body == "Base. one two three"


def test_a_body_left_stale_by_one_process_is_rewritten_by_the_one_that_applied_the_edit(two_processes):
    _app, clause, one, two = two_processes
    set_live_text(one, clause, "Base. From one.", user_id=None, origin="editor")
    db.session.commit()
    set_live_text(two, clause, "Base. From one. From two.", user_id=None, origin="editor")
    db.session.commit()
    # What process two's writer leaves when it stores last from a replica that lacks an edit.
    db.session.execute(update(Clause).where(Clause.id == clause.id).values(body="Base. From one."))
    db.session.commit()
    # One applied two's edit from the feed after it last wrote the body: it owes the body.
    assert one.write_owed_bodies() == [clause.uid]
    assert two.write_owed_bodies() == []
    db.session.expire_all()
    assert db.session.get(Clause, clause.id).body == "Base. From one. From two." == one.opened(clause.uid).doc.text


def test_one_process_has_no_feed_and_owes_no_bodies(app, make_code):
    clause = codes.add_clause(codes.add_chapter(make_code("Alone"), "Chapter"), kind="section", title="Alone",
                              body="Alone.")
    db.session.commit()
    store = ClauseStore(app)  # no Redis: its replica is the only one, and its body writes are final
    set_live_text(store, clause, "Alone, edited.", user_id=None, origin="editor")
    db.session.commit()
    assert store.feed is None and store.write_owed_bodies() == []
    store.close()


def test_a_row_stored_by_another_process_is_in_the_document_opened_after_it(two_processes):
    """Opening reads the log after noting the feed's position: a row committed before the open
    is in the document even if it was never published (a process killed between commit and
    publication)."""
    app, clause, one, two = two_processes
    two.evict(clause.uid)
    edit, = _edits(one.opened(clause.uid).doc.encode_state(), (" unpublished",))
    db.session.execute(insert(ClauseUpdate), [{"clause_id": clause.id, "user_id": None, "update": edit,
                                               "created_at": utcnow(), "origin": "editor"}])
    db.session.commit()
    assert two.open(db.session.get(Clause, clause.id)).doc.text == "Base. unpublished"


def test_a_snapshot_never_replaces_one_that_reaches_further(two_processes):
    """Several processes compact the same clause; the one reaching further stays."""
    from codedraft.collab.models import ClauseSnapshot

    _app, clause, one, two = two_processes
    state = one.opened(clause.uid).doc.encode_state()
    one.log.write_snapshot(clause.id, 10, state)
    two.log.write_snapshot(clause.id, 5, state)
    db.session.expire_all()
    assert db.session.get(ClauseSnapshot, clause.id).upto_update_id == 10
    two.log.write_snapshot(clause.id, 12, state)
    db.session.expire_all()
    assert db.session.get(ClauseSnapshot, clause.id).upto_update_id == 12
