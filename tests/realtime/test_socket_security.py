"""SECURITY-CASES 1-8, 11-13 against the live Socket.IO namespace."""
from __future__ import annotations

import json
import time

import pytest
import socketio

from codedraft.accounts import operations as accounts
from codedraft.codes.models import Role
from codedraft.collab.core import sync_update_message
from codedraft.extensions import db
from tests.realtime.conftest import stored_text
from tests.support.live import CSRF_META, YClient, wait_for


def test_case_1_no_session_is_refused_at_connect(stage):
    anonymous = YClient(stage.base)
    with pytest.raises(socketio.exceptions.ConnectionError):
        anonymous.connect()
    assert not anonymous.sio.connected
    assert anonymous.received == 0
    forged = YClient(stage.base, headers={"Cookie": "codedraft_session=forged.value.here"})
    with pytest.raises(socketio.exceptions.ConnectionError):
        forged.connect()


def test_case_2_joining_a_clause_one_may_not_see_is_refused(app, stage):
    outsider = stage.client("outsider")
    refused = outsider.join(stage.clause.uid)
    missing = outsider.join("ffffffffffffffff")
    assert refused == missing == {"ok": False, "error": "No such clause, or you may not see it."}
    namespace = app.extensions["codedraft_collab_namespace"]
    assert namespace.connections[outsider.sio.get_sid("/collab")].presence == {}
    time.sleep(0.2)
    assert outsider.received == 0  # no step 1, no data


def test_case_3_messages_naming_another_codes_clause_are_checked(app, stage):
    editor = stage.editor("chair")
    # Joined our clause, but send an update, presence and a join naming a clause of another code.
    update = editor.call("y", {"clause": stage.other_clause.uid, "msg": sync_update_message(b"\x00\x00")})
    presence = editor.call("y", {"clause": stage.other_clause.uid, "msg": b"\x01\x01\x00"})
    leave = editor.call("leave", {"clause": stage.other_clause.uid})
    assert update["ok"] is False and presence["ok"] is False
    assert leave == {"ok": True}  # leaving a room one is not in changes nothing
    assert stored_text(app, stage.other_clause.id) == "Not for you."


def test_case_4_reviewer_and_observer_updates_are_rejected_but_reviewers_still_read(app, stage):
    # A reviewer may suggest (an update marked as their suggestion), never change the text itself.
    refusals = {"reviewer": "you may only suggest text, marked as your suggestion",
                "observer": "you may read this clause but not edit it"}
    for who, refusal in refusals.items():
        client = stage.client(who)
        assert client.join(stage.clause.uid)["readonly"] is True
        assert client.synced.wait(5)
        client.insert(0, f"{who} was here ")
        wait_for(lambda c=client: any(not a["ok"] for a in c.acks), message="rejection")
        assert [a for a in client.acks if not a["ok"]] == [{"ok": False, "error": refusal}]
    assert stored_text(app, stage.clause.id) == "Seed text."


def test_case_5_role_lowered_then_read_access_lost(app, stage):
    member = stage.editor("member")
    member.insert(0, "A")
    wait_for(lambda: stored_text(app, stage.clause.id) == "ASeed text.", message="first edit stored")
    with app.app_context():
        accounts.grant_role(db.session.merge(stage.people["member"]), db.session.merge(stage.code), Role.observer)
        db.session.commit()
    member.insert(0, "B")
    wait_for(lambda: any(not a["ok"] for a in member.acks), message="rejection")
    assert stored_text(app, stage.clause.id) == "ASeed text."
    with app.app_context():
        accounts.revoke_role(db.session.merge(stage.people["member"]), db.session.merge(stage.code))
        db.session.commit()
    before = len(member.acks)
    member.send(b"\x01\x01\x00")
    wait_for(lambda: len(member.acks) > before, message="removal")
    assert member.acks[-1] == {"ok": False, "error": "You may not see this clause any more."}
    assert member.roles[-1]["removed"] is True


def test_case_5_a_silent_reader_who_loses_read_access_is_sent_no_more_edits(app, stage):
    """A reader who sends nothing after losing access is taken out of the room by the next
    broadcast (it is read again before it is sent anything), not by its own next message."""
    chair = stage.editor("chair")
    watcher = stage.editor("observer")
    chair.insert(0, "A")
    wait_for(lambda: watcher.value() == "ASeed text.", message="the watcher to see the first edit")
    with app.app_context():
        accounts.revoke_role(db.session.merge(stage.people["observer"]), db.session.merge(stage.code))
        db.session.commit()
    chair.insert(0, "B")
    wait_for(lambda: any(role.get("removed") for role in watcher.roles), message="the watcher to be told")
    chair.insert(0, "C")
    wait_for(lambda: stored_text(app, stage.clause.id) == "CBASeed text.", message="the chair's edits stored")
    wait_for(lambda: chair.value() == "CBASeed text.", message="the chair's own copy")
    assert watcher.value() == "ASeed text."  # neither later edit reached the watcher


