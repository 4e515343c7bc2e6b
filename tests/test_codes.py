"""Codes, chapters, clauses and drafts: models and operations."""
from __future__ import annotations

from sqlalchemy import select

from codedraft.codes import operations as codes
from codedraft.codes.models import Clause
from codedraft.codes.tree import build_tree
from codedraft.drafts import operations as drafts
from codedraft.drafts.models import DraftClause
from codedraft.extensions import db


def test_slugs_are_unique_and_ascii(make_code):
    first = make_code("Code of Practice: Łódź & Café")
    second = make_code("Code of Practice: Łódź & Café")
    assert first.slug == "code-of-practice-odz-cafe"
    assert second.slug == "code-of-practice-odz-cafe-2"


def test_renumbering_keeps_the_stable_id(make_clause):
    clause = make_clause(number="3")
    uid = clause.uid
    codes.renumber_clause(clause, "II.3")
    db.session.flush()
    assert db.session.scalar(select(Clause).where(Clause.uid == uid)).number == "II.3"


def test_clause_heading_by_kind(make_clause):
    assert make_clause(kind="measure", number="1.2", title="Plain language").heading == "Measure 1.2. Plain language"
    assert make_clause(kind="section", number="", title="Purpose").heading == "Purpose"


def test_clause_tree_nests_measures_under_commitments(make_code):
    code = make_code()
    chapter = codes.add_chapter(code, "Openness")
    commitment = codes.add_clause(chapter, kind="commitment", number="1", title="Cards")
    measure = codes.add_clause(chapter, kind="measure", number="1.1", title="Content", parent=commitment)
    intro = codes.add_clause(chapter, kind="section", title="Purpose", position=-1)
    roots = build_tree(sorted(chapter.clauses, key=lambda c: c.position))
    assert [node.clause for node in roots] == [intro, commitment]
    assert [node.clause for node in roots[1].children] == [measure]


def test_a_published_draft_is_immutable_and_keeps_history(make_code):
    code = make_code()
    chapter = codes.add_chapter(code, "Openness")
    clause = codes.add_clause(chapter, kind="commitment", number="1", title="Cards", body="First words.")
    first = drafts.publish_draft(code, "First Draft")
    codes.set_clause_body(clause, "Second words.")
    codes.renumber_clause(clause, "I.1")
    second = drafts.publish_draft(code, "Second Draft")
    db.session.flush()
    assert (first.number, second.number) == (1, 2)
    history = drafts.clause_history(clause.uid)
    assert [(d.name, v.body, v.number) for d, v in history] == [
        ("First Draft", "First words.", "1"), ("Second Draft", "Second words.", "I.1")]
    frozen = db.session.scalar(select(DraftClause).where(DraftClause.draft_id == first.id))
    assert frozen.body == "First words."


def test_withdrawn_clauses_leave_the_live_text_but_not_old_drafts(make_code):
    code = make_code()
    chapter = codes.add_chapter(code, "A")
    keep = codes.add_clause(chapter, kind="section", title="Keep")
    gone = codes.add_clause(chapter, kind="section", title="Gone")
    draft = drafts.publish_draft(code, "One")
    gone.withdrawn = True
    db.session.flush()
    assert codes.live_clauses(code) == [keep]
    assert [c.title for c in draft.clauses] == ["Keep", "Gone"]
