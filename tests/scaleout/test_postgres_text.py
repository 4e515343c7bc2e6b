"""On PostgreSQL, which refuses NUL in text: a form carrying one is a 400 naming the field, and
the error pages render after a failed write (they read the signed-in user from the session)."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from codedraft.accounts import operations as accounts
from codedraft.codes.models import Code
from codedraft.extensions import db
from tests.scaleout import cluster as cl
from tests.support.live import CSRF_META


def _office_client(app: Flask, email: str):
    with app.app_context():
        accounts.create_user(email, "Office", cl.PASSWORD, is_office=True)
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = CSRF_META.search(page).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"email": email, "password": cl.PASSWORD, "csrf_token": token}).status_code == 302
    return client


def _token(client, path: str) -> str:
    return CSRF_META.search(client.get(path).get_data(as_text=True)).group(1)  # type: ignore[union-attr]


def test_a_nul_in_a_form_is_a_400_on_postgresql_and_the_next_page_renders(pg_app: Flask):
    client = _office_client(pg_app, "nul-office@scale.test")
    with pg_app.app_context():
        codes_before = db.session.scalar(select(func.count()).select_from(Code))
        db.session.remove()
    answer = client.post("/codes/new", data={"title": "Nul\x00code", "summary": "", "language": "en",
                                              "csrf_token": _token(client, "/codes/new")})
    assert answer.status_code == 400, answer.get_data(as_text=True)[:500]
    assert "holds a character that cannot be stored" in answer.get_data(as_text=True)
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Code)) == codes_before
        db.session.remove()
    assert client.get("/").status_code == 200


def test_a_nul_in_a_query_string_is_never_a_500_on_postgresql(pg_app: Flask):
    """Query strings reach lookups (a code by its slug, the audit log's actor, feedback filters)."""
    client = _office_client(pg_app, "nul-query-office@scale.test")
    from tests.scaleout.conftest import make_scene

    scene = make_scene(pg_app)
    slug, uid = scene.code.slug, scene.clause.uid
    paths = [
        "/search?q=a%00b", "/search?q=model&code=a%00b", "/register?code=a%00b",
        "/admin/audit?actor=a%00b&action=a%00b", f"/codes/{slug}/feedback?category=a%00b&organisation=a%00b",
        f"/codes/{slug}/clauses/{uid}/feedback?status=a%00b&kind=a%00b&q=a%00b",
        f"/codes/{slug}?lang=a%00b", f"/codes/{slug}/compare?from=a%00b&to=live",
        f"/codes/{slug}/clauses/{uid}/history?at=a%00b", "/notifications?page=%00",
    ]
    for path in paths:
        answer = client.get(path)
        assert answer.status_code < 500, (path, answer.status_code)
