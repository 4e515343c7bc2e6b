"""Word drafts become Markdown the importer understands (python-docx round trip)."""
from __future__ import annotations

from pathlib import Path

import pytest
from docx import Document

from codedraft.exports.docx_import import DocxImportError, docx_to_markdown, read_document


def _word_draft(path: Path) -> Path:
    word = Document()
    word.add_paragraph("Code of Practice on Testing", style="Title")
    word.add_heading("Transparency", level=1)
    word.add_heading("Commitment I.1 Documentation", level=2)
    paragraph = word.add_paragraph("Signatories shall ")
    paragraph.add_run("keep").bold = True
    paragraph.add_run(" documentation ")
    paragraph.add_run("up to date").italic = True
    paragraph.add_run(".")
    word.add_heading("Measure I.1.1 Model documentation form", level=3)
    word.add_paragraph("the intended tasks;", style="List Bullet")
    word.add_paragraph("the licence;", style="List Bullet")
    word.add_paragraph("nested detail", style="List Bullet 2")
    word.add_paragraph("1. typed as text, not a list <script>")
    word.add_heading("Copyright", level=1)
    word.add_heading("Commitment I.2 Copyright policy", level=2)
    word.add_paragraph("Signatories shall adopt a copyright policy.")
    word.save(path)
    return path


def test_docx_to_markdown_maps_headings_lists_and_emphasis(tmp_path: Path) -> None:
    markdown = read_document(_word_draft(tmp_path / "draft.docx"))
    lines = markdown.splitlines()
    assert lines[0] == "# Code of Practice on Testing"
    assert "# Transparency" in lines and "## Commitment I.1 Documentation" in lines
    assert "### Measure I.1.1 Model documentation form" in lines
    assert "Signatories shall **keep** documentation *up to date*." in lines
    assert "- the intended tasks;\n- the licence;\n  - nested detail" in markdown
    assert "\\1. typed as text, not a list \\<script\\>" in lines


def test_docx_import_round_trip_into_clauses(app, tmp_path: Path) -> None:
    from codedraft.codes.operations import live_clauses
    from codedraft.importer.operations import import_document

    report = import_document(read_document(_word_draft(tmp_path / "draft.docx")), draft_name="From Word")
    clauses = {(c.kind, c.number): c for c in live_clauses(report.code)}
    assert report.code.title == "Code of Practice on Testing"
    assert [chapter.title for chapter in report.code.chapters] == ["Transparency", "Copyright"]
    assert clauses[("commitment", "I.1")].title == "Documentation"
    assert "**keep**" in clauses[("commitment", "I.1")].body
    assert clauses[("measure", "I.1.1")].parent_id == clauses[("commitment", "I.1")].id
    assert "- the licence;" in clauses[("measure", "I.1.1")].body
    assert clauses[("commitment", "I.2")].body == "Signatories shall adopt a copyright policy."
    assert report.draft is not None and report.draft.number == 1


def test_read_document_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n", encoding="utf-8")
    assert read_document(tmp_path / "a.md") == "# Title\n"
    (tmp_path / "a.pdf").write_bytes(b"%PDF")
    with pytest.raises(DocxImportError):
        read_document(tmp_path / "a.pdf")
    with pytest.raises(DocxImportError):
        docx_to_markdown(b"not a zip file")
