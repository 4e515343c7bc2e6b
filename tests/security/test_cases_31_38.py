"""SECURITY-CASES 31-38: accounts and presence, driven through the real app, a real server and
real Socket.IO clients (the browser half of 34 is in tests/browser/test_hostile_presence.py)."""
from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
import requests
from click.testing import CliRunner

from codedraft.accounts import operations as accounts
from codedraft.accounts.models import ApiToken, Invitation, User
from codedraft.audit.models import AuditEvent
from codedraft.codes.models import Membership, Role
from codedraft.collab.core import AwarenessEntry, awareness_message, awareness_payload, parse_awareness
from codedraft.collab.presence import MAX_AWARENESS_BYTES
from codedraft.extensions import db, socketio
from codedraft.timeutil import utcnow
from tests.conftest import PASSWORD, csrf_token, login
from tests.realtime.conftest import stage  # noqa: F401  (the live-server fixture)
from tests.support.live import CSRF_META, YClient, http_sign_in, wait_for

LINK = re.compile(r"/invite/([A-Za-z0-9_\-]+)")


def _invite_through_settings(client, code, email: str, role: str = "reviewer") -> str:
    """What a code admin does in the browser; returns the one-time token the page shows."""
    token = csrf_token(client, f"/codes/{code.slug}/settings")
    response = client.post(f"/codes/{code.slug}/invitations",
                           data={"email": email, "name": "Someone", "role": role, "csrf_token": token},
                           follow_redirects=True)
    assert response.status_code == 200
    match = LINK.search(response.get_data(as_text=True))
    assert match, "the invitation link is shown once"
    return match.group(1)


def test_security_case_31_an_invitation_never_sets_an_existing_password(app, make_code, make_user):
    code = make_code("Takeover Code")
    office = make_user(office=True, email="office@office.test", name="The Office")
    code_admin = make_user("admin", code, email="admin@code.test")
    db.session.commit()
    admin_browser = app.test_client()
    assert login(admin_browser, code_admin.email).status_code == 302
    token = _invite_through_settings(admin_browser, code, office.email)

    # The attacker opens the link: no password form, and a password sent anyway is refused.
    attacker = app.test_client()
    page = attacker.get(f"/invite/{token}").get_data(as_text=True)
    assert 'name="password"' not in page and "Sign in to accept" in page
    assert attacker.post(f"/invite/{token}", data={"password": "attacker-password-1", "password_again":
                                                   "attacker-password-1", "csrf_token": csrf_token(attacker)}
                         ).status_code in (400, 403)
    assert login(app.test_client(), office.email, "attacker-password-1").status_code == 401
    with pytest.raises(accounts.AccountError):
        accounts.accept_invitation(token, "attacker-password-2")
    db.session.rollback()

    # Signed in as another account, accepting is refused too.
    assert attacker.post(f"/invite/{token}", data={"csrf_token": csrf_token(attacker)}).status_code in (400, 403)

    # The Office signs in with its own password, then accepts: the role, and only the role.
    owner = app.test_client()
    assert login(owner, office.email).status_code == 302
    assert owner.post(f"/invite/{token}", data={"csrf_token": csrf_token(owner, f"/invite/{token}")}).status_code == 302
    db.session.expire_all()
    assert db.session.query(Membership).filter_by(user_id=office.id, code_id=code.id).one().role == "reviewer"
    assert login(app.test_client(), office.email).status_code == 302  # the password is unchanged
    # Single use, and expiry.
    assert owner.get(f"/invite/{token}").status_code == 404
    _invitation, stale = accounts.invite("late@example.test", "Late", code=code, role=Role.reviewer, days=-1)
    db.session.commit()
    assert app.test_client().get(f"/invite/{stale}").status_code == 404
    actions = {event.action for event in db.session.query(AuditEvent)}
    assert {"invitation.sent", "invitation.accepted", "role.granted"} <= actions


