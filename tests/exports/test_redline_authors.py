"""The DOCX redline names the real author and time of each change: two people editing one
clause of the real second draft give two authors, an import is credited to its importer; the
table of contents is filled; the printed redline colours insertions and deletions apart."""
from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest
from docx import Document
from docx.oxml.ns import qn
from sqlalchemy import select

from codedraft.codes.models import Clause
from codedraft.collab.store import store_for
from codedraft.drafts.operations import publish_draft
from codedraft.exports import jobs
from codedraft.exports.attribution import Credit, Version, credit_changes, credit_segments
from codedraft.exports.compare import DiffOp, diff_words
from codedraft.exports.docx_redline import export_redline_docx
from codedraft.extensions import db
from codedraft.importer.operations import import_document
from tests.exports.conftest import CORPUS
from tests.support.editing import change_live_text

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _require_corpus() -> None:
    for name in ("gpai-cop-draft2-2024-12.md", "gpai-cop-draft3-2025-03.md"):
        if not (CORPUS / name).exists():
            pytest.skip(f"the real drafts are not present beside the project: {name}")


def _marks_by_author(data: bytes) -> dict[str, list[str]]:
    """Text of every w:ins / w:del, by w:author, read with python-docx's XML."""
    body = Document(io.BytesIO(data)).element.body
    found: dict[str, list[str]] = {}
    for tag in ("ins", "del"):
        for mark in body.iter(f"{{{W}}}{tag}"):
            text = "".join(node.text or "" for node in mark.iter(f"{{{W}}}t", f"{{{W}}}delText"))
            found.setdefault(mark.get(qn("w:author")), []).append(text)
    return found


def test_credits_follow_each_character_through_the_versions() -> None:
    alice = Credit("Alice", datetime(2026, 1, 5, 10))
    bob = Credit("Bob", datetime(2026, 1, 5, 11))
    office = Credit("Office", datetime(2026, 1, 6))
    old = "Providers shall document machine learning training data."
    step1 = "Providers shall document machine learning training data and its sources."
    step2 = "Providers must document machine learning training data and its sources."
    new = step2 + " Final."
    credits = credit_changes(old, [Version(step1, alice), Version(step2, bob)], new, office)
    segments = credit_segments(diff_words(old, new), credits, office)
    changed = {(s.op, s.text.strip(), s.credit.author) for s in segments if s.op is not DiffOp.EQUAL}
    assert (DiffOp.DELETE, "shall", "Bob") in changed and (DiffOp.INSERT, "must", "Bob") in changed
    assert any(op is DiffOp.INSERT and "its sources" in text and who == "Alice" for op, text, who in changed)
    assert any(op is DiffOp.INSERT and "Final" in text and who == "Office" for op, text, who in changed)
    # Joining the credited segments gives back both texts.
    assert "".join(s.text for s in segments if s.op is not DiffOp.INSERT) == old
    assert "".join(s.text for s in segments if s.op is not DiffOp.DELETE) == new


def test_a_clause_edited_by_two_people_has_two_authors(app, make_user) -> None:
    _require_corpus()
    office = make_user(email="office@example.test", name="Olga Office", office=True)
    report = import_document((CORPUS / "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8"),
                             draft_name="Second Draft", by=office)
    db.session.commit()
    code = report.code
    clause = next(c for c in db.session.scalars(select(Clause).where(Clause.code_id == code.id).order_by(Clause.id))
                  if len(c.body) > 800 and " shall " in c.body)
    alice = make_user(email="alice@example.test", name="Alice Chair")
    bob = make_user(email="bob@example.test", name="Bob Vice-Chair")
    db.session.commit()  # the store writes the log on its own connection
    store = store_for(app)
    first_words = clause.body.split(" shall ", 1)
    change_live_text(store, clause, lambda text: text.replace(" shall ", " must ", 1), user_id=alice.id,
                     origin="editor")
    change_live_text(store, clause, lambda text: text + "\n\nThe AI Office shall review this Measure.",
                     user_id=bob.id, origin="editor")
    db.session.commit()
    publish_draft(code, "Working Draft", by=office)
    db.session.commit()

    request = jobs.ExportRequest.build("redline", "docx", {"from": "1", "to": "2"})
    data = jobs.produce_export(code, request).data
    authors = _marks_by_author(data)
    assert {"Alice Chair", "Bob Vice-Chair"} <= set(authors), authors.keys()
    assert any("must" in text for text in authors["Alice Chair"])
    assert any("shall" in text for text in authors["Alice Chair"])  # the word she struck
    assert any("AI Office shall review" in text for text in authors["Bob Vice-Chair"])
    assert first_words[0]  # the clause really held "shall"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("word/document.xml").decode()
    assert 'w:author="CodeDraft"' not in xml
    assert 'w:date="' in xml


