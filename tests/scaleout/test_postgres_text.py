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
