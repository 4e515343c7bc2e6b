"""Importing the real documents into the database, and a later version into the same code."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from codedraft.codes.models import Clause
from codedraft.codes.operations import live_clauses
from codedraft.drafts.models import DraftClause
from codedraft.extensions import db
from codedraft.importer.operations import import_document
from tests.conftest import shared_file
from tests.support.editing import set_live_text


def _import(name: str, **kwargs):
    return import_document(shared_file("corpus", name).read_text(encoding="utf-8"), **kwargs)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpai-cop-draft3-2025-03.md", {"commitment": 18, "measure": 71}),
        ("gpai-cop-draft2-2024-12.md", {"commitment": 21, "measure": 65}),
        ("gpai-cop-final-2025-07-safety-security.md", {"commitment": 10, "measure": 32}),
        ("eu-ai-act-regulation-2024-1689.md", {"article": 113, "annex": 13, "recital": 180}),
    ],
)
def test_every_corpus_file_imports_with_its_structure(app, name, expected):
    progress: list[int] = []
    report = import_document(shared_file("corpus", name).read_text(encoding="utf-8"), draft_name="As published",
                             progress=lambda done, total: progress.append(done))
    db.session.commit()
    for kind, count in expected.items():
        assert report.counts[kind] == count
        stored = db.session.scalar(select(func.count()).select_from(Clause)
                                   .where(Clause.code_id == report.code.id, Clause.kind == kind))
        assert stored == count
    assert progress[-1] == 100 and progress == sorted(progress)
    assert len(report.draft.clauses) == sum(report.counts.values())
    print(report.summary())


def test_measures_nest_under_their_commitments(app):
    report = _import("gpai-cop-draft3-2025-03.md")
    clauses = {c.id: c for c in live_clauses(report.code)}
    measure = next(c for c in clauses.values() if c.kind == "measure" and c.number == "II.1.1")
    assert clauses[measure.parent_id].kind == "commitment" and clauses[measure.parent_id].number == "II.1"


def test_a_later_draft_keeps_stable_ids_and_reports_what_changed(app):
    first = _import("gpai-cop-draft2-2024-12.md", draft_name="Second Draft")
    db.session.commit()
    index = json.loads(shared_file("corpus", "corpus-structure-index.json").read_text())
    assert index["gpai_cop_draft2_2024_12_19"]["n_measures"] == first.counts["measure"]
    code = first.code
    copyright_uid = db.session.scalar(select(Clause.uid).where(Clause.code_id == code.id, Clause.kind == "commitment",
                                                               Clause.number == "2"))
    second = _import("gpai-cop-draft3-2025-03.md", code=code, draft_name="Third Draft")
    db.session.commit()
    print(second.summary())
    assert second.matched > 40 and second.new > 0 and second.dropped > 0
    assert second.matched + second.new == sum(second.counts.values())
    renumbered = db.session.scalar(select(Clause).where(Clause.uid == copyright_uid))
    assert (renumbered.number, renumbered.title, renumbered.withdrawn) == ("I.2", "Copyright policy", False)
    versions = db.session.scalars(select(DraftClause).where(DraftClause.clause_uid == copyright_uid)
                                  .order_by(DraftClause.draft_id)).all()
    assert [v.number for v in versions] == ["2", "I.2"]
    assert len([c for c in live_clauses(code) if c.kind == "measure"]) == 71
    withdrawn = db.session.scalar(select(func.count()).select_from(Clause)
                                  .where(Clause.code_id == code.id, Clause.withdrawn.is_(True)))
    assert withdrawn == second.dropped
    # Draft 3's own chapters come first; draft 2's parts it no longer has follow them.
    db.session.expire_all()
    titles = [chapter.title for chapter in sorted(code.chapters, key=lambda chapter: chapter.position)]
    assert titles[:4] == ["Introduction", "Transparency", "Copyright", "Safety and Security"]


def test_reimporting_a_co_edited_clause_goes_through_its_live_document(app, make_code):
    from codedraft.collab.models import ClauseUpdate
    from codedraft.collab.store import store_for

    text = "# A code\n\n## Chapter\n\n### Commitment 1. Care\n\nTake care 👍 of things.\n"
    first = import_document(text)
    db.session.commit()
    clause = db.session.scalar(select(Clause).where(Clause.code_id == first.code.id, Clause.kind == "commitment"))
    store = store_for(app)
    set_live_text(store, clause, "Take great care 👍 of things.", user_id=None, origin="test")
    opened = store.open(clause)
    second = import_document(text.replace("Take care", "Always take care"), code=first.code, draft_name="v2")
    db.session.commit()
    assert second.matched == second.counts["commitment"] + second.counts.get("section", 0)
    db.session.refresh(clause)
    assert clause.body == "Always take care 👍 of things."
    assert opened.doc.text == clause.body
    origins = db.session.scalars(select(ClauseUpdate.origin).where(ClauseUpdate.clause_id == clause.id)
                                 .order_by(ClauseUpdate.id)).all()
    assert origins[-1] == "import"
    assert second.draft.clauses[-1].body == clause.body


def test_cli_import_shows_progress_and_a_report(app, tmp_path):
    source = tmp_path / "code.md"
    source.write_text("# Tiny Code\n\n## One\n\n### Commitment 1. First\n\nText.\n\n#### Measure 1.1. Sub\n\nMore.\n")
    result = app.test_cli_runner().invoke(args=["import", str(source), "--draft-name", "First Draft"])
    assert result.exit_code == 0, result.output
    assert "1 commitment" in result.output and "1 measure" in result.output
    assert "Published as draft 1: First Draft." in result.output


def test_drafters_notes_are_stored_beside_their_clause_and_shown_apart(app, client, make_user):
    from tests.conftest import login

    report = _import("gpai-cop-draft3-2025-03.md", draft_name="Third Draft")
    db.session.commit()
    clauses = {(c.kind, c.number): c for c in live_clauses(report.code)}
    measure = clauses[("measure", "II.4.1")]
    assert [note.title for note in measure.notes] == ["Summary of changes from the second draft"]
    assert "Summary of changes" not in measure.body
    commitment = clauses[("commitment", "II.1")]
    assert [note.title for note in commitment.notes] == ["Summary of changes from the second draft"]
    # Published drafts and the texts they export hold the clause text only.
    assert not any("Summary of changes" in v.body or "future Recital" in v.body for v in report.draft.clauses)
    assert not any("<!--" in c.body for c in live_clauses(report.code))
    office = make_user(office=True)
    db.session.commit()
    login(client, office.email)
    page = client.get(f"/codes/{report.code.slug}/clauses/{measure.uid}").get_data(as_text=True)
    aside = page.split('class="clause-aside"', 1)[1]
    text = page.split('id="clause-text"', 1)[1].split("</div>", 1)[0]
    assert 'id="notes-heading"' in aside and "Summary of changes from the second draft" in aside
    assert "Summary of changes" not in text


def test_a_next_version_replaces_the_notes_and_takes_the_office_corrections(app, make_code):
    first = import_document("# C\n\n## Part\n\n### Commitment 1. Care\n\nTake care.\n\n"
                            "#### Summary of changes\n\nOld.\n"
                            "\n### Commitment 2. Share\n\nShare things.\n")
    db.session.commit()
    old = {c.number: c.uid for c in live_clauses(first.code)}
    # The Office says the new commitment 3 continues commitment 2, and commitment 2 is new.
    text = ("# C\n\n## Part\n\n### Commitment 1. Care\n\nTake care.\n\n#### Summary of changes\n\nNew.\n"
            "\n### Commitment 2. Share\n\nShare things.\n\n### Commitment 3. Other\n\nOther text.\n")
    second = import_document(text, code=first.code, title="C, second version",
                             corrections={"commitment:3": old["2"], "commitment:2": None})
    db.session.commit()
    live = {c.number: c for c in live_clauses(first.code)}
    assert live["3"].uid == old["2"] and live["2"].uid != old["2"] and live["1"].uid == old["1"]
    assert [n.body for n in live["1"].notes] == ["New."]
    assert first.code.title == "C, second version"
    assert second.matched_by.get("office") == 1