def test_an_import_is_credited_to_its_importer_and_the_toc_is_filled(app, make_user) -> None:
    _require_corpus()
    importer = make_user(email="ines@example.test", name="Ines Importer", office=True)
    report = import_document((CORPUS / "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8"),
                             draft_name="Second Draft", by=importer)
    import_document((CORPUS / "gpai-cop-draft3-2025-03.md").read_text(encoding="utf-8"), code=report.code,
                    draft_name="Third Draft", by=importer)
    db.session.commit()
    request = jobs.ExportRequest.build("redline", "docx", {"from": "1", "to": "2"})
    data = jobs.produce_export(report.code, request).data
    assert set(_marks_by_author(data)) == {"Ines Importer"}

    word = Document(io.BytesIO(data))
    toc = [p.text for p in word.paragraphs if p.style.name[:4] == "TOC " and p.style.name[4:].isdigit()]
    headings = [p for p in word.paragraphs if p.style.name in ("Heading 1", "Heading 2", "Heading 3")]
    # A heading as accepted (kept and inserted words) and as rejected (kept and deleted words).
    accepted = {"".join(t.text or "" for t in p._p.iter(f"{{{W}}}t")) for p in headings}
    rejected = {"".join(t.text or "" for t in p._p.iter(f"{{{W}}}t", f"{{{W}}}delText")
                        if t.getparent().getparent().tag != f"{{{W}}}ins") for p in headings}
    assert len(toc) > 100
    # Every entry of the contents is a heading of the document (the field is not empty).
    assert set(toc) <= accepted | rejected


def test_printed_redline_colours_insertions_and_deletions_apart(draft2, draft3) -> None:
    from codedraft.exports.compare import compare_documents

    data = export_redline_docx(compare_documents(draft2, draft3), marks="print", include_toc=False)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("word/document.xml").decode()
    assert "<w:ins " not in xml and "<w:del " not in xml
    assert xml.count('<w:color w:val="0B5A13"/>') > 100 and xml.count('<w:color w:val="8A1010"/>') > 100
    assert xml.count("<w:strike/>") == xml.count('<w:color w:val="8A1010"/>')
    with pytest.raises(ValueError):
        export_redline_docx(compare_documents(draft2, draft3), marks="bold")


def test_export_names_are_whole_words() -> None:
    from codedraft.exports.filenames import export_title, safe_download_name

    code_title = ("Second Draft of the General-Purpose AI Code of Practice (19 December 2024) "
                  "under the AI Act of the Union")
    name = safe_download_name(export_title(code_title, "changes draft 1 to draft 2"), "docx")
    assert name.endswith("-changes-draft-1-to-draft-2.docx"), name
    stem = name.removesuffix("-changes-draft-1-to-draft-2.docx")
    assert code_title.replace(" ", "-").startswith(stem), stem  # cut between words
    long_name = safe_download_name("word " * 40, "pdf")
    assert long_name.endswith("word.pdf") and "--" not in long_name


def test_an_accepted_suggestion_is_credited_to_its_suggester_and_a_pending_one_is_not_exported(
        app, make_code, make_user) -> None:
    from codedraft.codes import operations as codes
    from codedraft.collab import suggestions
    from codedraft.collab.core import SuggestText

    code = make_code("Suggested Code")
    seed = "Providers shall document the training data."
    clause = codes.add_clause(codes.add_chapter(code, "Chapter"), kind="commitment", number="1", title="Data",
                              body=seed)
    office = make_user(office=True, name="Olga Office")
    chair = make_user("chair", code, name="Chloe Chair")
    rita = make_user("reviewer", code, name="Rita Reviewer")
    sam = make_user("reviewer", code, name="Sam Second")
    publish_draft(code, "First", by=office)
    db.session.commit()
    store = store_for(app)
    for who, new_text, suggestion_id in ((rita, seed.replace("the training", "all the training"), "r1"),
                                         (sam, seed.replace("document", "publish"), "s1")):
        store.edit_live_text(clause, lambda _doc, t=new_text, w=who, i=suggestion_id: SuggestText(t, by=w.id, id=i),
                             user_id=who.id, origin="suggestion")
        db.session.commit()
    suggestions.decide(store, clause, chair, accept=["r1"])  # Sam's stays pending
    db.session.commit()
    publish_draft(code, "Second", by=office)
    db.session.commit()

    request = jobs.ExportRequest.build("redline", "docx", {"from": "1", "to": "2"})
    authors = _marks_by_author(jobs.produce_export(code, request).data)
    assert set(authors) == {"Rita Reviewer"}, authors
    assert any("all" in text for text in authors["Rita Reviewer"])
    assert all("publish" not in text for texts in authors.values() for text in texts)