def test_security_case_32_a_password_change_ends_every_other_session_socket_and_token(app, stage):  # noqa: F811
    chair = stage.people["chair"]
    other_browser = http_sign_in(stage.base, chair.email, PASSWORD)
    other_tab = YClient(stage.base, other_browser).connect()
    stage.clients.append(other_tab)
    assert other_tab.join(stage.clause.uid)["ok"]
    with app.app_context():
        _record, api_token = accounts.create_api_token(db.session.merge(chair), "script")
        db.session.commit()
    auth = {"Authorization": f"Bearer {api_token}"}
    assert requests.get(f"{stage.base}/api/v1/codes", headers=auth, timeout=10).status_code == 200

    this_browser = http_sign_in(stage.base, chair.email, PASSWORD)
    form_token = CSRF_META.search(this_browser.get(f"{stage.base}/account/password").text).group(1)  # type: ignore[union-attr]
    changed = this_browser.post(f"{stage.base}/account/password", allow_redirects=False, timeout=10, data={
        "current_password": PASSWORD, "new_password": "a brand new password", "new_password_again":
        "a brand new password", "csrf_token": form_token})
    assert changed.status_code == 302

    wait_for(lambda: not other_tab.sio.connected, message="the other tab's socket closed")
    assert other_browser.get(f"{stage.base}/codes/{stage.code.slug}", allow_redirects=False).status_code == 302
    assert requests.get(f"{stage.base}/api/v1/codes", headers=auth, timeout=10).status_code == 401
    assert this_browser.get(f"{stage.base}/codes/{stage.code.slug}", allow_redirects=False).status_code == 200
    # A wrong current password changes nothing.
    form_token = CSRF_META.search(this_browser.get(f"{stage.base}/account/password").text).group(1)  # type: ignore[union-attr]
    this_browser.post(f"{stage.base}/account/password", timeout=10, data={
        "current_password": "not it at all", "new_password": "yet another password", "new_password_again":
        "yet another password", "csrf_token": form_token})
    assert http_sign_in(stage.base, chair.email, "a brand new password")


def test_security_case_33_a_code_admin_sees_and_manages_only_their_codes_people(client, make_code, make_user,
                                                                               sign_in):
    mine, theirs = make_code("Mine"), make_code("Theirs")
    admin = make_user("admin", mine, email="admin@mine.test")
    colleague = make_user("reviewer", mine, email="colleague@mine.test")
    stranger = make_user("chair", theirs, email="stranger@theirs.test")
    office = make_user(office=True, email="office@office.test")
    sign_in(admin)
    page = client.get(f"/codes/{mine.slug}/settings").get_data(as_text=True)
    assert colleague.email in page
    assert stranger.email not in page and office.email not in page
    token = csrf_token(client, f"/codes/{mine.slug}/settings")
    for person in (stranger, office):
        refused = client.post(f"/codes/{mine.slug}/people", data={"user_id": person.id, "role": "admin",
                                                                   "csrf_token": token})
        assert refused.status_code == 403
    refused = client.post(f"/codes/{mine.slug}/organisations", data={
        "user_id": office.id, "organisation": "Mallory Inc", "category": "industry", "csrf_token": token})
    assert refused.status_code == 403
    granted = client.post(f"/codes/{mine.slug}/people", data={"user_id": colleague.id, "role": "member",
                                                               "csrf_token": token})
    assert granted.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, office.id).organisation is None
    assert accounts.people_visible_to(db.session.get(User, admin.id)) == [db.session.get(User, admin.id),
                                                                           db.session.get(User, colleague.id)]
    # A chair of a working group is no admin: the settings page and its forms are closed to them.
    chair = make_user("chair", theirs, email="chair@theirs.test")
    sign_in(chair)
    assert client.get(f"/codes/{mine.slug}/settings").status_code == 404


def _awareness(client_id: int, state: dict | None, clock: int = 1) -> bytes:
    return awareness_message({client_id: AwarenessEntry(clock, state)})


