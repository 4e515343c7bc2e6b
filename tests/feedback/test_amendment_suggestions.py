"""Amendments are suggestions too (one model, one list): proposing one shows its words in the live
text as its author's suggestion; deciding it either way, as an amendment or as a suggestion in
the editor's list, decides both. Real corpus text."""
from __future__ import annotations

from sqlalchemy import select

from codedraft.collab.store import store_for
from codedraft.extensions import db
from codedraft.feedback.models import Comment
from tests.conftest import csrf_token, shared_file
from tests.support.editing import set_live_text


def _real_paragraph() -> str:
    corpus = shared_file("corpus", "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8")
    start = corpus.index("quality standards of scientific peer review in machine learning")
    return corpus[start: corpus.index("\n", start)]


def _propose(scene, paragraph: str) -> Comment:
    store = store_for(scene.app)
    set_live_text(store, scene.clause, paragraph, user_id=None, origin="test")
    db.session.commit()
    rita = scene.client("reviewer")
    response = scene.post(rita, scene.feedback_url, body="Name the data.", quote=" and the natural",
                          unit="reading", replacement="training and the natural")
    assert response.status_code == 303
    return db.session.scalars(select(Comment)).one()


def _suggestions_url(scene) -> str:
    return f"/codes/{scene.code.slug}/clauses/{scene.clause.uid}/suggestions"


def test_a_proposed_amendment_is_a_suggestion_in_the_live_text(scene):
    paragraph = _real_paragraph()
    comment = _propose(scene, paragraph)
    document = store_for(scene.app).open(scene.clause).doc
    assert document.text == paragraph  # the accepted text is unchanged
    [suggestion] = document.suggestions()
    assert suggestion.id == f"amendment-{comment.id}" and suggestion.by == scene.people["reviewer"].id
    assert "training" in suggestion.inserted
    listed = scene.client("chair").get(_suggestions_url(scene)).json["suggestions"]
    assert [(item["id"], item["author"]) for item in listed] == [(f"amendment-{comment.id}", "Rita Reviewer")]


def test_accepting_the_suggestion_in_the_list_accepts_the_amendment(scene):
    paragraph = _real_paragraph()
    comment = _propose(scene, paragraph)
    chris = scene.client("chair")
    token = csrf_token(chris, "/")
    answer = chris.post(f"{_suggestions_url(scene)}/decide", data={"csrf_token": token,
                                                                   "accept": f"amendment-{comment.id}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    text = store_for(scene.app).open(scene.clause).doc.text
    assert text == paragraph.replace("machine learning and the natural", "machine learning training and the natural")
    db.session.expire_all()
    assert db.session.get(Comment, comment.id).amendment.state == "accepted"


def test_accepting_the_amendment_settles_its_suggestion(scene):
    paragraph = _real_paragraph()
    comment = _propose(scene, paragraph)
    chris = scene.client("chair")
    applied = scene.post(chris, f"{scene.thread_url(comment.id)}/amendment/accept", reason="Clearer.")
    assert applied.status_code == 303
    document = store_for(scene.app).open(scene.clause).doc
    assert document.suggestions() == []
    assert document.text == document.raw_text == paragraph.replace(
        "machine learning and the natural", "machine learning training and the natural")


def test_rejecting_the_amendment_removes_its_suggestion(scene):
    paragraph = _real_paragraph()
    comment = _propose(scene, paragraph)
    chris = scene.client("chair")
    rejected = scene.post(chris, f"{scene.thread_url(comment.id)}/amendment/reject", reason="Out of scope.")
    assert rejected.status_code == 303
    document = store_for(scene.app).open(scene.clause).doc
    assert document.suggestions() == [] and document.raw_text == paragraph
    db.session.expire_all()
    assert db.session.get(Comment, comment.id).amendment.state == "rejected"


def test_a_selection_in_the_editor_is_anchored_in_the_accepted_text(scene):
    """The editor shows pending suggestions; a comment on a selection there anchors the same
    words in the accepted text (what every other page and export reads)."""
    paragraph = _real_paragraph()
    _propose(scene, paragraph)
    document = store_for(scene.app).open(scene.clause).doc
    raw = document.raw_text
    assert raw != paragraph
    # After the suggestion, so its offsets differ between the raw and the accepted text.
    quote = "and social sciences"
    start = raw.index(quote)
    sam = scene.client("second_reviewer")
    response = scene.post(sam, scene.feedback_url, body="Which sciences?", quote=quote, unit="utf16",
                          start=str(len(raw[:start].encode("utf-16-le")) // 2),
                          end=str(len(raw[:start + len(quote)].encode("utf-16-le")) // 2))
    assert response.status_code == 303
    comment = db.session.scalars(select(Comment).where(Comment.body == "Which sciences?")).one()
    assert comment.quote == quote
    assert paragraph[comment.anchor_start:comment.anchor_end] == quote


def test_rebasing_an_amendment_moves_its_suggestion_to_the_current_words(scene):
    paragraph = _real_paragraph()
    comment = _propose(scene, paragraph)
    store = store_for(scene.app)
    edited = paragraph.replace(" and the natural", " and the empirical")
    set_live_text(store, scene.clause, edited, user_id=None, origin="test")
    db.session.commit()
    chris = scene.client("chair")
    assert scene.post(chris, f"{scene.thread_url(comment.id)}/amendment/rebase").status_code == 303
    document = store.open(scene.clause).doc
    assert document.text == edited
    [suggestion] = document.suggestions()
    assert suggestion.id == f"amendment-{comment.id}"
    # Accepting gives the amendment's words in place of the current ones, nothing left over.
    assert scene.post(chris, f"{scene.thread_url(comment.id)}/amendment/accept").status_code == 303
    document = store.open(scene.clause).doc
    assert document.suggestions() == [] and document.text == document.raw_text
    assert "machine learning training and the natural" in document.text and "empirical" not in document.text
