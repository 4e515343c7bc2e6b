"""Importing through /api/v1, each response checked against the OpenAPI document."""
from __future__ import annotations

import io

from sqlalchemy import func, select

from codedraft.accounts.operations import create_api_token
from codedraft.codes.models import Code
from codedraft.codes.operations import live_clauses
from codedraft.extensions import db
from tests.importer.test_import_views import NEXT, SMALL
from tests.test_api import auth, check, spec  # noqa: F401  (the spec fixture)


def _tokens(make_user, make_code):
    office = make_user(office=True)
    code = make_code("Someone else's")
    chair = make_user("chair", code)
    tokens = {"office": create_api_token(office, "t")[1], "chair": create_api_token(chair, "t")[1]}
    db.session.commit()
    return tokens, code


def _post_file(client, token: str, data: bytes, name: str, code: str | None = None):
    form = {"file": (io.BytesIO(data), name)}
    if code:
        form["code"] = code
    return client.post("/api/v1/imports", data=form, headers=auth(token), content_type="multipart/form-data")


def test_upload_preview_and_apply_through_the_api(client, spec, make_user, make_code):  # noqa: F811
    tokens, _ = _tokens(make_user, make_code)
    created = _post_file(client, tokens["office"], SMALL.encode(), "small.md")
    check(spec, "/imports", "post", created)
    assert created.status_code == 201 and created.json["counts"] == {"commitment": 2}
    assert created.json["chapters"][0]["clauses"][0]["notes"] == ["Summary of changes"]
    token = created.json["token"]
    check(spec, "/imports/{token}", "get", client.get(f"/api/v1/imports/{token}", headers=auth(tokens["office"])))
    applied = client.post(f"/api/v1/imports/{token}/apply", headers=auth(tokens["office"]),
                          json={"title": "Small Code", "draft_name": "First", "groups": {"chapter:part-one": "WG 1"}})
    check(spec, "/imports/{token}/apply", "post", applied)
    assert applied.status_code == 200 and applied.json["draft"] == 1
    slug = applied.json["code"]["slug"]
    again = client.post(f"/api/v1/imports/{token}/apply", headers=auth(tokens["office"]), json={})
    check(spec, "/imports/{token}/apply", "post", again)
    assert again.status_code == 409
    # The next version: matches with reason and confidence, one corrected.
    second = _post_file(client, tokens["office"], NEXT.encode(), "next.md", code=slug)
    check(spec, "/imports", "post", second)
    matches = {m["key"]: m for m in second.json["matches"]}
    assert matches["commitment:1"]["how"] == "number+title" and matches["commitment:1"]["confidence"] > 0
    bad = client.post(f"/api/v1/imports/{second.json['token']}/apply", headers=auth(tokens["office"]),
                      json={"corrections": {"commitment:3": matches["commitment:1"]["old_uid"]}})
    check(spec, "/imports/{token}/apply", "post", bad)
    assert bad.status_code == 400
    good = client.post(f"/api/v1/imports/{second.json['token']}/apply", headers=auth(tokens["office"]),
                       json={"corrections": {"commitment:3": None, "commitment:2": matches["commitment:2"]["old_uid"]}})
    assert good.status_code == 200, good.json
    code = db.session.scalar(select(Code).where(Code.slug == slug))
    assert len(live_clauses(code)) == 3


def test_api_refusals(client, spec, make_user, make_code):  # noqa: F811
    tokens, code = _tokens(make_user, make_code)
    refused = _post_file(client, tokens["office"], b"\x89PNG\r\n\x1a\n\0\0", "picture.md")
    check(spec, "/imports", "post", refused)
    assert refused.status_code == 400 and "not a text file" in refused.json["error"]
    forbidden = _post_file(client, tokens["chair"], SMALL.encode(), "small.md", code=code.slug)
    check(spec, "/imports", "post", forbidden)
    assert forbidden.status_code == 403
    assert client.get("/api/v1/imports/nope", headers=auth(tokens["office"])).status_code == 404
    assert client.post("/api/v1/imports", data={}).status_code == 401
    from codedraft.importer.models import ImportUpload
    assert db.session.scalar(select(func.count()).select_from(ImportUpload)) == 0
