"""PDF rendering fetches nothing it was not given (SECURITY-CASES 25)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from codedraft.exports.model import FeedbackRow
from codedraft.exports.pdf_export import (
    AppAssetFetcher,
    Asset,
    export_feedback_report_pdf,
    export_pdf,
    html_to_pdf,
)

HOSTILE_BODY = (
    "<img src=file:///etc/passwd>\n\n"
    "![meta](http://169.254.169.254/latest/meta-data/)\n\n"
    "[metadata](http://169.254.169.254/)\n\n"
    '<link rel="stylesheet" href="file:///etc/passwd">'
)


def _pdf_text(pdf: bytes, tmp_path) -> str | None:
    if shutil.which("pdftotext") is None:
        return None
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_safe_renderer_path_fetches_nothing(make_clause, make_document, render_markdown, tmp_path) -> None:
    document = make_document(("ch", [make_clause("evil", body_markdown=HOSTILE_BODY)]))
    fetcher = AppAssetFetcher()
    pdf = export_pdf(document, render_markdown, fetcher=fetcher)
    assert pdf.startswith(b"%PDF")
    # The Markdown image survives sanitising, so the renderer asks, and is refused.
    assert fetcher.requested
    assert fetcher.refused == fetcher.requested
    assert all(url.startswith("http://169.254.169.254/") for url in fetcher.requested)
    text = _pdf_text(pdf, tmp_path)
    if text is not None:
        assert "root:" not in text
        assert "<img src=file:///etc/passwd>" in text  # raw HTML is shown as text


def test_fetcher_refuses_raw_html_even_without_a_sanitiser(tmp_path) -> None:
    # Defence in depth: even raw, unsanitised HTML cannot make the PDF renderer fetch.
    html = (
        '<html><head><link rel="stylesheet" href="file:///etc/passwd">'
        "<style>@import url(http://169.254.169.254/a.css); p { background: url(file:///etc/shadow) }</style>"
        '</head><body><p><img src="file:///etc/passwd" alt="alt-text"></p>'
        '<p><a href="http://169.254.169.254/">link</a></p><p><img src="relative.png"></p></body></html>'
    )
    fetcher = AppAssetFetcher()
    pdf = html_to_pdf(html, fetcher=fetcher)
    assert "file:///etc/passwd" in fetcher.requested
    assert "http://169.254.169.254/a.css" in fetcher.requested
    assert fetcher.refused == fetcher.requested
    assert "http://169.254.169.254/" not in fetcher.requested  # a link is never fetched
    text = _pdf_text(pdf, tmp_path)
    if text is not None:
        assert "root:" not in text


def test_fetcher_serves_only_app_assets() -> None:
    pixel = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
        b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
        b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    fetcher = AppAssetFetcher({"codedraft-asset:logo.png": Asset(pixel, "image/png")})
    html_to_pdf('<img src="codedraft-asset:logo.png"><img src="codedraft-asset:other.png">', fetcher=fetcher)
    assert fetcher.requested == ["codedraft-asset:logo.png", "codedraft-asset:other.png"]
    assert fetcher.refused == ["codedraft-asset:other.png"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://169.254.169.254/", "data:image/png;base64,AA=="])
def test_fetch_raises_for_anything_else(url: str) -> None:
    fetcher = AppAssetFetcher()
    with pytest.raises(PermissionError):
        fetcher.fetch(url)


def test_feedback_report_pdf(tmp_path) -> None:
    from datetime import datetime

    rows = [
        FeedbackRow(
            comment_id=n,
            clause_number="II.1",
            clause_title="Framework",
            chapter="Safety",
            category=category,
            organisation="Org",
            author="A",
            status="addressed",
            disposition="Accepted",
            disposition_reason="Clearer",
            created=datetime(2025, 3, 20),
            text="t",
        )
        for n, category in enumerate(["academia", "civil society", "academia"])
    ]
    fetcher = AppAssetFetcher()
    pdf = export_feedback_report_pdf(rows, code_title="Code", draft_label="Third Draft", fetcher=fetcher)
    assert pdf.startswith(b"%PDF") and fetcher.requested == []
    text = _pdf_text(pdf, tmp_path)
    if text is not None:
        assert "Disposition of comments" in text and "Clearer" in text
