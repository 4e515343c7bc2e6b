"""Sign-in, sessions, invitations and tokens; SECURITY-CASES 28-30."""
from __future__ import annotations

from codedraft.accounts import operations as accounts
from codedraft.accounts.models import LoginSession
from codedraft.codes.models import Role
from codedraft.extensions import db
from tests.conftest import PASSWORD, csrf_token, login


def _session_cookie(client) -> str | None:
    cookie = client.get_cookie("codedraft_session")
    return cookie.value if cookie else None


def test_case_28_session_rotates_at_login_and_ends_at_logout(app, client, make_user, make_code):
    code = make_code()
    user = make_user("reviewer", code)
    db.session.commit()
    client.get("/login")
    before = _session_cookie(client)
    assert login(client, user.email).status_code == 302
    after = _session_cookie(client)
    assert before and after and before != after
    assert client.get(f"/codes/{code.slug}").status_code == 200
    # A copy of the signed-in cookie, as an attacker who stole it would hold.
    stolen = after
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert db.session.query(LoginSession).filter(LoginSession.ended_at.is_not(None)).count() == 1
    replay = app.test_client()
    replay.set_cookie("codedraft_session", stolen)
    assert replay.get(f"/codes/{code.slug}").status_code == 302  # sent to sign in: the session is over


def test_case_29_post_without_or_with_wrong_csrf_is_403(client, make_user, make_code, sign_in):
    code = make_code()
    office = make_user(office=True)
    sign_in(office)
    assert client.post("/codes/new", data={"title": "No token"}).status_code == 403
    assert client.post("/codes/new", data={"title": "Wrong", "csrf_token": "forged"}).status_code == 403
    # A cross-site form carries no token of ours either.
    cross = client.post(f"/codes/{code.slug}/drafts", data={"name": "x"}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert client.post("/codes/new", data={"title": "Real", "csrf_token": csrf_token(client, "/")}).status_code == 302


def test_case_30_login_brute_force_gets_429_with_retry_after(client, make_user):
    user = make_user()
    db.session.commit()
    statuses = [login(client, user.email, "wrong password").status_code for _ in range(8)]
    assert statuses[0] == 401
    assert 429 in statuses
    limited = login(client, user.email, "wrong password")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0


def test_no_account_enumeration(client, make_user):
    user = make_user()
    db.session.commit()
    wrong_password = login(client, user.email, "not the password").get_data(as_text=True)
    no_account = login(client, "nobody@example.test", "not the password").get_data(as_text=True)
    assert "E-mail or password is wrong." in wrong_password
    assert "E-mail or password is wrong." in no_account


def test_open_redirect_is_refused(client, make_user):
    user = make_user()
    db.session.commit()
    token = csrf_token(client)
    response = client.post("/login?next=//evil.example/x", data={"email": user.email, "password": PASSWORD,
                                                                  "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_invitation_is_one_time_and_grants_the_role(client, make_code):
    code = make_code()
    _invitation, token = accounts.invite("new@example.test", "New Person", code=code, role=Role.chair)
    db.session.commit()
    page = client.get(f"/invite/{token}")
    assert page.status_code == 200 and "New Person" in page.get_data(as_text=True)
    form = {"password": "a long enough password", "password_again": "a long enough password",
            "csrf_token": csrf_token(client, f"/invite/{token}")}
    assert client.post(f"/invite/{token}", data=form).status_code == 302
    user = accounts.find_user_by_email("new@example.test")
    from codedraft import policy

    assert policy.code_role(user, code.id) == Role.chair
    assert client.get(f"/invite/{token}").status_code == 404


def test_cookies_are_httponly_and_samesite(client, make_user):
    user = make_user()
    db.session.commit()
    response = login(client, user.email)
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header


def test_content_security_policy_forbids_inline_script(client):
    first = client.get("/login").headers["Content-Security-Policy"]
    second = client.get("/login").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in first.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no eval, no nonce for scripts
    assert "unsafe-inline" not in directives["style-src"] and "'nonce-" in directives["style-src"]
    assert first != second  # a fresh nonce per response
    assert "<script>" not in client.get("/login").get_data(as_text=True)


def test_remembered_session_cookies_are_copies_and_forged_ones_are_refused(app):
    """The session interface remembers verified cookies (socket messages open the session each
    time); a remembered session is a fresh copy, and a cookie with a broken signature is not."""
    from codedraft.security import RememberingCookieSessionInterface

    interface = app.session_interface
    assert isinstance(interface, RememberingCookieSessionInterface)
    serializer = interface.get_signing_serializer(app)
    cookie = serializer.dumps({"login": "abc"})
    name = interface.get_cookie_name(app)
    with app.test_request_context(headers={"Cookie": f"{name}={cookie}"}):
        from flask import request

        first = interface.open_session(app, request)
        first["login"] = "changed by one request"
        second = interface.open_session(app, request)
        assert second["login"] == "abc" and second is not first
    forged = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    with app.test_request_context(headers={"Cookie": f"{name}={forged}"}):
        from flask import request

        assert dict(interface.open_session(app, request)) == {}
