"""Generated export text is in the code's language (an export is an artefact of the code, the
same file for every reader): a Polish code's DOCX, HTML and PDF say "Spis treści", "projekt",
"Wygenerowano" with a Polish date, and its redline "Zmiany od"; an English code's stay English,
whatever language the person asking reads."""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import docx
import pytest

from codedraft.codes import operations as codes
from codedraft.codes.models import Code
from codedraft.drafts.operations import publish_draft
from codedraft.exports import builders
from codedraft.exports.compare import compare_documents
from codedraft.exports.docx_export import export_docx
from codedraft.exports.docx_redline import export_redline_docx
from codedraft.exports.html_export import export_html
from codedraft.exports.pdf_export import app_asset_fetcher, export_pdf
from codedraft.exports.redline import export_redline_html
from codedraft.extensions import db
from codedraft.markdown import render_markdown
from tests.exports.test_exports_app import _start, _wait_done

POLISH_MONTHS = ("stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia", "września",
                 "października", "listopada", "grudnia")


def _code(title: str, language: str) -> Code:
    code = codes.create_code(title)
    code.language = language
    chapter = codes.add_chapter(code, "Przejrzystość", number="I")
    clause = codes.add_clause(chapter, kind="commitment", number="1", title="Dokumentacja",
                              body="Sygnatariusze prowadzą dokumentację.")
    publish_draft(code, "Pierwszy projekt")
    codes.set_clause_body(clause, "Sygnatariusze prowadzą aktualną dokumentację.")
    publish_draft(code, "Drugi projekt")
    db.session.commit()
    return code


def _docx_text(data: bytes) -> str:
    return "\n".join(paragraph.text for paragraph in docx.Document(io.BytesIO(data)).paragraphs)


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_a_polish_codes_exports_say_their_own_words_in_polish(app, tmp_path):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):  # the asker reads English
        code = _code("Kodeks", "pl")
        document = builders.load_document(code, 2)
        assert document.draft_label == "Drugi projekt (projekt 2)"
        word = _docx_text(export_docx(document, render_markdown))
        assert "Spis treści" in word and "Drugi projekt (projekt 2)" in word and "Contents" not in word
        html = export_html(document, render_markdown)
        assert "Spis treści" in html and "Wygenerowano" in html and "Generated" not in html
        assert any(month in html for month in POLISH_MONTHS)
        pdf = _pdf_text(export_pdf(document, render_markdown, fetcher=app_asset_fetcher()), tmp_path)
        assert "Spis treści" in pdf and "Wygenerowano" in pdf
        comparison = compare_documents(builders.load_document(code, 1), document)
        redline = export_redline_html(comparison)
        assert "Zmiany od Pierwszy projekt (projekt 1) do Drugi projekt (projekt 2)" in redline
        assert "Wstawiony tekst jest podkreślony" in redline and 'aria-label="Podsumowanie zmian"' in redline
        assert "Zmieniono tekst" in redline and "Przepisy ze zmienionym tekstem" in redline
        assert "Text changed" not in redline and "Clauses added" not in redline
        tracked = _docx_text(export_redline_docx(comparison))
        assert "pokazane jako śledzone zmiany" in tracked
        live = builders.load_document(code, builders.LIVE)
        assert live.draft_label == "Tekst bieżący"


def test_an_english_codes_exports_stay_english_for_a_polish_reader(app):
    with app.test_request_context("/", headers={"Accept-Language": "pl"}):
        code = _code("Code", "en")
        document = builders.load_document(code, 2)
        html = export_html(document, render_markdown)
        assert "Contents" in html and "Generated" in html and "(draft 2)" in html
        assert "Spis treści" not in html
        # A code in a language the interface does not speak: English words.
        code.language = "de"
        assert "Contents" in _docx_text(export_docx(builders.load_document(code, 2), render_markdown))


def test_a_polish_export_job_downloads_a_polish_docx(app, make_user, sign_in):
    code = _code("Kodeks zadań", "pl")
    client = sign_in(make_user("chair", code))
    response = _start(client, code, kind="draft", format="docx", draft="2")
    assert response.status_code == 303
    state, _seen = _wait_done(client, response.headers["Location"])
    assert state["status"] == "done", state
    assert "Spis treści" in _docx_text(client.get(state["download_url"]).data)


def test_a_polish_codes_feedback_report_is_in_polish_and_escapes_its_text(app, tmp_path):
    from datetime import datetime

    from codedraft.exports.feedback_export import export_feedback_report_html
    from codedraft.exports.model import FeedbackRow
    from codedraft.exports.pdf_export import export_feedback_report_pdf

    row = FeedbackRow(comment_id=1, clause_number="1", clause_title="Dokumentacja", chapter="I", category="academia",
                      organisation="<b>Uni</b>", author="A", status="accepted", disposition="accepted",
                      disposition_reason="Tak.", created=datetime(2026, 1, 1), text="<script>x</script>")
    with app.app_context():
        words = builders.feedback_words("pl")
    html = export_feedback_report_html([row], code_title="Kodeks", draft_label="Drugi projekt", language="pl",
                                       words=words)
    assert "Załącznik: rozstrzygnięcia uwag" in html and "Uwagi do: Drugi projekt" in html
    assert "Annex" not in html and "<script>x" not in html and "&lt;b&gt;Uni&lt;/b&gt;" in html
    pdf = _pdf_text(export_feedback_report_pdf([row], code_title="Kodeks", draft_label="Drugi projekt",
                                               language="pl", words=words), tmp_path)
    assert "Załącznik: rozstrzygnięcia uwag" in pdf
    english = export_feedback_report_html([row], code_title="Code", draft_label="Second Draft")
    assert "Annex: disposition of comments" in english and "Feedback on Second Draft" in english
    broken = export_feedback_report_html([row], code_title="C", draft_label="D", words={"feedback_on": "%(nope)s"})
    assert "Feedback on D" in broken  # a translation whose placeholders do not fit falls back to English


def test_a_polish_codes_feedback_workbook_names_its_sheets_and_chart_in_polish(app, make_user, sign_in):
    from openpyxl import load_workbook

    code = _code("Kodeks arkuszy", "pl")
    client = sign_in(make_user("chair", code))
    response = _start(client, code, kind="feedback", format="xlsx")
    assert response.status_code == 303
    state, _seen = _wait_done(client, response.headers["Location"])
    assert state["status"] == "done", state
    workbook = load_workbook(io.BytesIO(client.get(state["download_url"]).data))
    assert workbook.sheetnames == ["Uwagi", "Uwagi według przepisów"]
    assert workbook["Uwagi"].cell(row=1, column=1).value == "comment_id"  # the dataset's keys stay


def test_a_sheet_name_is_cut_and_cleaned_as_spreadsheets_require():
    from codedraft.exports.feedback_export import _sheet_name

    assert _sheet_name("Uwagi: [szkic] 1/2 *?") == "Uwagi   szkic  1 2"
    assert len(_sheet_name("x" * 80)) == 31 and _sheet_name("[]") == "Sheet"
