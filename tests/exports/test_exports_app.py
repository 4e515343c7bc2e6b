"""Exports wired into the app: documents from the database, jobs over HTTP, access, CLI, compare."""
from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from sqlalchemy import select

from codedraft.accounts.operations import create_api_token, grant_role, revoke_role
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Code, Role
from codedraft.drafts.operations import publish_draft
from codedraft.exports import builders, jobs
from codedraft.exports.pdf_export import PRINT_CSS_URL, app_asset_fetcher
from codedraft.extensions import db
from tests.exports.conftest import CORPUS


def _corpus(name: str) -> str:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"../shared/corpus not present: {path}")
    return path.read_text(encoding="utf-8")


@pytest.fixture
def corpus_code(app) -> Code:
    """The real second and third drafts imported into one code: drafts 1 and 2."""
    from codedraft.importer.operations import import_document

    report = import_document(_corpus("gpai-cop-draft2-2024-12.md"), draft_name="Second Draft")
    import_document(_corpus("gpai-cop-draft3-2025-03.md"), code=report.code, draft_name="Third Draft")
    db.session.commit()
    return report.code


@pytest.fixture
def small_code(app) -> Code:
    """Draft 1: A(1), B(2), C(3). Draft 2: A reworded, B withdrawn, C renumbered 2, D added."""
    code = codes.create_code("Small Code")
    chapter = codes.add_chapter(code, "Transparency", number="I")
    a = codes.add_clause(chapter, kind="commitment", number="1", title="Documentation",
                         body="Signatories shall keep documentation up to date.")
    b = codes.add_clause(chapter, kind="commitment", number="2", title="Retired rule", body="Old obligation.")
    c = codes.add_clause(chapter, kind="commitment", number="3", title="Copyright policy",
                         body="Signatories shall adopt a copyright policy.")
    publish_draft(code, "First Draft")
    codes.set_clause_body(a, "Signatories shall keep technical documentation up to date.")
    b.withdrawn = True
    codes.renumber_clause(c, "2")
    codes.add_clause(chapter, kind="commitment", number="3", title="Brand new duty", body="A new duty.")
    publish_draft(code, "Second Draft")
    db.session.commit()
    return code


