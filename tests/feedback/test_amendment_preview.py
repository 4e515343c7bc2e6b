"""Accepting an amendment is previewed first (the diff and the resulting text, nothing changed),
and the words applied keep the spaces and punctuation at their joins, on real corpus text."""
from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from codedraft.collab.store import store_for
from codedraft.extensions import db
from codedraft.feedback.models import Comment
from tests.conftest import shared_file
from tests.support.editing import set_live_text


def _real_paragraph() -> str:
    corpus = shared_file("corpus", "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8")
    start = corpus.index("quality standards of scientific peer review in machine learning")
    return corpus[start: corpus.index("\n", start)]


def _plain(html: str) -> str:
    html = re.sub(r'<span class="visually-hidden">[^<]*</span>', "", html)
    return unescape(re.sub(r"<[^>]+>", "", html))


def test_preview_then_accept_keeps_the_join(app, scene):
    store = store_for(app)
    paragraph = _real_paragraph()
    set_live_text(store, scene.clause, paragraph, user_id=None, origin="test")
    db.session.commit()
    rita, chris = scene.client("reviewer"), scene.client("chair")
    # The reviewer's selection took in the space before "and"; the words typed do not repeat it.
    response = scene.post(rita, scene.feedback_url, body="Name the data.", quote=" and the natural",
                          unit="reading", replacement="training and the natural")
    assert response.status_code == 303
    comment_id = db.session.scalar(select(Comment.id))
    preview_url = f"{scene.thread_url(comment_id)}/amendment/preview"

    page = chris.get(preview_url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    diff = html.split("data-preview-diff>", 1)[1].split("</div>", 1)[0]
    result = html.split("data-preview-result>", 1)[1].split("</div>", 1)[0]
    assert '<ins class="redline-ins">' in diff and "training" in _plain(diff)
    assert "machine learning training and the natural" in _plain(result)
    assert "learningtraining" not in _plain(result)
    # Nothing changed yet.
    assert store.open(scene.clause).doc.text == paragraph

    # Others may not preview a decision they cannot take.
    assert rita.get(preview_url).status_code == 403

    applied = scene.post(chris, f"{scene.thread_url(comment_id)}/amendment/accept", reason="Clearer.")
    assert applied.status_code == 303
    text = store.open(scene.clause).doc.text
    assert "peer review in machine learning training and the natural and social sciences" in text
    assert text == paragraph.replace("machine learning and the natural", "machine learning training and the natural")
    db.session.expire_all()
    comment = db.session.get(Comment, comment_id)
    assert comment.amendment.state == "accepted" and comment.quote == " training and the natural"
    # Decided: the preview now says so instead of offering it again.
    assert chris.get(preview_url).status_code == 303


def test_preview_of_a_stale_passage_asks_for_a_rebase(app, scene):
    store = store_for(app)
    rita, chris = scene.client("reviewer"), scene.client("chair")
    scene.post(rita, scene.feedback_url, body="Yearly.", quote="keep it up to date", unit="reading",
               replacement="update it every year")
    comment_id = db.session.scalar(select(Comment.id))
    live = store.open(scene.clause).doc.text
    set_live_text(store, scene.clause, live.replace("keep it up", "keep it 👍 up"), user_id=None, origin="test")
    response = chris.get(f"{scene.thread_url(comment_id)}/amendment/preview", follow_redirects=True)
    assert "rebase it first" in response.get_data(as_text=True)
    assert "update it every year" not in store.open(scene.clause).doc.text