def test_case_6_logout_in_another_tab_ends_the_socket(stage):
    chair = stage.people["chair"]
    from tests.conftest import PASSWORD
    from tests.support.live import http_sign_in

    browser = http_sign_in(stage.base, chair.email, PASSWORD)
    socket_tab = YClient(stage.base, browser).connect()
    stage.clients.append(socket_tab)
    assert socket_tab.join(stage.clause.uid)["ok"]
    token = CSRF_META.search(browser.get(f"{stage.base}/").text).group(1)
    browser.post(f"{stage.base}/logout", data={"csrf_token": token}, allow_redirects=False)
    wait_for(lambda: not socket_tab.sio.connected, message="socket closed by logout")


def test_case_7_a_foreign_origin_is_refused(stage):
    from tests.conftest import PASSWORD
    from tests.support.live import http_sign_in

    browser = http_sign_in(stage.base, stage.people["chair"].email, PASSWORD)
    foreign = YClient(stage.base, browser, headers={"Origin": "https://evil.example"})
    with pytest.raises(socketio.exceptions.ConnectionError):
        foreign.connect()
    same = YClient(stage.base, browser).connect()  # python-socketio sends the server's own origin
    stage.clients.append(same)
    assert same.sio.connected


@pytest.mark.parametrize(
    "payload",
    [
        "not json at all",
        {"clause": 12, "msg": b"\x00\x02\x00"},
        {"msg": b"\x00\x02\x02\x00\x00"},
        {"clause": None},
        ["a", "list"],
        {"clause": "x" * 1000, "msg": b"\x00"},
    ],
)
def test_case_8_malformed_envelopes_get_a_clear_error(app, stage, payload):
    editor = stage.editor("chair")
    ack = editor.call("y", payload)
    assert ack["ok"] is False and ack["error"]
    assert editor.sio.connected
    assert stored_text(app, stage.clause.id) == "Seed text."


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00",  # sync frame without a sync type
        b"\x00\x02",  # update without its payload
        b"\x00\x02\x10\x01\x02",  # update whose length runs past the end (truncated)
        b"\x00\x02\x05\xff\xff\xff\xff\xff",  # five bytes that are not an update
        b"\x07\x00",  # unknown message type
        b"\x01\x05{{{{{",  # awareness that does not decode
    ],
)
def test_case_8_malformed_binary_is_rejected_and_the_document_unchanged(app, stage, frame):
    editor = stage.editor("chair")
    ack = editor.call("y", {"clause": stage.clause.uid, "msg": frame})
    assert ack["ok"] is False and "Traceback" not in ack["error"]
    editor.insert(0, "still fine ")
    wait_for(lambda: stored_text(app, stage.clause.id) == "still fine Seed text.", message="editing goes on")


def test_case_8_a_truncated_real_update_is_rejected(app, stage):
    editor = stage.editor("chair")
    captured: list[bytes] = []
    scratch = YClient(stage.base)
    scratch.doc.observe(lambda event: captured.append(event.update))
    scratch.text.insert(0, "truncated 👍")
    truncated = sync_update_message(captured[0])[:-3]
    ack = editor.call("y", {"clause": stage.clause.uid, "msg": truncated})
    assert ack["ok"] is False
    assert stored_text(app, stage.clause.id) == "Seed text."


def test_case_11_huge_and_deeply_nested_messages_are_rejected(app, stage):
    editor = stage.editor("chair")
    nested = json.dumps({"user": {"name": "x"}}).replace('"x"', "[" * 5000 + "]" * 5000).encode()
    from codedraft.collab.core import _var_bytes, _var_uint

    awareness = b"\x01" + _var_bytes(_var_uint(1) + _var_uint(123) + _var_uint(5) + _var_bytes(nested))
    ack = editor.call("y", {"clause": stage.clause.uid, "msg": awareness})
    assert ack["ok"] is False
    # 1.5 MB passes the transport limit but not the core's; 10 MB is cut off by the transport.
    big = editor.call("y", {"clause": stage.clause.uid, "msg": b"\x00\x02" + b"\x00" * 1_500_000})
    assert big["ok"] is False and "exceeds" in big["error"]
    victim = stage.editor("second_chair")
    victim.sio.emit("y", {"clause": stage.clause.uid, "msg": b"\x00" * 10_000_000}, namespace="/collab")
    wait_for(lambda: not victim.sio.connected, message="oversized sender disconnected")
    assert stored_text(app, stage.clause.id) == "Seed text."


