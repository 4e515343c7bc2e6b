"""The JSON API, checked response by response against its own OpenAPI document."""
from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest

from codedraft.accounts.operations import create_api_token
from codedraft.codes import operations as codes
from codedraft.drafts.operations import publish_draft
from codedraft.extensions import db


@pytest.fixture
def spec(client) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.1")
    return document


def check(spec: dict[str, Any], path: str, method: str, response) -> None:
    """The response's status is documented for this operation and its body matches the schema."""
    operation = spec["paths"][path][method]
    documented = operation["responses"]
    assert str(response.status_code) in documented, f"{method.upper()} {path} -> undocumented {response.status_code}"
    schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(response.json, {**schema, "components": spec["components"]},
                        cls=jsonschema.Draft202012Validator)


@pytest.fixture
def setting(make_code, make_user):
    code = make_code("API Code")
    chapter = codes.add_chapter(code, "Chapter one")
    commitment = codes.add_clause(chapter, kind="commitment", number="1", title="C", body="**Bold** text")
    codes.add_clause(chapter, kind="measure", number="1.1", title="M", body="Body", parent=commitment)
    publish_draft(code, "First Draft")
    reviewer = make_user("reviewer", code)
    office = make_user(office=True)
    outsider = make_user()
    tokens = {name: create_api_token(user, name)[1] for name, user in
              (("reviewer", reviewer), ("office", office), ("outsider", outsider))}
    db.session.commit()
    return code, commitment, tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_reading_matches_the_document(client, spec, setting):
    code, commitment, tokens = setting
    headers = auth(tokens["reviewer"])
    listing = client.get("/api/v1/codes", headers=headers)
    check(spec, "/codes", "get", listing)
    assert [c["slug"] for c in listing.json["codes"]] == [code.slug]
    check(spec, "/codes/{slug}", "get", client.get(f"/api/v1/codes/{code.slug}", headers=headers))
    clauses = client.get(f"/api/v1/codes/{code.slug}/clauses", headers=headers)
    check(spec, "/codes/{slug}/clauses", "get", clauses)
    assert clauses.json["clauses"][1]["parent_uid"] == commitment.uid
    one = client.get(f"/api/v1/codes/{code.slug}/clauses/{commitment.uid}", headers=headers)
    check(spec, "/codes/{slug}/clauses/{uid}", "get", one)
    assert one.json["body_html"].strip() == "<p><strong>Bold</strong> text</p>"
    assert one.json["history"][0]["name"] == "First Draft"
    check(spec, "/codes/{slug}/drafts", "get", client.get(f"/api/v1/codes/{code.slug}/drafts", headers=headers))
    draft = client.get(f"/api/v1/codes/{code.slug}/drafts/1", headers=headers)
    check(spec, "/codes/{slug}/drafts/{number}", "get", draft)
    assert len(draft.json["clauses"]) == 2


def test_writing_matches_the_document(client, spec, setting):
    code, _, tokens = setting
    created = client.post("/api/v1/codes", json={"title": "Made by API"}, headers=auth(tokens["office"]))
    check(spec, "/codes", "post", created)
    assert created.status_code == 201
    denied = client.post("/api/v1/codes", json={"title": "x"}, headers=auth(tokens["reviewer"]))
    check(spec, "/codes", "post", denied)
    assert denied.status_code == 403
    invalid = client.post("/api/v1/codes", json={"title": 5}, headers=auth(tokens["office"]))
    check(spec, "/codes", "post", invalid)
    assert invalid.status_code == 400
    not_json = client.post("/api/v1/codes", data="nonsense", headers=auth(tokens["office"]))
    assert not_json.status_code == 400
    published = client.post(f"/api/v1/codes/{code.slug}/drafts", json={"name": "Second"},
                            headers=auth(tokens["office"]))
    check(spec, "/codes/{slug}/drafts", "post", published)
    assert published.json["number"] == 2


def test_tokens_are_required_and_cookies_are_not_enough(client, spec, setting):
    unauthenticated = client.get("/api/v1/codes")
    check(spec, "/codes", "get", unauthenticated)
    assert unauthenticated.status_code == 401
    assert client.get("/api/v1/codes", headers=auth("cdt_forged")).status_code == 401


def test_case_27_guessed_ids_get_the_same_404(client, spec, setting):
    code, commitment, tokens = setting
    forbidden = client.get(f"/api/v1/codes/{code.slug}/clauses/{commitment.uid}", headers=auth(tokens["outsider"]))
    missing = client.get("/api/v1/codes/no-such-code/clauses/x", headers=auth(tokens["outsider"]))
    check(spec, "/codes/{slug}/clauses/{uid}", "get", forbidden)
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.json == missing.json
    draft = client.get(f"/api/v1/codes/{code.slug}/drafts/1", headers=auth(tokens["outsider"]))
    assert draft.status_code == 404


def test_every_documented_path_exists(app, spec):
    # Flask's <slug>, <int:number> ... written as OpenAPI's {slug}, {number} ...
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1")}
    for path in spec["paths"]:
        assert "/api/v1" + path in routes
