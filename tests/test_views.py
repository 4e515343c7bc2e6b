"""Reading and administering through the pages, as each role."""
from __future__ import annotations

import pytest

from codedraft.codes import operations as codes
from codedraft.drafts.operations import publish_draft
from codedraft.extensions import db
from tests.conftest import csrf_token


@pytest.fixture
def demo(make_code, make_user):
    code = make_code("Transparency Code", summary="Our summary")
    group = codes.add_working_group(code, "WG Transparency")
    chapter = codes.add_chapter(code, "Transparency", working_group=group)
    commitment = codes.add_clause(chapter, kind="commitment", number="1", title="Documentation",
                                  body="Signatories **commit** to documenting <script>alert(1)</script>.")
    measure = codes.add_clause(chapter, kind="measure", number="1.1", title="Forms", body="Use the form.",
                               parent=commitment)
    publish_draft(code, "First Draft")
    codes.set_clause_body(commitment, "Changed after the draft.")
    db.session.commit()
    return code, commitment, measure


def test_reviewer_reads_code_clause_and_draft(client, demo, make_user, sign_in):
    code, commitment, measure = demo
    sign_in(make_user("reviewer", code))
    overview = client.get(f"/codes/{code.slug}").get_data(as_text=True)
    assert "Commitment 1. Documentation" in overview and "Measure 1.1. Forms" in overview
    assert "WG Transparency" in overview and "First Draft" in overview
    clause = client.get(f"/codes/{code.slug}/clauses/{commitment.uid}").get_data(as_text=True)
    assert "Changed after the draft." in clause
    draft = client.get(f"/codes/{code.slug}/drafts/1").get_data(as_text=True)
    assert "<strong>commit</strong>" in draft and "&lt;script&gt;" in draft and "<script>alert" not in draft
    assert "Changed after the draft." not in draft


def test_index_lists_only_visible_codes(client, demo, make_code, make_user, sign_in):
    code, *_ = demo
    hidden = make_code("Hidden Code")
    sign_in(make_user("observer", code))
    page = client.get("/").get_data(as_text=True)
    assert "Transparency Code" in page and "Hidden Code" not in page
    assert client.get(f"/codes/{hidden.slug}").status_code == 404


def test_case_27_missing_and_forbidden_look_the_same(client, demo, make_code, make_user, sign_in):
    code, commitment, _ = demo
    other = make_code("Other")
    sign_in(make_user("chair", other))
    forbidden = client.get(f"/codes/{code.slug}/clauses/{commitment.uid}")
    missing = client.get(f"/codes/{code.slug}/clauses/0000000000000000")
    assert forbidden.status_code == missing.status_code == 404
    def main_part(response) -> str:
        page = response.get_data(as_text=True)
        return page[page.index("<main"):page.index("</main>")]

    assert main_part(forbidden) == main_part(missing)
    assert client.get(f"/codes/{code.slug}/drafts/1").status_code == 404


def test_reading_requires_sign_in(client, demo):
    code, *_ = demo
    response = client.get(f"/codes/{code.slug}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_office_sets_up_a_code(client, make_user, sign_in):
    office = make_user(office=True)
    person = make_user(email="person@example.test", name="Pat Person")
    db.session.commit()
    sign_in(office)
    token = csrf_token(client, "/")
    response = client.post("/codes/new", data={"title": "New Code", "summary": "S", "csrf_token": token})
    assert response.status_code == 302
    slug = response.headers["Location"].split("/")[2]
    assert client.post(f"/codes/{slug}/working-groups", data={"name": "WG A", "csrf_token": token}).status_code == 302
    settings = client.get(f"/codes/{slug}/settings").get_data(as_text=True)
    assert "WG A" in settings
    from sqlalchemy import select

    from codedraft.codes.models import Code, WorkingGroup

    code = db.session.scalar(select(Code).where(Code.slug == slug))
    group = db.session.scalar(select(WorkingGroup).where(WorkingGroup.code_id == code.id))
    client.post(f"/codes/{slug}/chapters", data={"title": "Copyright", "working_group": group.id, "csrf_token": token})
    client.post(f"/codes/{slug}/people", data={"user_id": person.id, "role": "chair", "working_group": group.id,
                                               "csrf_token": token})
    client.post(f"/codes/{slug}/organisations", data={"user_id": person.id, "organisation": "Uni",
                                                      "category": "academia", "csrf_token": token})
    invite = client.post(f"/codes/{slug}/invitations", data={"email": "x@example.test", "role": "reviewer",
                                                             "csrf_token": token}, follow_redirects=True)
    assert "/invite/" in invite.get_data(as_text=True)
    published = client.post(f"/codes/{slug}/drafts", data={"name": "Zero Draft", "csrf_token": token})
    assert published.status_code == 302
    settings = client.get(f"/codes/{slug}/settings").get_data(as_text=True)
    assert "Pat Person" in settings and "Uni" in settings and "chair" in settings


def test_non_admin_cannot_administer(client, demo, make_user, sign_in):
    code, *_ = demo
    sign_in(make_user("chair", code))
    token = csrf_token(client, "/")
    assert client.get(f"/codes/{code.slug}/settings").status_code == 403
    assert client.post(f"/codes/{code.slug}/drafts", data={"name": "x", "csrf_token": token}).status_code == 403
    assert client.post("/codes/new", data={"title": "x", "csrf_token": token}).status_code == 403


def test_preview_renders_safely(client, demo, make_user, sign_in):
    code, *_ = demo
    sign_in(make_user("member", code))
    token = csrf_token(client, "/")
    response = client.post("/preview", json={"text": "**b** <img src=x onerror=alert(1)>"},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert "<strong>b</strong>" in response.json["html"] and "<img" not in response.json["html"]
    assert client.post("/preview", json={"text": 3}, headers={"X-CSRFToken": token}).status_code == 400


def test_polish_interface(client, demo, make_user, sign_in):
    code, *_ = demo
    sign_in(make_user("reviewer", code))
    token = csrf_token(client, "/")
    client.post("/language", data={"lang": "pl", "next": "/", "csrf_token": token})
    page = client.get(f"/codes/{code.slug}").get_data(as_text=True)
    assert 'lang="pl"' in page and "Rozdziały" in page
