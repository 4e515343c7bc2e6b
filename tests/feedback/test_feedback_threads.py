"""Threads: comments on a clause or a passage, replies, support once each, statuses."""
from __future__ import annotations

from sqlalchemy import select

from codedraft.extensions import db
from codedraft.feedback.models import Comment, Reply, Support


def _comments() -> list[Comment]:
    db.session.expire_all()
    return list(db.session.scalars(select(Comment).order_by(Comment.id)))


def test_a_reviewer_comments_on_the_whole_clause_and_on_a_passage(scene):
    rita = scene.client("reviewer")
    response = scene.post(rita, scene.feedback_url, body="Too *vague*.")
    assert response.status_code == 303
    quote = "summary 📄 of the training data"
    response = scene.post(rita, scene.feedback_url, body="Which data?", quote=quote, unit="reading")
    assert response.status_code == 303
    whole, passage = _comments()
    assert whole.quote is None and whole.category == "civil-society" and whole.organisation == "Org civil-society"
    assert passage.quote == quote
    assert scene.clause.body[passage.anchor_start:passage.anchor_end] == quote
    assert passage.sticky_start and passage.sticky_end and passage.anchor_state == "live"
    page = rita.get(scene.feedback_url).get_data(as_text=True)
    assert "<em>vague</em>" in page and "Which data?" in page
    assert 'data-passage="summary 📄 of the training data"' in page
    # The clause page shows the same threads in its panel.
    clause_page = rita.get(f"/codes/{scene.code.slug}/clauses/{scene.clause.uid}").get_data(as_text=True)
    assert "Which data?" in clause_page and "fb-panel" in clause_page


def test_an_individual_without_organisation_is_labelled_individual(scene):
    ivy = scene.client("individual")
    scene.post(ivy, scene.feedback_url, body="As an expert.")
    (comment,) = _comments()
    assert comment.category == "individual" and comment.organisation == ""


def test_replies_thread_and_notify_the_author(scene):
    rita, sam = scene.client("reviewer"), scene.client("second_reviewer")
    scene.post(rita, scene.feedback_url, body="Start.")
    (comment,) = _comments()
    response = scene.post(sam, f"{scene.thread_url(comment.id)}/replies", body="I agree, **strongly**.")
    assert response.status_code == 303
    replies = list(db.session.scalars(select(Reply)))
    assert [r.body for r in replies] == ["I agree, **strongly**."]
    assert replies[0].category == "academia"
    assert _comments()[0].reply_count == 1
    page = rita.get(scene.thread_url(comment.id)).get_data(as_text=True)
    assert "<strong>strongly</strong>" in page
    assert "replied to your comment" in rita.get("/notifications").get_data(as_text=True)


def test_support_counts_once_per_person_and_not_for_oneself(scene):
    rita, sam = scene.client("reviewer"), scene.client("second_reviewer")
    scene.post(rita, scene.feedback_url, body="Support me.")
    (comment,) = _comments()
    for _ in range(3):
        assert scene.post(sam, f"{scene.thread_url(comment.id)}/support").status_code == 303
    own = scene.post(rita, f"{scene.thread_url(comment.id)}/support")
    assert own.status_code == 303
    assert db.session.scalar(select(Support.id).where(Support.user_id == scene.people["reviewer"].id)) is None
    assert len(list(db.session.scalars(select(Support)))) == 1
    assert _comments()[0].support_count == 1


def test_json_answers_for_script_posts(scene):
    rita = scene.client("reviewer")
    from tests.conftest import csrf_token

    token = csrf_token(rita, scene.feedback_url)
    response = rita.post(scene.feedback_url, data={"body": "", "csrf_token": token},
                         headers={"X-Requested-With": "fetch"})
    assert response.status_code == 400 and response.get_json()["ok"] is False
    response = rita.post(scene.feedback_url, data={"body": "Fine.", "csrf_token": token},
                         headers={"X-Requested-With": "fetch"})
    assert response.get_json()["ok"] is True
    fragment = rita.get(f"{scene.feedback_url}?fragment=1").get_data(as_text=True)
    assert "Fine." in fragment and "<html" not in fragment


def test_author_withdraws_and_chair_sets_status(scene):
    rita, chris = scene.client("reviewer"), scene.client("chair")
    scene.post(rita, scene.feedback_url, body="Withdraw me.")
    scene.post(rita, scene.feedback_url, body="Address me.")
    first, second = _comments()
    assert scene.post(chris, f"{scene.thread_url(first.id)}/withdraw").status_code == 403
    scene.post(rita, f"{scene.thread_url(first.id)}/withdraw")
    assert scene.post(rita, f"{scene.thread_url(second.id)}/status", status="accepted").status_code == 403
    scene.post(chris, f"{scene.thread_url(second.id)}/status", status="addressed")
    assert [c.status for c in _comments()] == ["withdrawn", "addressed"]


def test_the_api_lists_visible_comments_and_matches_its_schema(scene, app):
    import jsonschema

    from codedraft.accounts.operations import create_api_token
    from codedraft.api.openapi import openapi_document

    rita = scene.client("reviewer")
    scene.post(rita, scene.feedback_url, body="Via the API.", quote="They shall keep it", unit="reading")
    _token_row, token = create_api_token(scene.people["second_reviewer"], "t")
    _row, outsider = create_api_token(scene.people["outsider"], "t")
    db.session.commit()
    client = app.test_client()
    path = f"/api/v1/codes/{scene.code.slug}/clauses/{scene.clause.uid}/comments"
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    spec = openapi_document()
    schema = spec["paths"]["/codes/{slug}/clauses/{uid}/comments"]["get"]["responses"]["200"]
    jsonschema.validate(response.json, {**schema["content"]["application/json"]["schema"],
                                        "components": spec["components"]})
    assert [c["quote"] for c in response.json["comments"]] == ["They shall keep it"]
    assert client.get(path, headers={"Authorization": f"Bearer {outsider}"}).status_code == 404
    assert client.get(path).status_code == 401
