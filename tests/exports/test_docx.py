"""DOCX exports: headings, TOC field, and the redline's real tracked changes."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from docx import Document
from lxml import etree

from codedraft.exports.compare import compare_documents
from codedraft.exports.docx_export import export_docx
from codedraft.exports.docx_redline import export_redline_docx

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {"w": W}


def _body_xml(docx_bytes: bytes) -> etree._Element:
    with zipfile.ZipFile(io.BytesIO(docx_bytes)) as archive:
        return etree.fromstring(archive.read("word/document.xml"))


def _resolved_text(root: etree._Element, *, accept: bool) -> str:
    """The document text after accepting (or rejecting) every tracked change."""
    dropped_wrapper = "del" if accept else "ins"
    out: list[str] = []
    for paragraph in root.iter(f"{{{W}}}p"):
        for node in paragraph.iter(f"{{{W}}}t", f"{{{W}}}delText"):
            wrapper = node.getparent().getparent()
            kind = etree.QName(wrapper).localname
            if kind == dropped_wrapper:
                continue
            out.append(node.text or "")
        mark = paragraph.find("w:pPr/w:rPr", NS)
        mark_dropped = mark is not None and mark.find(f"w:{dropped_wrapper}", NS) is not None
        if not mark_dropped:
            out.append("\n")
    return "".join(out)


def test_docx_has_heading_styles_numbers_and_toc(make_clause, make_document, render_markdown) -> None:
    document = make_document(
        (
            "transparency",
            [
                make_clause(
                    "c1",
                    number="I.1",
                    title="Documentation",
                    body_markdown="Intro **bold**.\n\n1. first\n2. second\n\n- bullet\n\n"
                    "| a | b |\n|---|---|\n| 1 | 2 |\n\n## Legal text\n\nx\x01y",
                ),
                make_clause("c2", number="I.1.1", title="Keep records", parent_uid="c1", position=1),
            ],
        )
    )
    data = export_docx(document, render_markdown)
    word = Document(io.BytesIO(data))
    headings = [(p.style.name, p.text) for p in word.paragraphs if p.style.name.startswith("Heading")]
    assert ("Heading 1", "1 Transparency") in headings
    assert ("Heading 2", "I.1 Documentation") in headings
    assert ("Heading 4", "Legal text") in headings  # body h2 demoted below the clause (Heading 2)
    assert ("Heading 3", "I.1.1 Keep records") in headings
    texts = [p.text for p in word.paragraphs]
    assert "1. first" in texts and "2. second" in texts
    assert any(run.bold for p in word.paragraphs for run in p.runs if run.text == "bold")
    assert word.tables and word.tables[0].cell(1, 1).text == "2"
    assert "xy" in "".join(texts)  # the control character was dropped, not fatal
    root = _body_xml(data)
    instructions = "".join(root.itertext())
    assert re.search(r'TOC \\o "1-3"', "".join(t.text or "" for t in root.iter(f"{{{W}}}instrText")))
    # The contents are written into the field, not left for a field update.
    toc = [p.text for p in word.paragraphs if p.style.name in ("TOC 1", "TOC 2", "TOC 3")]
    assert toc == ["1 Transparency", "I.1 Documentation", "I.1.1 Keep records"]
    assert "Right-click" not in instructions
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b"updateFields" in archive.read("word/settings.xml")


def test_redline_docx_tracks_changes_that_accept_and_reject(make_clause, make_document) -> None:
    old = make_document(
        (
            "ch",
            [
                make_clause("a", number="1", title="Records", body_markdown="Keep old records.\nSecond line."),
                make_clause("gone", number="2", title="Gone", body_markdown="Removed text."),
            ],
        ),
        label="Second Draft",
    )
    new = make_document(
        (
            "ch",
            [
                make_clause(
                    "a",
                    number="1",
                    title="Records kept",
                    body_markdown="Keep new records.\nInserted line.\nSecond line.",
                ),
                make_clause("fresh", number="3", title="Fresh", body_markdown="Added text.\nTwo lines."),
            ],
        ),
        label="Third Draft",
    )
    data = export_redline_docx(compare_documents(old, new), author="Chair Team")
    root = _body_xml(data)
    insertions = root.findall(".//w:ins", NS)
    deletions = root.findall(".//w:del", NS)
    assert insertions and deletions
    for mark in insertions + deletions:
        assert mark.get(f"{{{W}}}author") == "Chair Team"
        assert mark.get(f"{{{W}}}date") == "2025-03-11T12:00:00Z"
    ids = [mark.get(f"{{{W}}}id") for mark in insertions + deletions]
    assert len(ids) == len(set(ids))
    assert "Removed text." in "".join(t.text for t in root.iter(f"{{{W}}}delText"))
    accepted = _resolved_text(root, accept=True)
    rejected = _resolved_text(root, accept=False)
    assert "Keep new records.\nInserted line.\nSecond line.\n" in accepted
    assert "Keep old records.\nSecond line.\n" in rejected
    assert "Added text.\nTwo lines.\n" in accepted and "Added text" not in rejected
    assert "Removed text.\n" in rejected and "Removed text" not in accepted
    assert "1 Records kept\n" in accepted and "1 Records\n" in rejected


@pytest.fixture(scope="module")
def soffice() -> str:
    path = shutil.which("soffice") or shutil.which("libreoffice")
    if path is None or shutil.which("pdftotext") is None:
        pytest.skip("LibreOffice or pdftotext not installed (Debian: libreoffice-writer-nogui, poppler-utils)")
    return path


def _convert(soffice: str, source: Path, target_format: str, workdir: Path) -> Path:
    profile = (workdir / "lo-profile").as_uri()
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            target_format,
            "--outdir",
            str(workdir),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return workdir / f"{source.stem}.{target_format}"


def test_libreoffice_reads_the_redline_as_tracked_changes(soffice, draft2, draft3, tmp_path) -> None:
    comparison = compare_documents(draft2, draft3)
    source = tmp_path / "redline.docx"
    source.write_bytes(export_redline_docx(comparison))
    odt = _convert(soffice, source, "odt", tmp_path)
    with zipfile.ZipFile(odt) as archive:
        content = archive.read("content.xml").decode("utf-8")
    assert content.count("<text:changed-region") > 100  # LibreOffice sees changes to accept/reject
    assert "<text:insertion>" in content and "<text:deletion>" in content
    pdf = _convert(soffice, source, "pdf", tmp_path)
    # Compare without whitespace and hyphens: pdftotext joins a line broken after a hyphen.
    text = "".join(
        subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout.split()
    ).replace("-", "")
    # Headings whose text did not change (an added clause, or a clause kept as it was numbered),
    # since a changed heading shows old and new words side by side.
    headings = [
        "".join(c.new.heading.split()).replace("-", "")
        for c in comparison.clauses
        if c.new is not None and c.new.number and (c.old is None or c.old.heading == c.new.heading)
    ]
    assert len(headings) >= 10
    position = 0
    for heading in headings:  # each heading is found after the previous one
        position = text.find(heading, position)
        assert position != -1, f"{heading} missing or out of order"
        position += len(heading)
