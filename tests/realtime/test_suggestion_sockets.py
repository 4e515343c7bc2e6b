"""Suggestion mode over real Socket.IO clients: a reviewer's socket may create and withdraw its own
suggestions, never change the text (a crafted update is refused and nothing is stored), nor touch
another person's suggestion; the server knows who sends, whatever the update claims."""
from __future__ import annotations

from sqlalchemy import func, select

from codedraft.accounts import operations as accounts
from codedraft.codes.models import Clause, Role
from codedraft.collab.core import SUGGEST_DELETE, SUGGEST_INSERT
from codedraft.collab.models import ClauseUpdate
from codedraft.extensions import db
from tests.realtime.conftest import stored_text
from tests.support.live import wait_for

SEED = "Seed text."


def _rows(app, clause_id: int) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(ClauseUpdate)
                                  .where(ClauseUpdate.clause_id == clause_id))
        db.session.remove()
    return int(count or 0)


def _body(app, clause_id: int) -> str:
    with app.app_context():
        body = db.session.get(Clause, clause_id).body
        db.session.remove()
    return body


def _joined(stage, who: str):
    client = stage.client(who)
    ack = client.join(stage.clause.uid)
    assert ack["ok"], ack
    assert client.synced.wait(5)
    return client, ack


def _refused(client) -> list[dict]:
    return [a for a in client.acks if not a["ok"]]


def test_the_join_ack_says_who_may_only_suggest(stage):
    expected = {"chair": (False, False), "member": (False, False), "reviewer": (True, True),
                "observer": (True, False)}
    for who, (readonly, suggest_only) in expected.items():
        _client, ack = _joined(stage, who)
        assert (ack["readonly"], ack["suggest_only"]) == (readonly, suggest_only), who
        assert ack["user"]["id"] == stage.people[who].id


def test_a_reviewer_cannot_change_the_text_with_a_crafted_update(app, stage):
    chair = stage.editor("chair")
    reviewer, _ack = _joined(stage, "reviewer")
    rows = _rows(app, stage.clause.id)
    # Plain text, and text marked as the chair's suggestion (the server knows who is sending).
    with reviewer.editing() as body:
        body.insert(0, "Sneaky ", {SUGGEST_INSERT: {"id": "x1", "by": stage.people["chair"].id}})
    wait_for(lambda: _refused(reviewer), message="refusal")
    assert _refused(reviewer)[0]["error"] == "you may only suggest text, marked as your suggestion"
    deleter, _ack = _joined(stage, "reviewer")
    deleter.delete(0, 5)
    wait_for(lambda: _refused(deleter), message="refusal of a deletion")
    assert "your own suggested text" in _refused(deleter)[0]["error"]
    assert stored_text(app, stage.clause.id) == _body(app, stage.clause.id) == SEED
    assert _rows(app, stage.clause.id) == rows  # nothing stored
    assert chair.value() == SEED


def test_a_reviewer_creates_and_withdraws_their_own_suggestions(app, stage):
    chair = stage.editor("chair")
    reviewer, _ack = _joined(stage, "reviewer")
    me = {"id": "r1", "by": stage.people["reviewer"].id}
    with reviewer.editing() as body:
        body.insert(0, "Proposed ", {SUGGEST_INSERT: me})
    with reviewer.editing() as body:
        body.format(len("Proposed Seed "), len("Proposed Seed text"), {SUGGEST_DELETE: {**me, "id": "r2"}})
    wait_for(lambda: len(reviewer.acks) >= 2, message="acks")
    assert _refused(reviewer) == []
    # Everyone sees the suggestion live; the clause's accepted text is unchanged.
    wait_for(lambda: chair.value() == "Proposed Seed text.", message="the chair sees it")
    wait_for(lambda: "suggestion_delete" in str(chair.text.diff()), message="the chair sees the deletion mark")
    assert stored_text(app, stage.clause.id) == _body(app, stage.clause.id) == SEED
    # The reviewer withdraws both: deletes the inserted words, clears the mark.
    with reviewer.editing() as body:
        del body[0:len("Proposed ")]
        body.format(0, len("Seed text."), {SUGGEST_DELETE: None})
    wait_for(lambda: len(reviewer.acks) >= 3, message="withdrawal acknowledged")
    assert _refused(reviewer) == []
    wait_for(lambda: chair.value() == SEED and "suggestion" not in str(chair.text.diff()), message="withdrawn")
    assert stored_text(app, stage.clause.id) == SEED


def test_a_reviewer_cannot_touch_another_reviewers_suggestion(app, stage):
    stage.editor("chair")
    first, _ack = _joined(stage, "reviewer")
    with first.editing() as body:
        body.insert(0, "First ", {SUGGEST_INSERT: {"id": "f1", "by": stage.people["reviewer"].id}})
    wait_for(lambda: len(first.acks) >= 1, message="ack")
    assert _refused(first) == []
    # A second reviewer: the observer, made a reviewer.
    with app.app_context():
        accounts.grant_role(db.session.merge(stage.people["observer"]), db.session.merge(stage.code), Role.reviewer)
        db.session.commit()
    second, ack = _joined(stage, "observer")
    assert ack["suggest_only"] is True
    wait_for(lambda: second.value() == "First Seed text.", message="second sees the suggestion")
    with second.editing() as body:
        del body[0:len("First ")]
    wait_for(lambda: _refused(second), message="refusal")
    assert "own suggested text" in _refused(second)[0]["error"]
    assert "suggestion" in str(first.text.diff())
    assert stored_text(app, stage.clause.id) == SEED


def test_an_observer_may_not_suggest(app, stage):
    observer, ack = _joined(stage, "observer")
    assert ack["suggest_only"] is False
    with observer.editing() as body:
        body.insert(0, "Mine ", {SUGGEST_INSERT: {"id": "o1", "by": stage.people["observer"].id}})
    wait_for(lambda: _refused(observer), message="refusal")
    assert _refused(observer)[0]["error"] == "you may read this clause but not edit it"
    assert stored_text(app, stage.clause.id) == SEED
