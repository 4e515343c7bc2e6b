"""Live: an amendment accepted while a co-editor keeps typing; feedback events reach the room."""
from __future__ import annotations

import threading
import time

from sqlalchemy import select

from codedraft.collab.core import ClauseDocument
from codedraft.collab.models import ClauseSnapshot, ClauseUpdate
from codedraft.collab.offsets import codepoint_to_utf16
from codedraft.extensions import db
from codedraft.feedback.models import Comment
from tests.conftest import PASSWORD
from tests.feedback.conftest import CLAUSE_TEXT
from tests.support.editing import set_live_text
from tests.support.live import YClient, http_sign_in, serving, wait_for


def _stored_text(app, clause_id: int) -> str:
    with app.app_context():
        snapshot = db.session.get(ClauseSnapshot, clause_id)
        updates = db.session.scalars(select(ClauseUpdate.update).where(ClauseUpdate.clause_id == clause_id)
                                     .order_by(ClauseUpdate.id)).all()
        text = ClauseDocument.from_history(snapshot.state if snapshot else None, updates).text
        db.session.remove()
    return text


def test_accepting_an_amendment_while_another_editor_types_keeps_both(app, scene):
    rita, chris = scene.client("reviewer"), scene.client("chair")
    with serving(app) as base:
        typist = YClient(base, http_sign_in(base, scene.people["chair"].email, PASSWORD)).connect()
        events: list[dict] = []
        typist.sio.on("feedback", events.append, namespace="/collab")
        try:
            assert typist.join(scene.clause.uid)["ok"]
            assert typist.synced.wait(5)
            quote = "summary 📄 of the training data"
            start = CLAUSE_TEXT.index(quote)
            s16, e16 = codepoint_to_utf16(CLAUSE_TEXT, start), codepoint_to_utf16(CLAUSE_TEXT, start + len(quote))
            response = scene.post(rita, scene.feedback_url, body="Say which data.", quote=quote, start=str(s16),
                                  end=str(e16), unit="utf16", replacement="detailed summary 🧾 of all training data")
            assert response.status_code == 303
            wait_for(lambda: any(e["kind"] == "amendment" for e in events), message="amendment event")
            comment_id = db.session.scalar(select(Comment.id))

            typed: list[str] = []
            stop = threading.Event()

            def keep_typing() -> None:
                for n in range(40):
                    if stop.is_set():
                        break
                    piece = f" k{n}✍"
                    typist.insert(len(typist.value()), piece)
                    typed.append(piece)
                    time.sleep(0.01)

            worker = threading.Thread(target=keep_typing)
            worker.start()
            time.sleep(0.1)
            accepted = scene.post(chris, f"{scene.thread_url(comment_id)}/amendment/accept", reason="Agreed.")
            worker.join(10)
            stop.set()
            assert accepted.status_code == 303
            expected_tail = "".join(typed)
            wait_for(lambda: "detailed summary 🧾 of all training data" in typist.value()
                     and typist.value().endswith(expected_tail), message="both edits at the typist")
            wait_for(lambda: _stored_text(app, scene.clause.id) == typist.value(), message="stored = typist")
            final = typist.value()
            assert final.startswith("Signatories shall publish a detailed summary 🧾 of all training data.")
            assert final.endswith(expected_tail) and len(typed) == 40
            db.session.expire_all()
            comment = db.session.get(Comment, comment_id)
            assert comment.status == "accepted" and comment.amendment.state == "accepted"
            assert comment.quote == "detailed summary 🧾 of all training data"
            # The accepted words are now the highlighted passage, resolved in the live text.
            page = rita.get(scene.feedback_url).get_data(as_text=True)
            assert 'data-passage="detailed summary 🧾 of all training data"' in page
            assert any(e == {"clause": scene.clause.uid, "kind": "amendment", "id": comment_id} for e in events)
        finally:
            typist.close()


def test_a_stale_amendment_must_be_rebased_before_it_is_accepted(app, scene):
    from codedraft.collab.store import store_for

    rita, chris = scene.client("reviewer"), scene.client("chair")
    quote = "keep it up to date"
    scene.post(rita, scene.feedback_url, body="Yearly.", quote=quote, unit="reading",
               replacement="update it every year")
    comment_id = db.session.scalar(select(Comment.id))
    store = store_for(app)
    live = store.open(scene.clause).doc.text
    set_live_text(store, scene.clause, live.replace("keep it up to date", "keep it 👍 up to date"), user_id=None,
                       origin="test")
    page = chris.get(scene.feedback_url).get_data(as_text=True)
    assert "The passage changed since this comment." in page and "keep it 👍 up to date" in page
    refused = scene.post(chris, f"{scene.thread_url(comment_id)}/amendment/accept")
    assert refused.status_code == 303
    assert "keep it 👍 up to date" in store.open(scene.clause).doc.text
    scene.post(chris, f"{scene.thread_url(comment_id)}/amendment/rebase")
    db.session.expire_all()
    assert db.session.get(Comment, comment_id).quote == "keep it 👍 up to date"
    scene.post(chris, f"{scene.thread_url(comment_id)}/amendment/accept")
    assert store.open(scene.clause).doc.text.endswith("They shall update it every year.")
    other = scene.post(rita, scene.feedback_url, body="No.", quote="They shall", unit="reading",
                       replacement="They must")
    assert other.status_code == 303
    second = db.session.scalars(select(Comment.id).order_by(Comment.id.desc())).first()
    assert scene.post(rita, f"{scene.thread_url(second)}/amendment/reject", reason="x").status_code == 403
    scene.post(chris, f"{scene.thread_url(second)}/amendment/reject", reason="Keep shall.")
    db.session.expire_all()
    assert db.session.get(Comment, second).amendment.state == "rejected"
    assert "rejected: Keep shall." in rita.get("/notifications").get_data(as_text=True)
