"""Carrying open comments from draft 2 to draft 3 of the real GPAI Code of Practice."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from codedraft.codes.models import Clause
from codedraft.collab.store import store_for
from codedraft.extensions import db
from codedraft.feedback import anchors
from codedraft.feedback import operations as ops
from codedraft.feedback.models import Comment
from codedraft.importer.operations import import_document
from codedraft.timeutil import utcnow
from tests.conftest import shared_file
from tests.support.editing import set_live_text


def test_comments_on_draft_2_are_carried_to_draft_3(app, make_user):
    draft2 = shared_file("corpus", "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8")
    draft3 = shared_file("corpus", "gpai-cop-draft3-2025-03.md").read_text(encoding="utf-8")
    report = import_document(draft2, draft_name="Second Draft")
    code, second = report.code, report.draft
    ops.open_round(code, second, utcnow() + timedelta(days=30))
    reviewer = make_user("reviewer", code, category="civil-society")
    db.session.commit()
    store = store_for(app)
    clauses = [c for c in db.session.scalars(select(Clause).where(Clause.code_id == code.id).order_by(Clause.id))
               if len(c.body) > 300]
    assert len(clauses) > 20
    quotes: dict[int, str] = {}
    for clause in clauses[:25]:
        words = clause.body[120:200]
        start = clause.body.index(words)
        anchor = ops.anchor_selection(store, clause, words, start, start + len(words), "codepoint")
        comment = ops.post_comment(code, clause, reviewer, "On this passage.", anchor=anchor)
        quotes[comment.id] = words
        db.session.commit()
    whole = ops.post_comment(code, clauses[0], reviewer, "On the whole clause.")
    invented = ops.post_comment(code, clauses[1], reviewer, "Closed already.")
    invented.status = "accepted"  # not open: stays behind
    db.session.commit()
    # Someone co-edits one clause before the next draft: its anchor follows the edit.
    edited = clauses[2]
    set_live_text(store, edited, "Inserted by a chair. " + edited.body, user_id=None, origin="test")
    db.session.commit()

    third = import_document(draft3, code=code, draft_name="Third Draft").draft
    db.session.commit()
    # Publishing the third draft carried the open comments already (the after_publish hook).
    assert ops.carry_comments_forward(code, second, third).total == 0
    from collections import Counter
    from types import SimpleNamespace

    moved = [c for c in db.session.scalars(select(Comment)) if c.draft_id == third.id]
    states = Counter(c.anchor_state for c in moved)
    carried = SimpleNamespace(total=len(moved), whole_clause=states[None], reattached=states["reattached"],
                              changed=states["changed"], orphaned=states["orphaned"])
    print(f"\ncarry draft 2 -> draft 3: {dict(states)}")

    assert carried.total == len(quotes) + 1
    assert carried.whole_clause == 1
    assert carried.reattached > 0 and carried.orphaned > 0 and carried.changed + carried.orphaned > 0
    db.session.expire_all()
    comments = {c.id: c for c in db.session.scalars(select(Comment))}
    assert comments[whole.id].draft_id == third.id
    assert comments[invented.id].draft_id == second.id
    from codedraft.drafts.models import DraftClause

    third_uids = set(db.session.scalars(select(DraftClause.clause_uid).where(DraftClause.draft_id == third.id)))
    orphaned_in_place = 0
    for comment_id, quote in quotes.items():
        comment = comments[comment_id]
        assert comment.draft_id == third.id
        assert comment.quote == quote  # the words commented on are always kept
        clause = db.session.get(Clause, comment.clause_id)
        if comment.anchor_state == "orphaned":
            assert comment.sticky_start is None and comment.anchor_start is None
            in_third = clause.uid in third_uids and not clause.withdrawn
            orphaned_in_place += in_third
            # Never orphaned while the very words are still in the clause's new text.
            assert not in_third or quote not in clause.body
            continue
        opened = store.open(clause)
        with opened.lock:
            span = anchors.resolve_passage(opened.doc, comment.sticky_start, comment.sticky_end)
            text = opened.doc.text
        assert span is not None
        now = text[span[0]:span[1]]
        if comment.anchor_state == "reattached":
            assert now == quote, (comment_id, now, quote)
        else:
            assert comment.anchor_state == "changed"
            assert now != quote and anchors.similarity(quote, now) >= anchors.MIN_SIMILARITY
    print(f"orphaned because the clause left the code: {carried.orphaned - orphaned_in_place}; "
          f"because the passage was rewritten: {orphaned_in_place}")
    # Carrying again changes nothing: every open comment is on draft 3 already.
    again = ops.carry_comments_forward(code, second, third)
    assert again.total == 0
