"""Rights kept per socket until a change is announced, and the batched fan-out of edits, seen
from real Socket.IO clients against a real server."""
from __future__ import annotations

from typing import Any

from pycrdt import get_state

from codedraft.accounts import operations as accounts
from codedraft.codes.models import Role
from codedraft.collab.core import unpack_frames
from codedraft.extensions import db
from tests.realtime.conftest import stored_text
from tests.support.live import YClient, wait_for


def _var_uint(data: bytes, at: int) -> tuple[int, int]:
    """A lib0 varuint at ``at``: (value, position after it)."""
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _clients_in(frame: bytes) -> set[int]:
    """The Yjs client ids whose edits a sync-update frame carries (its update's state vector)."""
    length, at = _var_uint(frame, 2)
    state = get_state(frame[at:at + length])
    count, at = _var_uint(state, 0)
    clients = set()
    for _ in range(count):
        client, at = _var_uint(state, at)
        _clock, at = _var_uint(state, at)
        clients.add(client)
    return clients


def _recording(client: YClient) -> list[dict[str, Any]]:
    """Every "y" payload the client receives, in order."""
    seen: list[dict[str, Any]] = []
    original = client._on_y

    def record(data: dict[str, Any]) -> None:
        seen.append(data)
        original(data)

    client.sio.on("y", record, namespace="/collab")
    return seen


def _edit_updates(payloads: list[dict[str, Any]]) -> list[bytes]:
    """The Yjs updates inside the edit broadcasts (``frames``) among ``payloads``."""
    updates = []
    for payload in payloads:
        for frame in unpack_frames(payload["frames"]) if "frames" in payload else []:
            assert frame[:2] == b"\x00\x02"  # sync, update
            updates.append(frame)
    return updates


def test_a_raised_role_lets_the_next_update_through(app, stage):
    """The socket's rights were read (and kept) while it was an observer; granting the member
    role announces a change, and the very next update is accepted."""
    watcher = stage.client("observer")
    assert watcher.join(stage.clause.uid)["readonly"] is True
    assert watcher.synced.wait(5)
    watcher.resync()  # a message a reader may send: its rights are read and kept now
    wait_for(lambda: len(watcher.acks) >= 2, message="the step 1 answered")
    assert all(a["ok"] for a in watcher.acks)
    with app.app_context():
        accounts.grant_role(db.session.merge(stage.people["observer"]), db.session.merge(stage.code), Role.member)
        db.session.commit()
    watcher.insert(0, "Promoted: ")
    wait_for(lambda: stored_text(app, stage.clause.id) == "Promoted: Seed text.", message="the update stored")
    assert all(a["ok"] for a in watcher.acks)


def test_edits_reach_others_in_frames_and_never_their_author(app, stage):
    alice, bob = stage.editor("chair"), stage.editor("member")
    viewer = stage.client("reviewer")
    assert viewer.join(stage.clause.uid)["ok"]
    assert viewer.synced.wait(5)
    to_alice, to_bob, to_viewer = _recording(alice), _recording(bob), _recording(viewer)
    for n in range(20):
        alice.insert(0, f"a{n} ")
    bob.insert(len(bob.value()), " (bob)")
    wait_for(lambda: alice.value() == bob.value() == viewer.value() and alice.value().endswith(" (bob)")
             and alice.value().startswith("a19 "), message="every replica has every edit")
    alice_id, bob_id = alice.doc.client_id, bob.doc.client_id
    assert not any(alice_id in _clients_in(frame) for frame in _edit_updates(to_alice))
    assert not any(bob_id in _clients_in(frame) for frame in _edit_updates(to_bob))
    received_by_viewer = set().union(*(_clients_in(frame) for frame in _edit_updates(to_viewer)))
    assert {alice_id, bob_id} <= received_by_viewer
    # Every edit reached the viewer through "frames"; "msg" only carried answers and presence.
    assert not any("msg" in payload and payload["msg"][:2] == b"\x00\x02" for payload in to_viewer)