def test_case_12_a_flooding_socket_is_cut_off_and_others_are_not(app, stage):
    flooder = stage.editor("chair")
    bystander = stage.editor("member")
    for _ in range(1000):
        if not flooder.sio.connected:
            break
        try:
            flooder.sio.emit("y", {"clause": stage.clause.uid, "msg": b"\x01\x01\x00"}, namespace="/collab")
        except socketio.exceptions.BadNamespaceError:
            break
    wait_for(lambda: not flooder.sio.connected, message="flooder disconnected")
    bystander.insert(0, "unaffected ")
    wait_for(lambda: stored_text(app, stage.clause.id) == "unaffected Seed text.", message="bystander edits")
    assert bystander.sio.connected


def test_case_13_unicode_is_identical_byte_for_byte(app, stage):
    import unicodedata

    alice, bob = stage.editor("chair"), stage.editor("member")
    nfd = unicodedata.normalize("NFD", "é")
    alice.insert(0, f"👨‍👩‍👧‍👦 {nfd} e\u0301\u0323 \r\n")
    wait_for(lambda: bob.value() == alice.value(), message="convergence")
    bob.insert(2, "🇵🇱")  # after the family emoji's first code point: inside a grapheme, never a code point
    bob.delete(len(bob.value()) - 3, 2)
    wait_for(lambda: bob.value() == alice.value() and len(bob.acks) >= 3, message="convergence")
    final = alice.value()
    assert stored_text(app, stage.clause.id) == final
    wait_for(lambda: _body(app, stage.clause.id) == final, message="materialised body")
    assert _body(app, stage.clause.id).encode() == final.encode()


def _body(app, clause_id: int) -> str:
    from codedraft.codes.models import Clause

    with app.app_context():
        body = db.session.get(Clause, clause_id).body
        db.session.remove()
    return body


def test_refusals_reach_the_browser_in_its_language(stage):
    """A socket opened with Accept-Language: pl (or a session that chose Polish) is refused in Polish."""
    from tests.conftest import PASSWORD
    from tests.support.live import http_sign_in

    browser = http_sign_in(stage.base, stage.people["chair"].email, PASSWORD)
    polish = YClient(stage.base, browser, headers={"Accept-Language": "pl"})
    stage.clients.append(polish)
    polish.connect()
    assert polish.join("ffffffffffffffff") == {
        "ok": False, "error": "Nie ma takiego przepisu albo nie możesz go zobaczyć."}
    assert polish.join(stage.clause.uid)["ok"] is True
    uid = stage.clause.uid
    assert polish.call("y", {"clause": uid, "msg": b"\x00\x07"}) == {
        "ok": False, "error": "nieznany typ wiadomości synchronizacji: 7"}
    assert polish.call("y", {"clause": uid, "msg": b"\x00"}) == {"ok": False, "error": "wiadomość: dane są ucięte"}
    assert polish.call("y", {"clause": uid, "msg": b"\x05"}) == {"ok": False, "error": "nieznany typ wiadomości: 5"}
    assert polish.call("y", {"clause": uid}) == {
        "ok": False, "error": "Wyślij {clause: '<identyfikator przepisu>', msg: <binarna wiadomość y-protocols>}."}
    assert polish.call("leave", {"clause": 12345})["error"] == "Wyślij {clause: '<identyfikator przepisu>'}."
    # The same refusal in English for an English socket; the language chosen in the session wins.
    english = stage.editor("member")
    assert english.call("y", {"clause": uid, "msg": b"\x00\x07"})["error"] == "unknown sync message type 7"
    chooser = http_sign_in(stage.base, stage.people["reviewer"].email, PASSWORD)
    token = CSRF_META.search(chooser.get(f"{stage.base}/", timeout=10).text).group(1)
    chooser.post(f"{stage.base}/language", data={"csrf_token": token, "lang": "pl", "next": "/"}, timeout=10)
    reviewer = YClient(stage.base, chooser, headers={"Accept-Language": "en"})
    stage.clients.append(reviewer)
    reviewer.connect()
    assert reviewer.join(stage.clause.uid)["ok"] is True
    assert reviewer.synced.wait(5)
    reviewer.insert(0, "x")
    wait_for(lambda: any(not a["ok"] for a in reviewer.acks), message="rejection")
    # A reviewer may suggest but not edit: a plain insertion is refused, in the chosen language.
    assert {"ok": False, "error": "możesz tylko proponować tekst, oznaczony jako twoja sugestia"} in reviewer.acks


