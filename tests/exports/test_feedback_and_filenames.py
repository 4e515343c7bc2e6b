"""Feedback dataset exports (SECURITY-CASES 24) and safe file names (SECURITY-CASES 26)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from codedraft.exports.feedback_export import (
    export_feedback_csv,
    export_feedback_json,
    export_feedback_report_html,
    export_feedback_xlsx,
)
from codedraft.exports.filenames import content_disposition, safe_download_name, safe_export_path
from codedraft.exports.model import FeedbackRow

DANGEROUS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=cmd", "\r=cmd", '=HYPERLINK("http://x")', "  =1+1", "＝1+1"]


def _row(text: str, **overrides) -> FeedbackRow:
    fields = dict(
        comment_id=1,
        clause_number="II.1",
        clause_title="Framework",
        chapter="Safety",
        category="civil society",
        organisation="Org",
        author="Ana",
        status="open",
        disposition="",
        disposition_reason="",
        created=datetime(2025, 3, 20, 9, 30),
        text=text,
        quote="",
    )
    fields.update(overrides)
    return FeedbackRow(**fields)


@pytest.mark.parametrize("payload", DANGEROUS)
def test_csv_neutralises_formulas(payload: str) -> None:
    rows = [_row(payload, organisation=payload, author=payload)]
    parsed = list(csv.reader(io.StringIO(export_feedback_csv(rows))))
    header, record = parsed
    for column in ("text", "organisation", "author"):
        value = record[header.index(column)]
        assert value == "'" + payload
    assert record[header.index("comment_id")] == "1"


@pytest.mark.parametrize("payload", DANGEROUS)
def test_xlsx_stores_formulas_as_plain_strings(payload: str) -> None:
    data = export_feedback_xlsx([_row(payload, organisation=payload)])
    sheet = load_workbook(io.BytesIO(data))["Comments"]
    header = [cell.value for cell in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("text") + 1)
    assert cell.data_type == "s" and cell.value == payload
    assert cell.quotePrefix
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml


def test_plain_text_is_left_alone() -> None:
    rows = [_row("Signatories - shall comply = yes", comment_id=7)]
    record = list(csv.reader(io.StringIO(export_feedback_csv(rows))))[1]
    assert "Signatories - shall comply = yes" in record
    sheet = load_workbook(io.BytesIO(export_feedback_xlsx(rows)))["Comments"]
    assert sheet.cell(row=2, column=1).value == 7


def test_json_keeps_text_verbatim_one_record_per_comment() -> None:
    rows = [_row("=1+1", comment_id=1), _row("Ça va", comment_id=2)]
    data = json.loads(export_feedback_json(rows))
    assert data["count"] == 2
    assert [c["text"] for c in data["comments"]] == ["=1+1", "Ça va"]
    assert data["comments"][0]["created"] == "2025-03-20T09:30:00"


def test_report_has_chart_counts_and_annex() -> None:
    rows = [
        _row("a", comment_id=1, category="academia"),
        _row("b", comment_id=2, category="academia"),
        _row(
            "c",
            comment_id=3,
            category="<script>x</script>",
            clause_number="I.1",
            clause_title="Docs",
            disposition="Accepted",
            disposition_reason="Clearer wording",
        ),
    ]
    html = export_feedback_report_html(rows, code_title="Code", draft_label="Third Draft")
    assert "<svg" in html and html.count("<rect") == 2
    assert "<title>academia: 2</title>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Clearer wording" in html and "Disposition of comments" in html
    data = export_feedback_xlsx(rows)
    per_clause = load_workbook(io.BytesIO(data))["Comments per clause"]
    assert [c.value for c in per_clause[1]] == ["clause", "academia", "<script>x</script>"]
    assert per_clause._charts


@pytest.mark.parametrize(
    "title, expected",
    [
        ("../../x", "x.pdf"),
        ('";evil.exe', "evil.exe.pdf"),
        ("Code\r\nSet-Cookie: a=b", "Code-Set-Cookie-a-b.pdf"),
        ("Code de conduite — IA générale", "Code-de-conduite-IA-générale.pdf"),
        ("...", "codedraft-export.pdf"),
        ("CON", "_CON.pdf"),
    ],
)
def test_safe_download_name(title: str, expected: str) -> None:
    assert safe_download_name(title, "pdf") == expected


@pytest.mark.parametrize("title", ["../../x", '";evil.exe', "a\r\nb", "Kodeks 行为准则 ü", "\x00/etc/passwd"])
def test_content_disposition_is_one_safe_header(title: str) -> None:
    header = content_disposition(title, ".docx")
    assert "\r" not in header and "\n" not in header and "/" not in header.split("filename*=")[0]
    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="')[1].split('"')[0]
    assert fallback.isascii() and fallback.endswith(".docx") and ".." not in fallback
    assert '"' not in fallback and ";" not in fallback
    if not safe_download_name(title, "docx").isascii():
        assert "filename*=UTF-8''" in header


def test_unicode_title_gets_rfc5987_name() -> None:
    header = content_disposition("Kodeks ü", "pdf")
    assert header == "attachment; filename=\"Kodeks-u.pdf\"; filename*=UTF-8''Kodeks-%C3%BC.pdf"


def test_bad_suffix_and_export_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        safe_download_name("x", "../pdf")
    path = safe_export_path(tmp_path, "../../x", "pdf")
    assert path.parent == tmp_path.resolve() and path.name == "x.pdf"
