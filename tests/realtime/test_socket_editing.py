"""Real python-socketio clients against a real server: convergence and durability."""
from __future__ import annotations

import socket

from sqlalchemy import func, select

from codedraft.codes.models import Clause
from codedraft.collab.models import ClauseUpdate
from codedraft.extensions import db
from tests.realtime.conftest import stored_text
from tests.support.live import wait_for


def test_two_editors_converge_and_the_log_holds_it(app, stage):
    alice, bob = stage.editor("chair"), stage.editor("member")
    assert alice.value() == bob.value() == "Seed text."
    alice.insert(0, "Alice: ")
    bob.insert(len(bob.value()), " Bob 👩‍👩‍👧 é\r\n")
    expected_len = len("Alice: Seed text. Bob 👩‍👩‍👧 é\r\n")
    wait_for(lambda: len(alice.value()) == len(bob.value()) == expected_len, message="convergence")
    assert alice.value() == bob.value()
    wait_for(lambda: len(alice.acks) >= 2 and all(a["ok"] for a in alice.acks + bob.acks), message="acks")
    assert stored_text(app, stage.clause.id) == alice.value()
    with app.app_context():
        assert db.session.get(Clause, stage.clause.id).body == alice.value()
        authors = set(db.session.scalars(select(ClauseUpdate.user_id).where(ClauseUpdate.clause_id == stage.clause.id)))
        db.session.remove()
    assert {stage.people["chair"].id, stage.people["member"].id} <= authors


def test_a_reader_sees_edits_live_but_cannot_write(app, stage):
    chair = stage.editor("chair")
    # An observer: reviewers may suggest (tests/realtime/test_suggestion_sockets.py), observers only read.
    reader = stage.client("observer")
    ack = reader.join(stage.clause.uid)
    assert ack == {"ok": True, "readonly": True, "suggest_only": False,
                   "user": {"id": stage.people["observer"].id, "name": "Observer", "color": ack["user"]["color"]}}
    assert reader.synced.wait(5)
    chair.insert(0, "Live ")
    wait_for(lambda: reader.value() == "Live Seed text.", message="reader sees the edit")
    reader.insert(0, "Sneaky ")  # SECURITY-CASES 4
    wait_for(lambda: any(not a["ok"] for a in reader.acks), message="rejection")
    assert "not edit" in [a for a in reader.acks if not a["ok"]][0]["error"]
    assert stored_text(app, stage.clause.id) == "Live Seed text."


def test_case_9_a_resent_update_is_applied_and_stored_once(app, stage):
    from codedraft.collab.core import sync_update_message

    editor = stage.editor("chair")
    captured: list[bytes] = []
    editor.doc.observe(lambda event: captured.append(event.update))
    editor.insert(0, "Once. ")
    wait_for(lambda: stored_text(app, stage.clause.id) == "Once. Seed text.", message="stored")
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(ClauseUpdate))
        db.session.remove()
    for _ in range(3):
        editor.send(sync_update_message(captured[0]))
    wait_for(lambda: len(editor.acks) >= 4, message="acks of resends")
    assert all(a["ok"] for a in editor.acks)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ClauseUpdate)) == count
        db.session.remove()
    assert stored_text(app, stage.clause.id) == "Once. Seed text."


def test_nodelay_is_set_on_the_server_side_of_each_websocket(app, stage):
    editor = stage.editor("chair")
    namespace = app.extensions["codedraft_collab_namespace"]
    connection = namespace.connections[editor.sio.get_sid("/collab")]
    assert connection.nodelay is True
    assert socket.TCP_NODELAY  # the constant exists on this platform


def test_restart_keeps_every_acknowledged_edit(app, stage, tmp_path):
    from codedraft import create_app
    from tests.conftest import app_config
    from tests.support.live import YClient, http_sign_in, serving

    editor = stage.editor("chair")
    for index in range(50):
        editor.insert(index, "x")
    wait_for(lambda: len(editor.acks) >= 51, message="acks")
    assert all(a["ok"] for a in editor.acks)
    editor.close()
    restarted = create_app(app_config(tmp_path))
    with serving(restarted) as base:
        client = YClient(base, http_sign_in(base, stage.people["chair"].email, "correct horse battery")).connect()
        try:
            assert client.join(stage.clause.uid)["ok"]
            assert client.synced.wait(5)
            assert client.value() == "x" * 50 + "Seed text."
        finally:
            client.close()
