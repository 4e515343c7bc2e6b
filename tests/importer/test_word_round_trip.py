"""Word round trips: CodeDraft's own DOCX export imported back unchanged changes nothing, and a
DOCX that LibreOffice makes from the same text gives the same structure as the Markdown."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from codedraft.codes.models import Clause, Code
from codedraft.codes.operations import live_clauses
from codedraft.collab.models import ClauseUpdate
from codedraft.exports.builders import document_from_live
from codedraft.exports.docx_export import export_docx
from codedraft.extensions import db
from codedraft.importer.operations import existing_clauses, import_document, same_label, same_words
from codedraft.importer.parse import parse_markdown
from codedraft.importer.preview import preview_text
from codedraft.importer.reading import read_upload
from codedraft.markdown import render_markdown
from tests.conftest import shared_file
from tests.importer.test_structures import outline

DRAFT3 = "gpai-cop-draft3-2025-03.md"


def _differences(code: Code, markdown: str, *, outline_mode: bool) -> dict[str, list[str]]:
    """What importing ``markdown`` as the next version of ``code`` would change, new and drop."""
    old = {c.uid: c for c in live_clauses(code)}
    preview = preview_text(markdown, code, existing_clauses(code), outline=outline_mode)
    assert preview.document is not None
    changed, new = [], []
    for clause in preview.document.clauses():
        match = preview.matches[clause.key]
        if match.old_id is None:
            new.append(clause.key)
            continue
        before = old[match.old_id]
        if (before.kind != clause.kind or not same_label(before.number, before.title, clause.number, clause.title)
                or not same_words(before.body, clause.body)):
            changed.append(clause.key)
    return {"changed": changed, "new": new, "dropped": list(preview.dropped)}


def test_own_docx_export_imported_back_changes_nothing(app):
    report = import_document(shared_file("corpus", DRAFT3).read_text(encoding="utf-8"), draft_name="Third Draft")
    db.session.commit()
    code = report.code
    word = export_docx(document_from_live(code), render_markdown)
    uploaded = read_upload(word, "third-draft.docx")
    assert uploaded.outline
    # Word's table-of-contents field and the draft label are not text.
    assert "Update Field" not in uploaded.markdown and "Contents\n" not in uploaded.markdown
    assert "Live text" not in uploaded.markdown
    assert _differences(code, uploaded.markdown, outline_mode=True) == {"changed": [], "new": [], "dropped": []}
    bodies = {c.uid: (c.number, c.title, c.body, c.chapter_id, c.parent_id) for c in live_clauses(code)}
    notes = db.session.scalar(select(func.count()).select_from(Clause).where(Clause.notes.any()))
    updates = db.session.scalar(select(func.count()).select_from(ClauseUpdate))
    again = import_document(uploaded.markdown, code=code, parsed=parse_markdown(uploaded.markdown, outline=True),
                            from_word=True)
    db.session.commit()
    assert (again.matched, again.new, again.dropped) == (len(bodies), 0, 0)
    db.session.expire_all()
    assert {c.uid: (c.number, c.title, c.body, c.chapter_id, c.parent_id) for c in live_clauses(code)} == bodies
    assert db.session.scalar(select(func.count()).select_from(Clause).where(Clause.notes.any())) == notes
    assert db.session.scalar(select(func.count()).select_from(ClauseUpdate)) == updates


def test_a_libreoffice_docx_of_the_same_text_has_the_same_structure(tmp_path: Path):
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed; `make test` installs it")
    markdown = shared_file("corpus", DRAFT3).read_text(encoding="utf-8")
    text = re.sub(r"<!--.*?-->", "", markdown, flags=re.S)  # the source note, which is not the text
    html = tmp_path / "draft3.html"
    html.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Draft 3</title></head>"
                    f"<body>{render_markdown(text)}</body></html>", encoding="utf-8")
    profile = tmp_path / "profile"
    subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                    "docx:MS Word 2007 XML", "--outdir", str(tmp_path), str(html)],
                   check=True, capture_output=True, timeout=240)
    uploaded = read_upload((tmp_path / "draft3.docx").read_bytes(), "draft3.docx")
    assert not uploaded.outline
    assert outline(parse_markdown(uploaded.markdown)) == outline(parse_markdown(markdown))


def test_fields_and_tables_of_contents_are_not_text():
    from io import BytesIO

    from docx import Document

    from codedraft.exports.docx_export import add_field, add_table_of_contents

    word = Document()
    word.add_heading("A code", level=1)
    add_table_of_contents(word)
    paragraph = word.add_paragraph("See page ")
    add_field(paragraph, "PAGEREF _Toc1 \\h", "7")
    paragraph.add_run(" for the measure.")
    word.add_heading("Commitment 1. Care", level=2)
    word.add_paragraph("Take care.")
    buffer = BytesIO()
    word.save(buffer)
    markdown = read_upload(buffer.getvalue(), "code.docx").markdown
    assert "Update Field" not in markdown and "Contents" not in markdown
    assert "See page for the measure." in markdown and "7" not in markdown
    assert "## Commitment 1. Care" in markdown


def test_links_inside_a_word_file_are_never_followed(monkeypatch):
    """An image linked from the network and a sub-document on the local disk: the file is read
    from its own parts only; no connection is attempted and no named path is opened."""
    import builtins
    import socket
    from io import BytesIO

    from docx import Document
    from docx.opc.constants import RELATIONSHIP_TYPE as RT

    word = Document()
    word.add_heading("Commitment 1. Care", level=2)
    paragraph = word.add_paragraph("Take care.")
    part = word.part
    part.relate_to("http://169.254.169.254/latest/meta-data/", RT.IMAGE, is_external=True)
    part.relate_to("file:///etc/passwd", "http://schemas.openxmlformats.org/officeDocument/2006/relationships/subDocument",
                   is_external=True)
    paragraph.add_run(" Linked.")
    buffer = BytesIO()
    word.save(buffer)
    attempts: list[object] = []
    real_open = builtins.open

    def no_connect(self, address):  # noqa: ANN001
        attempts.append(address)
        raise OSError("no network in this test")

    def watched_open(file, *args, **kwargs):  # noqa: ANN001
        if "passwd" in str(file):
            attempts.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(builtins, "open", watched_open)
    markdown = read_upload(buffer.getvalue(), "linked.docx").markdown
    assert "Take care. Linked." in markdown and "root:" not in markdown
    assert attempts == []
