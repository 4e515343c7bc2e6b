"""Every export format on the real drafts 2 and 3, with timings (printed; run with -s)."""

from __future__ import annotations

import io
import time
import zipfile

from docx import Document

from codedraft.exports.compare import Comparison, compare_documents
from codedraft.exports.docx_export import export_docx
from codedraft.exports.docx_redline import export_redline_docx
from codedraft.exports.html_export import export_html
from codedraft.exports.markdown_export import export_markdown, parse_markdown_export
from codedraft.exports.pdf_export import (
    AppAssetFetcher,
    export_pdf,
    export_redline_pdf,
    export_redline_pdf_via_docx,
    libreoffice_binary,
)
from codedraft.exports.redline import RedlineLayout, export_redline_html


def _timed(label: str, make):
    """Make it and print how long it took (bench/export_bench.py holds the targets; tests do not
    time, since a busy machine is slower)."""
    started = time.perf_counter()
    result = make()
    elapsed = time.perf_counter() - started
    print(f"\n{label}: {elapsed:.2f} s, {len(result):,} bytes")
    return result, elapsed


def test_draft3_consolidated_exports(draft3, render_markdown) -> None:
    html, html_s = _timed("draft 3 HTML", lambda: export_html(draft3, render_markdown))
    assert html.count('<article class="clause') == sum(len(c.clauses) for c in draft3.chapters)

    markdown, markdown_s = _timed("draft 3 Markdown", lambda: export_markdown(draft3))
    assert parse_markdown_export(markdown) == draft3

    data, docx_s = _timed("draft 3 DOCX", lambda: export_docx(draft3, render_markdown))
    word = Document(io.BytesIO(data))
    headings = [p.text for p in word.paragraphs if p.style.name == "Heading 1"]
    assert headings == [chapter.heading for chapter in draft3.chapters]


def test_draft3_pdf_once(draft3, render_markdown) -> None:
    fetcher = AppAssetFetcher()
    pdf, pdf_s = _timed("draft 3 PDF", lambda: export_pdf(draft3, render_markdown, fetcher=fetcher))
    # How long it takes is bench/export_bench.py's to measure (target 10 s), not a test's.
    assert pdf.startswith(b"%PDF")
    assert fetcher.refused == fetcher.requested  # whatever the drafts name is refused


def test_redline_2_to_3_every_format(draft2, draft3) -> None:
    comparison = compare_documents(draft2, draft3)
    inline, inline_s = _timed("redline HTML inline", lambda: export_redline_html(comparison))
    side, side_s = _timed(
        "redline HTML side by side", lambda: export_redline_html(comparison, layout=RedlineLayout.SIDE_BY_SIDE)
    )
    docx, docx_s = _timed("redline DOCX", lambda: export_redline_docx(comparison))
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        body = archive.read("word/document.xml").decode()
    assert body.count("<w:ins ") > 100 and body.count("<w:del ") > 100
    assert 'w:author="CodeDraft"' in body


def test_redline_2_to_3_pdf(draft2, draft3) -> None:
    comparison = compare_documents(draft2, draft3)
    if libreoffice_binary() is not None:
        # The app's path: LibreOffice lays out the tracked-changes DOCX (about 2 s).
        pdf, pdf_s = _timed("redline PDF via DOCX", lambda: export_redline_pdf_via_docx(comparison))
        assert pdf.startswith(b"%PDF")
    # WeasyPrint (the fallback, and side by side) lays out ~50 KB of text a second on 2 cores;
    # one chapter keeps this test short, the full redline is measured by bench/export_bench.py.
    first = Comparison(old=draft2, new=draft3, clauses=comparison.clauses[:12])
    pdf, pdf_s = _timed("redline PDF inline, 12 clauses", lambda: export_redline_pdf(first))
    assert pdf.startswith(b"%PDF")
