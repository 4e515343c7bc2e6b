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


# --- structure editing ---------------------------------------------------------------------

def _small_code(make_code):
    from codedraft.importer.operations import import_document

    text = ("# Code\n\n## Part A\n\n### Commitment 1. One\n\nOne.\n\n#### Measure 1.1. First\n\nA.\n\n"
            "#### Measure 1.2. Second\n\nB.\n\n### Commitment 2. Two\n\nTwo.\n\n## Part B\n\n"
            "### Commitment 3. Three\n\nThree.\n")
    report = import_document(text)
    db.session.flush()
    return report.code


def _live(code):
    return [(c.kind, c.number, c.title) for c in codes.live_clauses(code)]


def test_structure_changes_are_recorded_and_undone(app, make_code, make_user):
    from codedraft.codes import structure

    code = _small_code(make_code)
    office = make_user(office=True)
    clauses = {c.number: c for c in codes.live_clauses(code)}
    change = structure.retitle(clauses["2"], "Two, retitled", office)
    assert change.user_id == office.id and "Two, retitled" in structure.describe(change)
    structure.renumber(clauses["2"], "II", office)
    assert clauses["2"].number_manual
    # Moving a commitment moves its measures; moving up and undoing restore the reading order.
    before = _live(code)
    move = structure.move(clauses["2"], office, step=-1)
    assert [n for _, n, _ in _live(code)][:2] == ["II", "1"]
    structure.undo(move, office)
    assert _live(code) == before
    moved = structure.move(clauses["3"], office, chapter=clauses["1"].chapter)
    assert clauses["3"].chapter_id == clauses["1"].chapter_id and _live(code)[-1][1] == "3"
    structure.undo(moved, office)
    assert clauses["3"].chapter_id != clauses["1"].chapter_id
    withdrawal = structure.withdraw(clauses["1.2"], office)
    assert "Second" not in [t for _, _, t in _live(code)]
    structure.undo(withdrawal, office)
    assert not clauses["1.2"].withdrawn
    rename = structure.rename_code(code, "Third Draft of the Code", office)
    structure.rename_chapter(clauses["1"].chapter, "Transparency", office)
    assert code.title == "Third Draft of the Code" and clauses["1"].chapter.title == "Transparency"
    structure.retitle(clauses["2"], "Changed again", office)
    structure.undo(rename, office)
    assert code.title == "Code"
    import pytest
    with pytest.raises(codes.CodeError):
        structure.undo(change, office)  # the title was changed again since


def test_automatic_numbering_per_kind_keeps_manual_numbers(app, make_code, make_user):
    from codedraft.codes import structure

    code = _small_code(make_code)
    clauses = {c.number: c for c in codes.live_clauses(code)}
    structure.renumber(clauses["1"], "I.1", None)
    for clause, number in ((clauses["2"], "7"), (clauses["1.2"], "9.9")):
        clause.number = number  # stale numbers, as after moves
    structure.renumber_automatically(code, None)
    assert [n for _, n, _ in _live(code)] == ["I.1", "I.1.1", "I.1.2", "2", "3"]


def test_a_published_draft_keeps_its_titles_numbers_and_code_title(app, make_code, make_user):
    from codedraft.codes import structure

    code = _small_code(make_code)
    first = drafts.publish_draft(code, "Draft 1")
    clause = next(c for c in codes.live_clauses(code) if c.number == "2")
    structure.rename_code(code, "Renamed code", None)
    structure.retitle(clause, "New title", None)
    structure.renumber(clause, "5", None)
    structure.withdraw(next(c for c in codes.live_clauses(code) if c.number == "3"), None)
    second = drafts.publish_draft(code, "Draft 2")
    old = next(v for v in first.clauses if v.clause_uid == clause.uid)
    assert (old.number, old.title, first.code_title) == ("2", "Two", "Code")
    new = next(v for v in second.clauses if v.clause_uid == clause.uid)
    assert (new.number, new.title, second.code_title) == ("5", "New title", "Renamed code")
    assert len(second.clauses) == len(first.clauses) - 1
    # The redline between the two drafts shows the renumbered, retitled and withdrawn clauses.
    from codedraft.exports.builders import document_from_draft
    from codedraft.exports.compare import compare_documents

    comparison = compare_documents(document_from_draft(code, first), document_from_draft(code, second))
    changed = {c.uid: c for c in comparison.clauses}
    assert changed[clause.uid].renumbered and changed[clause.uid].retitled
    assert [c.current.title for c in comparison.removed] == ["Three"]


def test_structure_views_the_office_and_group_chairs_only(app, client, make_code, make_user):
    from tests.conftest import csrf_token, login

    code = _small_code(make_code)
    group = codes.add_working_group(code, "WG 1")
    chapters = list(code.chapters)
    codes.assign_working_group(chapters[0], group)
    chair = make_user("chair", code, group=group)
    reviewer = make_user("reviewer", code)
    db.session.commit()
    clause = next(c for c in codes.live_clauses(code) if c.number == "2")
    other = next(c for c in codes.live_clauses(code) if c.number == "3")
    login(client, reviewer.email)
    token = csrf_token(client, f"/codes/{code.slug}")
    url = f"/codes/{code.slug}/clauses/{clause.uid}/structure"
    assert client.post(url, data={"csrf_token": token, "action": "withdraw"}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    login(client, chair.email)
    token = csrf_token(client, f"/codes/{code.slug}")
    page = client.get(f"/codes/{code.slug}/clauses/{clause.uid}").get_data(as_text=True)
    assert 'id="structure-heading"' in page
    response = client.post(url, data={"csrf_token": token, "action": "label", "title": "Renamed", "number": "2a"})
    assert response.status_code == 302
    # Not their group's chapter: no structure rights there.
    assert client.post(f"/codes/{code.slug}/clauses/{other.uid}/structure",
                       data={"csrf_token": token, "action": "withdraw"}).status_code == 403
    assert client.post(f"/codes/{code.slug}/rename", data={"csrf_token": token, "title": "X"}).status_code == 403
    db.session.expire_all()
    clause = db.session.get(Clause, clause.id)
    assert (clause.title, clause.number, clause.number_manual) == ("Renamed", "2a", True)
    page = client.get(f"/codes/{code.slug}/clauses/{clause.uid}").get_data(as_text=True)
    assert "Changes to its structure" in page and "Renamed" in page and "Undo" in page


def test_a_second_working_group_of_the_same_name_is_refused_by_name(app, client, make_code, make_user, sign_in):
    from tests.conftest import csrf_token

    code = make_code()
    codes.add_working_group(code, "Transparency")
    sign_in(make_user(office=True))
    response = client.post(f"/codes/{code.slug}/working-groups", follow_redirects=True,
                           data={"name": " Transparency ", "csrf_token": csrf_token(client, "/")})
    assert response.status_code == 200
    assert "already has a working group called “Transparency”" in response.get_data(as_text=True)


def test_a_write_that_clashes_with_stored_data_is_a_409_and_saves_nothing(app, client, make_code):
    # The safety net under every operation's own checks: a uniqueness the operation did not check
    # (two people at once) rolls back and tells the person, never a 500.
    from codedraft.codes.models import WorkingGroup

    code = make_code()
    codes.add_working_group(code, "Safety")
    db.session.commit()

    @app.route("/test-clash")
    def clash() -> str:
        db.session.add(WorkingGroup(code_id=code.id, name="Safety"))
        db.session.commit()
        return "saved"

    response = client.get("/test-clash")
    assert response.status_code == 409
    assert "nothing was saved" in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(WorkingGroup)) == 1