def _states(message: bytes) -> dict[int, dict | None]:
    payload = awareness_payload(message, 1 << 20)
    assert payload is not None
    return {client_id: entry.state for client_id, entry in parse_awareness(payload).items()}


HOSTILE_USER = {"name": "Chair", "color": "red;position:fixed;inset:0;z-index:9", "colorLight": "url(//evil.example)"}
CURSOR = {"anchor": {"type": None, "tname": "body", "item": None, "assoc": 0},
          "head": {"type": None, "tname": "body", "item": None, "assoc": 0}}


def test_security_case_34_presence_is_the_account_s_own(app, stage):  # noqa: F811
    chair = stage.editor("chair")
    reviewer = stage.editor("reviewer")
    assert reviewer.call("y", {"clause": stage.clause.uid, "msg": _awareness(101, {"user": {"name": "Chair"}})})["ok"]
    wait_for(lambda: any(101 in _states(m) for m in chair.awareness), message="reviewer's presence")
    assert chair.call("y", {"clause": stage.clause.uid, "msg": _awareness(202, {"user": {"name": "Chair"}})})["ok"]
    before = len(chair.awareness)

    answer = reviewer.call("y", {"clause": stage.clause.uid, "msg": _awareness(
        101, {"user": {**HOSTILE_USER, "id": stage.people["chair"].id}, "cursor": CURSOR,
              "extra": {"anything": [1, 2, 3]}}, clock=2)})
    assert answer["ok"] is True
    wait_for(lambda: len(chair.awareness) > before, message="the stamped presence")
    seen = _states(chair.awareness[-1])[101]
    reviewer_account = db.session.get(User, stage.people["reviewer"].id)
    # The account id is the server's word too: the chair's id claimed by the reviewer is replaced.
    assert seen == {"user": {"name": "Reviewer", "color": reviewer_account.colour,
                             "colorLight": reviewer_account.colour + "33", "id": reviewer_account.id},
                    "cursor": CURSOR}

    # Someone else's presence can be neither overwritten nor removed.
    for hijack in (_awareness(202, {"user": HOSTILE_USER}, clock=9), _awareness(202, None, clock=9)):
        refused = reviewer.call("y", {"clause": stage.clause.uid, "msg": hijack})
        assert refused["ok"] is False, refused
    # Nor claimed through another socket of another person while its owner is here.
    member = stage.editor("member")
    assert member.call("y", {"clause": stage.clause.uid, "msg": _awareness(202, {"user": {}}, clock=10)})["ok"] is False
    # A newcomer is replayed only stamped states.
    newcomer = stage.editor("second_chair")
    wait_for(lambda: any(101 in _states(m) for m in newcomer.awareness), message="replayed presence")
    for message in newcomer.awareness:
        for state in _states(message).values():
            assert state is None or set(state) <= {"user", "cursor"}
            assert state is None or re.fullmatch(r"#[0-9a-f]{6}", state["user"]["color"])


def test_security_case_35_oversize_presence_and_event_floods_are_cut_off(app, stage, caplog):  # noqa: F811
    caplog.set_level(logging.INFO)
    reviewer = stage.editor("reviewer")
    huge = _awareness(303, {"user": {"name": "R"}, "pad": "x" * 900_000})
    refused = reviewer.call("y", {"clause": stage.clause.uid, "msg": huge})
    assert refused["ok"] is False and "exceeds" in refused["error"]
    newcomer = stage.editor("chair")
    assert all(len(message) <= MAX_AWARENESS_BYTES for message in newcomer.awareness)

    flooder = stage.editor("member")
    eio_sid = flooder.sio.eio.sid
    assert eio_sid in socketio.server.eio.sockets
    for _ in range(200):
        if not flooder.sio.connected:
            break
        try:
            flooder.sio.emit("join", {"clause": stage.clause.uid}, namespace="/collab")
        except Exception:  # the client notices the closed connection
            break
    wait_for(lambda: not flooder.sio.connected, message="the joining flooder cut off")
    wait_for(lambda: eio_sid not in socketio.server.eio.sockets, message="its transport closed")
    assert newcomer.sio.connected
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert tracebacks == [], [record.getMessage() for record in tracebacks]


