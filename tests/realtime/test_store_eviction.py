"""Clause documents nobody uses leave memory, and come back whole from the log."""
from __future__ import annotations

import time

import pytest

from codedraft import signals
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause
from codedraft.collab.store import ClauseStore, store_for
from codedraft.extensions import db
from tests.realtime.conftest import stored_text
from tests.support.editing import set_live_text
from tests.support.live import wait_for

IDLE = 60.0


@pytest.fixture
def edited(app, make_code):
    """A store of its own with one clause opened and edited through it: (store, clause, opened)."""
    clause = codes.add_clause(codes.add_chapter(make_code("Idle"), "Chapter"), kind="section", title="Idle",
                              body="Draft one.")
    db.session.commit()
    store = ClauseStore(app)
    set_live_text(store, clause, "Draft two.", user_id=None, origin="editor")
    yield store, clause, store.opened(clause.uid)
    store.close()


def test_an_idle_clause_leaves_memory_and_reopens_with_every_edit(edited):
    store, clause, opened = edited
    assert store.evict_idle(set(), idle_for=IDLE, now=opened.last_used + IDLE - 1) == []
    assert store.evict_idle(set(), idle_for=IDLE, now=opened.last_used + IDLE + 1) == [clause.uid]
    assert not store.holds(clause.uid) and store.open_count() == 0

    reopened = store.open(clause)
    assert reopened is not opened
    assert reopened.doc.text == "Draft two."
    set_live_text(store, clause, "Draft three.", user_id=None, origin="editor")
    assert store.open(clause).doc.text == "Draft three."


def test_a_joined_clause_stays_however_long_it_is_quiet(edited):
    store, clause, opened = edited
    assert store.evict_idle({clause.uid}, idle_for=IDLE, now=opened.last_used + 10 * IDLE) == []
    assert store.opened(clause.uid) is opened


def test_a_clause_busy_this_moment_stays(edited):
    store, clause, opened = edited
    with opened.lock:  # an edit being applied or a catch-up in progress
        assert store.evict_idle(set(), idle_for=IDLE, now=opened.last_used + IDLE + 1) == []
    assert store.opened(clause.uid) is opened


def test_an_edit_not_yet_committed_keeps_its_clause_until_the_commit(edited):
    store, clause, opened = edited
    assert store.edit_live_text(clause, lambda _live: "Draft in a transaction.", user_id=None, origin="import")
    later = opened.last_used + IDLE + 1
    # Dropped now, a reload would read a log without this edit while memory had it.
    assert store.evict_idle(set(), idle_for=IDLE, now=later) == []
    db.session.commit()
    assert opened.uncommitted == 0
    assert store.evict_idle(set(), idle_for=IDLE, now=later) == [clause.uid]
    assert store.open(clause).doc.text == "Draft in a transaction."


def test_the_live_server_drops_a_clause_everyone_left_and_serves_it_again(app, stage):
    namespace = app.extensions["codedraft_collab_namespace"]
    namespace.idle_seconds, namespace.sweep_every = 0.3, 0.1  # before the first socket starts the sweep
    store = store_for(app)
    uid = stage.clause.uid

    chair = stage.editor("chair")
    chair.insert(0, "Kept: ")
    wait_for(lambda: stored_text(app, stage.clause.id) == "Kept: Seed text.", 5, "the edit stored")
    time.sleep(1.0)  # several sweeps while the chair is joined but silent
    assert store.holds(uid)

    assert chair.call("leave", {"clause": uid}) == {"ok": True}
    wait_for(lambda: not store.holds(uid), 5, "the idle clause to leave memory")

    member = stage.editor("member")  # reopened from the log
    assert member.value() == "Kept: Seed text."
    member.insert(len(member.value()), " More.")
    wait_for(lambda: stored_text(app, stage.clause.id) == "Kept: Seed text. More.", 5, "the edit stored")
    assert store.holds(uid) and all(a["ok"] for a in member.acks)


def test_a_server_edit_reaches_the_room_only_once_its_transaction_commits(edited):
    store, clause, opened = edited
    sent: list[tuple[str, bytes]] = []

    def committed(_app, *, edits):
        sent.extend(edits)

    signals.live_text_committed.connect(committed, sender=store.app)
    try:
        assert store.edit_live_text(clause, lambda live: live.text + " Rolled back.", user_id=None, origin="restore")
        db.session.rollback()
        assert sent == [] and not store.holds(clause.uid)  # memory had an edit the log has not
        assert store.open(clause).doc.text == "Draft two."

        assert store.edit_live_text(clause, lambda live: live.text + " Kept.", user_id=None, origin="restore")
        assert sent == []
        db.session.commit()
        assert [uid for uid, _frame in sent] == [clause.uid]
        assert store.open(clause).doc.text == "Draft two. Kept." == db.session.get(Clause, clause.id).body
        assert not store.edit_live_text(clause, lambda live: live.text, user_id=None, origin="restore")
    finally:
        signals.live_text_committed.disconnect(committed, sender=store.app)