def test_y_events_of_any_shape_are_answered_with_a_refusal_and_the_socket_goes_on(app, stage):
    """The "y" event is served outside Flask-SocketIO's request context (CollabNamespace.trigger_event):
    whatever it carries, or lacks, it is refused in words and the socket keeps working."""
    editor = stage.editor("chair")
    uid = stage.clause.uid
    shape = {"ok": False, "error": "Send {clause: '<clause id>', msg: <binary y-protocols message>}."}
    no_payload = editor.sio.call("y", namespace="/collab", timeout=10)
    several = editor.sio.call("y", ({"clause": uid}, "extra", 3), namespace="/collab", timeout=10)
    for payload in (None, [], "y", 42, {"clause": uid, "msg": "text, not bytes"}, {"clause": ["a"], "msg": b"\x00"},
                    {"clause": "x" * 65, "msg": b"\x00"}):
        assert editor.call("y", payload) == shape, payload
    assert no_payload == shape and several == shape
    assert editor.call("y", {"clause": "ffffffffffffffff", "msg": b"\x00\x00\x00"}) == {
        "ok": False, "error": "Join the clause first."}
    editor.insert(0, "still here ")
    wait_for(lambda: stored_text(app, stage.clause.id).startswith("still here "), message="the edit stored")


def test_an_update_under_another_persons_editor_id_is_refused_and_their_edit_kept(app, stage):
    """Yjs trusts the client id an update names. A reviewer who knows the chair's id (it is the
    chair's presence id) must not take the clocks of the chair's next edit: the chair's edit,
    acknowledged, would be dropped as a duplicate and the copies would differ for good."""
    from pycrdt import Doc, Text

    chair = stage.editor("chair")
    chair.insert(0, "Chair ")
    wait_for(lambda: stored_text(app, stage.clause.id) == "Chair Seed text.", message="the chair's first edit")
    reviewer = stage.editor("reviewer")
    forged = Doc(client_id=chair.doc.client_id)
    forged.get("body", type=Text)
    forged.apply_update(reviewer.doc.get_update())
    known = forged.get_state()
    mark = {"suggestion": {"id": "s-forged", "by": stage.people["reviewer"].id}}
    forged.get("body", type=Text).insert(0, "x", attrs=mark)
    before = len(reviewer.acks)
    reviewer.send(sync_update_message(forged.get_update(known)))
    wait_for(lambda: len(reviewer.acks) > before, message="the forged update's answer")
    assert reviewer.acks[-1] == {"ok": False, "error": "the update writes under another person's editor id"}
    chair.insert(0, "Again ")
    wait_for(lambda: stored_text(app, stage.clause.id) == "Again Chair Seed text.", message="the chair's edit, whole")
    wait_for(lambda: reviewer.value() == "Again Chair Seed text.", message="the reviewer's copy")


def test_after_a_restart_an_editor_id_still_belongs_to_the_account_the_log_names(app, stage):
    """One process keeps its claims in memory; a restarted one has none. The log still says whose
    an id was: a reviewer cannot take it, and its owner's edits under it (sent from a new
    connection, as offline edits are) are taken."""
    from pycrdt import Doc, Text

    from codedraft.collab.presence import MemoryClaimBook

    chair = stage.editor("chair")
    chair.insert(0, "Chair ")
    wait_for(lambda: stored_text(app, stage.clause.id) == "Chair Seed text.", message="the chair's first edit")
    app.extensions["codedraft_collab_namespace"].claims = MemoryClaimBook()  # what a restarted process holds

    def under_the_chairs_id(text: str, attrs=None) -> bytes:
        copy = Doc(client_id=chair.doc.client_id)
        copy.get("body", type=Text)
        copy.apply_update(chair.doc.get_update())
        known = copy.get_state()
        copy.get("body", type=Text).insert(0, text, attrs=attrs)
        return sync_update_message(copy.get_update(known))

    reviewer = stage.editor("reviewer")
    mark = {"suggestion": {"id": "s-forged", "by": stage.people["reviewer"].id}}
    before = len(reviewer.acks)
    reviewer.send(under_the_chairs_id("x", mark))
    wait_for(lambda: len(reviewer.acks) > before, message="the forged update's answer")
    assert reviewer.acks[-1] == {"ok": False, "error": "the update writes under another person's editor id"}

    again = stage.editor("chair")
    before = len(again.acks)
    again.send(under_the_chairs_id("Offline "))
    wait_for(lambda: len(again.acks) > before, message="the chair's offline edit answered")
    assert again.acks[-1] == {"ok": True}
    wait_for(lambda: stored_text(app, stage.clause.id) == "Offline Chair Seed text.", message="the offline edit stored")
