"""Text no database column can hold (NUL; PostgreSQL refuses it) is refused with a 400 that names
the field, on every write path at once (the ORM's flush hook), and never reaches the log of a
clause (the co-editing core). On SQLite it used to be stored; on PostgreSQL it was a 500."""
from __future__ import annotations

import pytest
from pycrdt import Doc, Text
from sqlalchemy import func, select

from codedraft.codes.models import Code
from codedraft.collab.core import ClauseDocument, ProtocolError, sync_update_message
from codedraft.extensions import db
from tests.conftest import csrf_token


@pytest.mark.parametrize("field", ["title", "summary"])
def test_a_nul_in_a_form_field_is_refused_and_nothing_is_stored(app, client, make_user, sign_in, field):
    sign_in(make_user(office=True))
    values = {"title": "A code", "summary": "Its summary", "language": "en"}
    values[field] = "before\x00after"
    answer = client.post("/codes/new", data={**values, "csrf_token": csrf_token(client, "/codes/new")})
    assert answer.status_code == 400
    assert f"The field &#39;{field}&#39; holds a character that cannot be stored" in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Code)) == 0
    # The same person goes on: the session was rolled back, not left broken.
    values[field] = "before after"
    again = client.post("/codes/new", data={**values, "csrf_token": csrf_token(client, "/codes/new")})
    assert again.status_code == 302


def test_a_nul_in_an_edit_is_refused_by_the_core_and_the_text_unchanged():
    clause = ClauseDocument()
    peer: Doc[Text] = Doc()
    text = peer.get("body", type=Text)
    before = peer.get_state()
    text.insert(0, "a\x00b")
    with pytest.raises(ProtocolError, match="NUL"):
        clause.receive(sync_update_message(peer.get_update(before)), may_write=True)
    assert clause.text == ""


def test_an_organisation_name_too_long_is_refused_not_cut(app, client, make_code, make_user, sign_in):
    code = make_code("Long names")
    person = make_user("reviewer", code)
    sign_in(make_user(office=True))
    path = f"/codes/{code.slug}/settings"
    answer = client.post(f"/codes/{code.slug}/organisations", data={
        "csrf_token": csrf_token(client, path), "user_id": str(person.id), "category": "academia",
        "organisation": "O" * 250})
    assert answer.status_code == 400
    assert "longer than 200 characters" in answer.get_data(as_text=True)
    db.session.refresh(person)
    assert person.organisation is None


def test_a_nul_in_a_lookup_field_is_refused_before_any_view(app, client, make_code, make_user, sign_in):
    """Fields that are looked up, not only stored (a working group's or an organisation's name):
    PostgreSQL refuses NUL in a query's parameter too."""
    code = make_code("Lookups")
    sign_in(make_user(office=True))
    path = f"/codes/{code.slug}/settings"
    group = client.post(f"/codes/{code.slug}/working-groups", data={"csrf_token": csrf_token(client, path),
                                                                     "name": "Group\x00one"})
    assert group.status_code == 400
    assert "The field &#39;name&#39; holds a character that cannot be stored" in group.get_data(as_text=True)
    assert "NUL" in client.post(f"/codes/{code.slug}/working-groups", data={
        "csrf_token": csrf_token(client, path), "na\x00me": "Group"}).get_data(as_text=True)


@pytest.mark.parametrize("body", [b"title=%FF%FEcode&summary=x&language=en",  # escapes of no character
                                  b"title=\xff\xfecode&summary=x&language=en"])  # raw bytes of no character
def test_a_form_that_is_not_utf8_is_refused_not_changed(app, client, make_user, sign_in, body):
    sign_in(make_user(office=True))
    token = csrf_token(client, "/codes/new")
    answer = client.post("/codes/new", data=body + b"&csrf_token=" + token.encode(),
                         content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 400
    assert "The form&#39;s text is not valid UTF-8." in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Code)) == 0
    # A "%" typed by a person arrives escaped and is kept as typed.
    typed = client.post("/codes/new", data=b"title=100%25+open&summary=x&language=en&csrf_token=" + token.encode(),
                        content_type="application/x-www-form-urlencoded")
    assert typed.status_code == 302
    assert db.session.scalar(select(Code.title)) == "100% open"


@pytest.mark.parametrize("query", [b"q=%FF", b"q=%C3%28", b"q=ok&other=%FE", b"q=\xff\xfe"])  # the last raw
def test_a_query_that_is_not_utf8_is_refused_not_changed(app, client, make_user, sign_in, query):
    """Werkzeug kept ``%FF`` as the literal text "%FF": a search looked for it, quietly."""
    sign_in(make_user(office=True))
    raw = {"QUERY_STRING": query.decode("latin-1")}  # as a WSGI server hands over the bytes it read
    page = client.get("/search", environ_overrides=raw)
    assert page.status_code == 400
    assert "The address&#39;s query is not valid UTF-8." in page.get_data(as_text=True)
    api = client.get("/api/v1/codes", environ_overrides=raw)
    assert api.status_code == 400 and api.json == {"error": "The address's query is not valid UTF-8."}
    # A "%" typed into the search box arrives escaped and is searched as typed; so is any language.
    for typed in ("q=100%25", "q=zg%C5%82oszenie"):
        assert client.get(f"/search?{typed}").status_code == 200