@pytest.mark.parametrize("target", [
    "//evil.example/x", "/\\evil.example", "/\t/evil.example", "https://evil.example/", "/ok\r\nSet-Cookie: x=1",
    "/%0d%0aLocation:%20//evil", "\\\\evil.example", "javascript:alert(1)", "/" + "a" * 5000, "",
])
def test_security_case_36_redirect_targets_stay_on_this_site(client, make_user, target):
    user = make_user()
    db.session.commit()
    response = client.post("/login?" + requests.compat.urlencode({"next": target}), data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location
    assert "\r" not in location and "\n" not in location and "\t" not in location
    switched = client.post("/language", data={"lang": "pl", "next": target, "csrf_token": csrf_token(client, "/")})
    assert switched.status_code == 302
    assert switched.headers["Location"].startswith("/") and not switched.headers["Location"].startswith("//")


def test_security_case_36_a_safe_path_is_followed(client, make_user):
    user = make_user()
    db.session.commit()
    response = client.post("/login?next=/search%3Fq%3Dsystemic", data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.headers["Location"] == "/search?q=systemic"


def test_security_case_37_tokens_are_listed_revocable_and_expire(app, client, make_user, sign_in):
    owner = make_user(office=True, email="owner@example.test")
    sign_in(owner)
    token = csrf_token(client, "/account/tokens")
    page = client.post("/account/tokens", data={"name": "nightly export", "expires_in_days": "30",
                                                "csrf_token": token}).get_data(as_text=True)
    secret = re.search(r"(cdt_[A-Za-z0-9_\-]+)", page).group(1)  # type: ignore[union-attr]
    api = app.test_client()
    assert api.get("/api/v1/codes", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listing = client.get("/account/tokens").get_data(as_text=True)
    assert "nightly export" in listing and "Revoke nightly export" in listing
    record = db.session.query(ApiToken).filter_by(name="nightly export").one()
    assert record.last_used_at is not None and record.expires_at is not None

    client.post(f"/account/tokens/{record.id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens")})
    assert api.get("/api/v1/codes", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert "revoked" in client.get("/account/tokens").get_data(as_text=True)

    # Another person cannot revoke it; an expired token is refused; the command line revokes too.
    _other_record, other_secret = accounts.create_api_token(owner, "cli", expires_in_days=1)
    expired_record, expired_secret = accounts.create_api_token(owner, "old", expires_in_days=1)
    expired_record.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert api.get("/api/v1/codes", headers={"Authorization": f"Bearer {expired_secret}"}).status_code == 401
    assert api.get("/api/v1/codes", headers={"Authorization": f"Bearer {other_secret}"}).status_code == 200
    runner = CliRunner()
    listed = runner.invoke(app.cli, ["token", "list", owner.email])
    assert "cli" in listed.output and "expired" in listed.output
    revoked = runner.invoke(app.cli, ["token", "revoke", owner.email, str(_other_record.id)])
    assert revoked.exit_code == 0, revoked.output
    assert api.get("/api/v1/codes", headers={"Authorization": f"Bearer {other_secret}"}).status_code == 401
    stranger = make_user(email="stranger@example.test")
    db.session.commit()
    sign_in(stranger)
    assert client.post(f"/account/tokens/{record.id}/revoke",
                       data={"csrf_token": csrf_token(client, "/account/tokens")}).status_code == 404
    assert {"token.created", "token.revoked"} <= {e.action for e in db.session.query(AuditEvent)}


def test_security_case_38_deep_json_huge_numbers_and_long_strings_get_400(app, client, make_user, make_code,
                                                                          make_clause, sign_in):
    office = make_user(office=True)
    clause = make_clause(make_code("Limits"))
    _record, secret = accounts.create_api_token(office, "limits")
    db.session.commit()
    auth = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    deep = "[" * 600 + "]" * 600
    response = client.post("/api/v1/codes", data=deep, headers=auth)
    assert response.status_code == 400 and "nested" in response.get_json()["error"]
    huge = client.post("/api/v1/codes", data='{"title": "x", "n": 1' + "0" * 40 + "}", headers=auth)
    assert huge.status_code == 400 and "out of range" in huge.get_json()["error"]
    long_title = client.post("/api/v1/codes", data=json.dumps({"title": "t" * 5000}), headers=auth)
    assert long_title.status_code == 400, long_title.get_data(as_text=True)[:300]

    sign_in(office)
    code_slug = clause.chapter.code.slug
    for path in (f"/codes/{code_slug}/clauses/{clause.uid}/history?page=99999999999999999999999",
                 f"/codes/{code_slug}/clauses/{clause.uid}/history?page=-99999999999999999999999",
                 f"/codes/{code_slug}/chapters/99999999999999999999999/clauses"):
        answer = client.get(path)
        assert answer.status_code in (400, 404, 405), (path, answer.status_code)
    preview = client.post("/preview", data=deep, headers={"Content-Type": "application/json",
                                                           "X-CSRFToken": csrf_token(client, "/")})
    assert preview.status_code == 400
    token = csrf_token(client, f"/codes/{code_slug}/settings")
    long_chapter = client.post(f"/codes/{code_slug}/working-groups", data={"name": "w" * 5000, "csrf_token": token})
    assert long_chapter.status_code == 400 and "longer than" in long_chapter.get_data(as_text=True)

    # The Socket.IO transport answers with the same security headers as pages.
    transport = client.get("/socket.io/?EIO=4&transport=polling")
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"):
        assert header in transport.headers, header
    assert transport.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_security_case_38_style_attributes_are_refused_outside_the_editor(client, make_user, make_code, make_clause,
                                                                         sign_in):
    clause = make_clause(make_code("Styles"))
    sign_in(make_user(office=True))
    assert "style-src-attr 'none'" in client.get("/account/tokens").headers["Content-Security-Policy"]
    editor_page = client.get(f"/codes/{clause.chapter.code.slug}/clauses/{clause.uid}")
    assert "style-src-attr 'unsafe-inline'" in editor_page.headers["Content-Security-Policy"]


def test_invitation_for_a_new_address_sets_its_password_once(app, client, make_code):
    code = make_code()
    _invitation, token = accounts.invite("new@example.test", "New Person", code=code, role=Role.member)
    db.session.commit()
    form = {"password": "a long new password", "password_again": "a long new password",
            "csrf_token": csrf_token(client, f"/invite/{token}")}
    assert client.post(f"/invite/{token}", data=form).status_code == 302
    assert db.session.query(Invitation).one().used_at is not None
    second = app.test_client()
    assert second.post(f"/invite/{token}", data={**form, "csrf_token": csrf_token(second)}).status_code == 404


@pytest.mark.parametrize("packet", [
    "2/collab," + "[" * 5000 + "]" * 5000,  # an event nested thousands deep
    "2/collab,[\"y\",{\"clause\": 1" + "0" * 5000 + "}]",  # a number thousands of digits long
    "9nonsense",  # no such packet type
])
def test_security_case_38_a_malformed_socket_packet_closes_only_that_connection(app, stage, caplog,  # noqa: F811
                                                                                 packet):
    caplog.set_level(logging.INFO)
    bystander = stage.editor("chair")
    hostile = stage.editor("member")
    hostile.sio.eio.send(packet)
    wait_for(lambda: not hostile.sio.connected, message="the hostile connection closed")
    assert bystander.sio.connected
    assert bystander.call("y", {"clause": stage.clause.uid, "msg": _awareness(77, {"user": {}})})["ok"]
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert tracebacks == [], [record.getMessage() for record in tracebacks]