def _csrf(client: Any, path: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, path
    return match.group(1)


def _start(client: Any, code: Code, **form: str) -> Any:
    token = _csrf(client, f"/codes/{code.slug}/exports")
    return client.post(f"/codes/{code.slug}/exports", data={"csrf_token": token, **form})


def _wait_done(client: Any, job_url: str, timeout: float = 60) -> tuple[dict[str, Any], list[int]]:
    """Poll the job's JSON until it finishes; returns the last state and every progress seen."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"{job_url}.json").get_json()
        seen.append(state["progress"])
        if state["finished"]:
            return state, seen
        time.sleep(0.05)
    raise AssertionError(f"export job did not finish: {state}")


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    import shutil
    import subprocess

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _without_tokens(page: str) -> str:
    return re.sub(r'(name="(?:csrf-token|csp-nonce|csrf_token)" (?:content|value)=)"[^"]*"', r"\1", page)


def _squash(text: str) -> str:
    # pdftotext breaks lines anywhere and joins a line broken after a hyphen.
    return "".join(text.split()).replace("-", "")


# Documents from the database -------------------------------------------------------------------


def test_documents_from_drafts_and_live_text(corpus_code) -> None:
    second = builders.load_document(corpus_code, 1)
    third = builders.load_document(corpus_code, 2)
    live = builders.load_document(corpus_code, "live")
    assert second.draft_label == "Second Draft (draft 1)" and third.draft_label == "Third Draft (draft 2)"
    # The importer's structure (tests/importer/structures): recitals, FAQ questions and appendix parts
    # are clauses of their own.
    assert sum(1 for _ in second.iter_clauses()) == 124 and sum(1 for _ in third.iter_clauses()) == 169
    # Straight after the import the live text is the third draft, clause for clause.
    assert [(c.uid, c.body_markdown) for _, c in live.iter_clauses()] == [
        (c.uid, c.body_markdown) for _, c in third.iter_clauses()
    ]
    with pytest.raises(builders.UnknownDraft):
        builders.load_document(corpus_code, 9)


def test_redline_of_real_drafts_in_every_format(corpus_code, tmp_path) -> None:
    comparison_request = {"from": "1", "to": "2"}
    results = {}
    # How long each takes is bench/export_bench.py's question, not a test's (a busy machine is slower).
    for fmt in ("html", "docx", "pdf"):
        results[fmt] = jobs.produce_export(corpus_code, jobs.ExportRequest.build("redline", fmt, comparison_request))
    assert "<ins class=\"redline-ins\">" in results["html"].data.decode() and results["html"].suffix == "html"

    # The DOCX holds real tracked changes, inside the paragraphs of the changed clauses.
    comparison = builders.load_document(corpus_code, 1), builders.load_document(corpus_code, 2)
    from codedraft.exports.compare import compare_documents

    changed = [c for c in compare_documents(*comparison).text_changed if c.new is not None]
    assert len(changed) > 20
    with zipfile.ZipFile(io.BytesIO(results["docx"].data)) as archive:
        body = archive.read("word/document.xml").decode()
    assert body.count("<w:ins ") > 100 and body.count("<w:del ") > 100
    word = Document(io.BytesIO(results["docx"].data))
    tracked_paragraphs = [p for p in word.paragraphs if "<w:ins " in p._p.xml or "<w:del " in p._p.xml]
    assert len(tracked_paragraphs) > len(changed)

    # The PDF (LibreOffice from the tracked DOCX where installed) shows the new clauses.
    text = _squash(_pdf_text(results["pdf"].data, tmp_path))
    added = [c.new.heading for c in compare_documents(*comparison).added if c.new is not None and c.new.number]
    assert added and all(_squash(heading) in text for heading in added)


def test_consolidated_docx_converts_with_every_heading_in_order(corpus_code, tmp_path) -> None:
    from codedraft.exports.pdf_export import docx_to_pdf, libreoffice_binary

    if libreoffice_binary() is None:
        pytest.skip("LibreOffice (libreoffice-writer-nogui) is not installed")
    result = jobs.produce_export(corpus_code, jobs.ExportRequest.build("draft", "docx", {"draft": "2"}))
    text = _squash(_pdf_text(docx_to_pdf(result.data), tmp_path))
    document = builders.load_document(corpus_code, 2)
    position = 0
    for _, clause in document.iter_clauses():
        heading = _squash(clause.heading)
        position = text.find(heading, position)
        assert position != -1, f"{clause.heading!r} missing or out of order"
        position += len(heading)


def test_consolidated_formats_from_the_live_text(small_code) -> None:
    for fmt, magic in (("md", b"[//]: # (codedraft document"), ("html", b"<!DOCTYPE html>"), ("docx", b"PK"),
                       ("pdf", b"%PDF")):
        result = jobs.produce_export(small_code, jobs.ExportRequest.build("draft", fmt, {"draft": "live"}))
        assert result.data.startswith(magic), fmt
    markdown = jobs.produce_export(small_code, jobs.ExportRequest.build("draft", "md", {"draft": "1"})).data.decode()
    assert "Commitment 2 Retired rule" in markdown and "Brand new duty" not in markdown


def test_pdf_fetcher_serves_the_print_stylesheet_and_nothing_else() -> None:
    fetcher = app_asset_fetcher()
    stylesheet = fetcher.fetch(PRINT_CSS_URL)
    assert stylesheet.content_type == "text/css" and b"@page" in stylesheet.read()
    for url in ("file:///etc/passwd", "http://169.254.169.254/", "codedraft-asset:../../secret"):
        with pytest.raises(PermissionError):
            fetcher.fetch(url)
    assert fetcher.requested[0] == PRINT_CSS_URL
    assert fetcher.refused == ["file:///etc/passwd", "http://169.254.169.254/", "codedraft-asset:../../secret"]


# Jobs over HTTP --------------------------------------------------------------------------------


def test_export_job_lifecycle(small_code, make_user, sign_in, app) -> None:
    chair = make_user("chair", small_code)
    client = sign_in(chair)
    response = _start(client, small_code, kind="redline", format="docx", **{"from": "1", "to": "2"})
    assert response.status_code == 303
    job_url = response.headers["Location"]
    assert re.fullmatch(r"/exports/[A-Za-z0-9_-]{32}", job_url)
    page = client.get(job_url).get_data(as_text=True)
    assert "<progress" in page and "dist/exports.js" in page and "<script>" not in page
    state, seen = _wait_done(client, job_url)
    assert state["status"] == "done" and state["progress"] == 100 and seen == sorted(seen)
    assert state["download_url"] == f"{job_url}/download"
    done_page = client.get(job_url).get_data(as_text=True)
    assert f'href="{job_url}/download"' in done_page and 'http-equiv="refresh"' not in done_page

    download = client.get(state["download_url"])
    assert download.status_code == 200
    expected = 'attachment; filename="Small-Code-changes-draft-1-to-draft-2.docx"'
    assert download.headers["Content-Disposition"] == expected
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    with zipfile.ZipFile(io.BytesIO(download.data)) as archive:
        body = archive.read("word/document.xml").decode()
    assert "<w:ins " in body and "<w:del " in body and "technical" in body
    # The file lives in the job's own folder under EXPORT_DIR.
    job = db.session.get(jobs.ExportJob, job_url.rsplit("/", 1)[1])
    assert Path(job.file_path).resolve().parent.parent == Path(app.config["EXPORT_DIR"]).resolve()


def test_waiting_page_refreshes_without_script(small_code, make_user, sign_in) -> None:
    chair = make_user("chair", small_code)
    client = sign_in(chair)
    job = jobs.new_job(small_code, chair, jobs.ExportRequest.build("draft", "md", {"draft": "1"}))
    db.session.commit()  # queued, never submitted: stays waiting
    page = client.get(f"/exports/{job.id}").get_data(as_text=True)
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    assert "Refresh</a>" in page and 'value="0"' in page


def test_hostile_code_title_gives_a_safe_header_and_path(make_code, make_user, sign_in, app) -> None:
    code = make_code("Hostile")
    code.title = '../../x";evil.exe\r\nSet-Cookie: a=b'
    codes.add_clause(codes.add_chapter(code, "Chapter"), kind="section", title="Only", body="Text.")
    chair = make_user("chair", code)
    client = sign_in(chair)
    response = _start(client, code, kind="draft", format="md", draft="live")
    state, _ = _wait_done(client, response.headers["Location"])
    download = client.get(state["download_url"])
    header = download.headers["Content-Disposition"]
    assert "\r" not in header and "\n" not in header and "/" not in header and ";evil" not in header
    name = re.fullmatch(r'attachment; filename="([^"]+)"', header).group(1)
    assert name.endswith(".md") and ".." not in name and "Set-Cookie" not in download.headers.get("Set-Cookie", "")
    assert download.headers["Content-Type"] == "text/markdown; charset=utf-8"  # once, not twice
    export_root = Path(app.config["EXPORT_DIR"]).resolve()
    written = [path.resolve() for path in export_root.rglob("*") if path.is_file()]
    assert written and all(export_root in path.parents for path in written)
    assert not (export_root.parent / "x").exists() and not any(export_root.parent.parent.glob("x*"))


def test_other_peoples_jobs_are_the_same_404_as_missing(small_code, make_code, make_user, sign_in, client) -> None:
    owner = make_user("chair", small_code)
    other_chair = make_user("chair", small_code)
    job = jobs.new_job(small_code, owner, jobs.ExportRequest.build("draft", "md", {"draft": "1"}))
    db.session.commit()
    sign_in(other_chair)
    fake = "A" * len(job.id)
    for suffix in ("", ".json", "/download"):
        missing = client.get(f"/exports/{fake}{suffix}")
        response = client.get(f"/exports/{job.id}{suffix}")
        assert response.status_code == missing.status_code == 404
        # The pages differ only by the path echoed in the language form and per-request tokens.
        assert _without_tokens(response.get_data(as_text=True).replace(job.id, fake)) == _without_tokens(
            missing.get_data(as_text=True))
    # A code you cannot see: its pages and exports are 404 too.
    hidden = make_code("Hidden")
    db.session.commit()
    assert client.get(f"/codes/{hidden.slug}/compare").status_code == 404
    assert client.get(f"/codes/{hidden.slug}/exports").status_code == 404


def test_losing_access_hides_your_own_job(small_code, make_user, sign_in, client) -> None:
    reader = make_user("observer", small_code)
    job = jobs.new_job(small_code, reader, jobs.ExportRequest.build("draft", "md", {"draft": "1"}))
    db.session.commit()
    sign_in(reader)
    assert client.get(f"/exports/{job.id}.json").status_code == 200
    revoke_role(reader, small_code)
    db.session.commit()
    assert client.get(f"/exports/{job.id}.json").status_code == 404


def test_feedback_exports_are_for_chairs_and_admins(small_code, make_user, sign_in, client) -> None:
    reviewer = make_user("reviewer", small_code)
    sign_in(reviewer)
    page = client.get(f"/codes/{small_code.slug}/exports").get_data(as_text=True)
    assert 'value="feedback"' not in page
    assert _start(client, small_code, kind="feedback", format="csv").status_code == 403
    # A chair's feedback job stops being theirs to download once they are no longer chair.
    grant_role(reviewer, small_code, Role.chair)
    db.session.commit()
    response = _start(client, small_code, kind="feedback", format="csv")
    assert response.status_code == 303
    state, _ = _wait_done(client, response.headers["Location"])
    csv_text = client.get(state["download_url"]).data.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("comment_id,clause_number")
    revoke_role(reviewer, small_code)
    grant_role(reviewer, small_code, Role.reviewer)
    db.session.commit()
    assert client.get(state["download_url"]).status_code == 404


def test_export_flood_is_429_with_retry_after(small_code, make_user, sign_in, client, app) -> None:
    app.config["EXPORTS_PER_MINUTE"] = 2
    chair = make_user("chair", small_code)
    sign_in(chair)
    statuses = [_start(client, small_code, kind="draft", format="md", draft="1") for _ in range(3)]
    assert [r.status_code for r in statuses] == [303, 303, 429]
    assert int(statuses[-1].headers["Retry-After"]) > 0
    jobs.runner_for(app).shutdown()


def test_bad_export_requests(small_code, make_user, sign_in, client) -> None:
    chair = make_user("chair", small_code)
    sign_in(chair)
    assert _start(client, small_code, kind="draft", format="exe", draft="1").status_code == 400
    assert _start(client, small_code, kind="nothing", format="md").status_code == 400
    assert _start(client, small_code, kind="draft", format="md", draft="99").status_code == 404
    assert _start(client, small_code, kind="redline", format="html", **{"from": "../1", "to": "2"}).status_code == 400


# Compare page ---------------------------------------------------------------------------------


def test_compare_page_inline_and_side_by_side(small_code, make_user, sign_in, client) -> None:
    sign_in(make_user("observer", small_code))
    inline = client.get(f"/codes/{small_code.slug}/compare?from=1&to=2&layout=inline")
    assert inline.status_code == 200
    html = inline.get_data(as_text=True)
    assert '<select id="compare-from" name="from">' in html and 'value="side"' in html
    for expected in ("Added", "Removed", "Renumbered Commitment 3 → Commitment 2", "Brand new duty", "Retired rule"):
        assert expected in html, expected
    assert re.search(r"<ins class=\"redline-ins\">.*technical", html)
    assert "<dt>Clauses added</dt><dd>1</dd>" in html and "<dt>Clauses removed</dt><dd>1</dd>" in html

    side = client.get(f"/codes/{small_code.slug}/compare?from=1&to=2&layout=side").get_data(as_text=True)
    assert '<table class="redline-sbs">' in side and "Not in this draft" in side
    assert "Renumbered Commitment 3 → Commitment 2" in side

    # Defaults: the last two drafts. Against the live text after a new edit.
    assert "Brand new duty" in client.get(f"/codes/{small_code.slug}/compare").get_data(as_text=True)
    clause = db.session.scalar(select(Clause).where(Clause.title == "Brand new duty"))
    codes.set_clause_body(clause, "A new and stricter duty.")
    db.session.commit()
    live = client.get(f"/codes/{small_code.slug}/compare?from=2&to=live").get_data(as_text=True)
    assert "stricter" in live and "Live text" in live
    assert client.get(f"/codes/{small_code.slug}/compare?from=7&to=2").status_code == 404
    assert client.get(f"/codes/{small_code.slug}/compare?from=x&to=2").status_code == 404


def test_api_compare(small_code, make_user, client) -> None:
    observer = make_user("observer", small_code)
    outsider = make_user()
    tokens = {name: create_api_token(user, name)[1] for name, user in (("observer", observer), ("outsider", outsider))}
    db.session.commit()
    response = client.get(f"/api/v1/codes/{small_code.slug}/compare?from=1&to=2",
                          headers={"Authorization": f"Bearer {tokens['observer']}"})
    assert response.status_code == 200
    data = response.get_json()
    assert data["counts"]["added"] == 1 and data["counts"]["removed"] == 1 and data["counts"]["renumbered"] == 1
    renumbered = [c for c in data["clauses"] if c["renumbered"]]
    assert renumbered[0]["old_number"] == "Commitment 3" and renumbered[0]["new_number"] == "Commitment 2"
    hidden = client.get(f"/api/v1/codes/{small_code.slug}/compare?from=1&to=2",
                        headers={"Authorization": f"Bearer {tokens['outsider']}"})
    missing = client.get("/api/v1/codes/nope/compare?from=1&to=2",
                         headers={"Authorization": f"Bearer {tokens['outsider']}"})
    assert hidden.status_code == missing.status_code == 404 and hidden.get_json() == missing.get_json()


# CLI ------------------------------------------------------------------------------------------


def test_cli_exports(small_code, app, tmp_path) -> None:
    runner = app.test_cli_runner()
    out = tmp_path / "draft.md"
    result = runner.invoke(args=["export", "draft", "--code", small_code.slug, "--draft", "1", "--format", "md",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Copyright policy" in out.read_text() and "Wrote" in result.output

    folder = tmp_path / "folder"
    folder.mkdir()
    result = runner.invoke(args=["export", "redline", "--code", small_code.slug, "--from", "1", "--to", "2",
                                 "--format", "html", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    (written,) = folder.iterdir()
    assert written.name == "Small-Code-changes-draft-1-to-draft-2.html" and "redline-ins" in written.read_text()

    result = runner.invoke(args=["export", "feedback", "--code", small_code.slug, "--format", "json",
                                 "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 0 and '"count": 0' in (tmp_path / "f.json").read_text()

    bad = runner.invoke(args=["export", "draft", "--code", small_code.slug, "--draft", "9", "--format", "md"])
    assert bad.exit_code != 0 and "no draft 9" in bad.output
    assert runner.invoke(args=["export", "draft", "--code", "nope", "--format", "md"]).exit_code != 0


# Feedback dataset -----------------------------------------------------------------------------


def _comment(code: Code, clause: Clause, author: Any, body: str, **fields: Any) -> Any:
    from codedraft.feedback.models import Comment

    comment = Comment(code_id=code.id, clause_id=clause.id, author_id=author.id,
                      category=fields.pop("category", "academia"), organisation=fields.pop("organisation", "Uni"),
                      body=body, **fields)
    db.session.add(comment)
    return comment


def test_feedback_dataset_from_comments(small_code, make_user, sign_in, client) -> None:
    pytest.importorskip("codedraft.feedback.models")
    clause = db.session.scalar(select(Clause).where(Clause.title == "Documentation"))
    author = make_user("reviewer", small_code, category="civil-society")
    _comment(small_code, clause, author, "=HYPERLINK(\"http://evil.test\")", category="civil-society",
             status="rejected", disposition="out_of_scope", disposition_reason="Not in this chapter.")
    _comment(small_code, clause, author, "Please define documentation.", quote="documentation")
    _comment(small_code, clause, author, "Spam spam", hidden=True)
    chair = make_user("chair", small_code)
    office = make_user(office=True)
    db.session.commit()

    def export(user: Any, fmt: str) -> bytes:
        sign_in(user)
        response = _start(client, small_code, kind="feedback", format=fmt)
        state, _ = _wait_done(client, response.headers["Location"])
        assert state["status"] == "done", state
        return client.get(state["download_url"]).data

    csv_text = export(chair, "csv").decode("utf-8-sig")
    assert "'=HYPERLINK" in csv_text and "Civil society" in csv_text and "out_of_scope" in csv_text
    assert "Spam spam" not in csv_text and "Please define documentation." in csv_text
    report = export(chair, "html").decode()
    assert "Not in this chapter." in report and "<svg" in report
    office_json = export(office, "json").decode()
    assert '"count": 3' in office_json and "Spam spam" in office_json


def test_a_job_runs_to_the_end_in_a_process_of_its_own(small_code, make_user, app) -> None:
    """How the production server (gevent) runs jobs: `python -m codedraft.exports.child JOB_ID`."""
    chair = make_user("chair", small_code)
    job = jobs.new_job(small_code, chair, jobs.ExportRequest.build("draft", "md", {"draft": "1"}))
    db.session.commit()
    jobs.run_job_in_child(app, job.id)
    db.session.expire_all()
    done = db.session.get(jobs.ExportJob, job.id)
    assert done.status == "done" and done.progress == 100
    assert Path(done.file_path).resolve().parent.parent == Path(app.config["EXPORT_DIR"]).resolve()
    assert Path(done.file_path).read_text(encoding="utf-8").strip()


def test_a_job_whose_process_dies_is_failed_not_left_waiting(small_code, make_user, app, monkeypatch) -> None:
    chair = make_user("chair", small_code)
    job = jobs.new_job(small_code, chair, jobs.ExportRequest.build("draft", "md", {"draft": "1"}))
    db.session.commit()
    monkeypatch.setattr(jobs, "CHILD_TIMEOUT_S", 0.01)  # killed long before Python has even started
    jobs.run_job_in_child(app, job.id)
    db.session.expire_all()
    failed = db.session.get(jobs.ExportJob, job.id)
    assert failed.status == "failed" and failed.finished and failed.message == "The export failed."


def test_a_job_lost_with_a_stopped_server_is_reported_failed(small_code, make_user, sign_in) -> None:
    chair = make_user("chair", small_code)
    client = sign_in(chair)
    job = jobs.new_job(small_code, chair, jobs.ExportRequest.build("draft", "md", {"draft": "1"}))
    db.session.commit()  # queued, never submitted: the process that took it stopped
    assert client.get(f"/exports/{job.id}.json").get_json()["status"] == "queued"
    job.created_at = job.created_at - jobs.ABANDONED_AFTER - jobs.ABANDONED_AFTER / 10
    db.session.commit()
    state = client.get(f"/exports/{job.id}.json").get_json()
    assert state["status"] == "failed" and state["finished"] and state["message"] == jobs.INTERRUPTED
    assert "please start it again" in client.get(f"/exports/{job.id}").get_data(as_text=True)
