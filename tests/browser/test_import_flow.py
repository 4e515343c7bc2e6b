"""The Office runs a drafting round in a real Chromium: import draft 2, publish it, import draft 3
as the next version (correcting a match, assigning a working group), rename the code, renumber,
move and withdraw clauses, publish Draft 3, and export it: the PDF and DOCX carry Draft 3's title
and no drafters' note inside clause text."""
from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from codedraft.accounts import operations as accounts
from codedraft.codes.models import Chapter, Clause, Code
from codedraft.extensions import db
from tests.conftest import PASSWORD, shared_file
from tests.support.live import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("CODEDRAFT_SCREENSHOTS", "/tmp/codedraft-screenshots"))
THIRD_TITLE = "Third Draft of the General-Purpose AI Code of Practice"

pytestmark = pytest.mark.browser


@pytest.fixture
def office_browser(app) -> Iterator[tuple[object, str]]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Debian's chromium is missing at {CHROMIUM}")
        pytest.skip(f"Debian's chromium is missing at {CHROMIUM}; run `make test` to install it")
    from playwright.sync_api import sync_playwright

    accounts.create_user("office@import.test", "The Office", PASSWORD, is_office=True)
    db.session.commit()
    with serving(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # the data-confirm questions
        # Upper bounds only (each wait ends as soon as its element or page is there), wide enough
        # for a machine busy with other work: one run under a heavy load needed more than 60 s.
        page.set_default_timeout(180_000)
        try:
            yield page, base
        finally:
            context.close()
            browser.close()


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"import-{name}.png"), full_page=False)


def _upload(page, path: Path) -> None:
    page.get_by_label("File").set_input_files(str(path))
    page.get_by_role("button", name="Upload and preview").click()
    page.locator("#import-summary").wait_for()


def _apply(page, base: str) -> None:
    page.get_by_role("button", name="Apply the import").click()
    page.locator("[data-import-progress]").wait_for(state="visible")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/codes/[^/]+$"), timeout=300_000)


def _clause(code: Code, kind: str, number: str) -> Clause:
    db.session.expire_all()
    return db.session.scalar(select(Clause).where(Clause.code_id == code.id, Clause.kind == kind,
                                                  Clause.number == number, Clause.withdrawn.is_(False)))


def _export(page, base: str, slug: str, draft: int, fmt: str) -> bytes:
    """Start an export job with the browser's own session and wait for its file."""
    page.goto(f"{base}/codes/{slug}/exports")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    started = page.request.post(f"{base}/codes/{slug}/exports", form={
        "csrf_token": token, "kind": "draft", "format": fmt, "draft": str(draft)}, max_redirects=0)
    assert started.status == 303, started.text()[:300]
    job_url = started.headers["location"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = page.request.get(f"{base}{job_url}.json" if job_url.startswith("/") else f"{job_url}.json").json()
        if state["finished"]:
            assert state["status"] == "done", state
            return page.request.get(f"{base}{state['download_url']}").body()
        page.wait_for_timeout(250)
    raise AssertionError("the export did not finish within 300 s")


def test_the_office_runs_a_drafting_round_in_the_browser(office_browser, tmp_path):
    page, base = office_browser
    draft2, draft3 = (shared_file("corpus", name) for name in
                      ("gpai-cop-draft2-2024-12.md", "gpai-cop-draft3-2025-03.md"))
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill("office@import.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")

    # Draft 2 as a new code: preview, apply, publish.
    page.get_by_role("link", name="Import a document as a new code").click()
    _upload(page, draft2)
    assert "Found 8 chapters" in page.locator("#import-summary").inner_text()
    _shot(page, "1-preview-draft2")
    _apply(page, base)
    code = db.session.scalar(select(Code))
    page.get_by_label("Publish the live text as").fill("Second Draft")
    page.get_by_role("button", name="Publish draft").click()
    page.wait_for_url(re.compile(r".*/drafts/1$"))

    # Draft 3 as the next version: correct a match, assign a working group, apply.
    page.goto(f"{base}/codes/{code.slug}")
    page.get_by_role("link", name="Import the next version (Markdown or Word)").click()
    _upload(page, draft3)
    assert "Found 4 chapters" in page.locator("#import-summary").inner_text()
    old_public = _clause(code, "commitment", "21")  # "Public transparency" in draft 2
    row = page.locator('tr[data-key="commitment:II.16"]')
    assert row.locator("select").input_value() == old_public.uid  # proposed: same title
    assert "same title" in row.locator(".match-reason").inner_text()
    row.locator("select").select_option("new")  # the Office says it is a new commitment
    page.locator('input[name="newgroup-chapter:safety-and-security"]').fill("Working Groups 2-4")
    _shot(page, "2-preview-draft3-corrected")
    _apply(page, base)
    _shot(page, "3-overview-after-draft3")
    db.session.expire_all()
    assert db.session.get(Clause, old_public.id).withdrawn  # nothing continues it now
    safety = db.session.scalar(
        select(Chapter).where(Chapter.code_id == code.id, Chapter.title == "Safety and Security"))
    assert safety.working_group.name == "Working Groups 2-4"
    assert "Working Groups 2-4" in page.locator("main").inner_text()

    # Rename the code.
    page.goto(f"{base}/codes/{code.slug}/settings")
    page.get_by_label("Title of the code").fill(THIRD_TITLE)
    page.get_by_role("button", name="Rename").first.click()
    page.get_by_role("heading", name=f"Settings of {THIRD_TITLE}").wait_for()

    # Renumber a clause by hand and move it up; withdraw another.
    public = _clause(code, "commitment", "II.16")
    page.goto(f"{base}/codes/{code.slug}/clauses/{public.uid}")
    page.get_by_label("Number (empty: automatic)").fill("II.15a")
    page.get_by_role("button", name="Save title and number").click()
    page.get_by_role("heading", name="Commitment II.15a. Public transparency").wait_for()
    page.get_by_role("button", name="Move up").click()
    page.get_by_text("Changes to its structure").wait_for()
    _shot(page, "4-clause-structure-history")
    documentation = _clause(code, "commitment", "II.15")
    db.session.expire_all()
    moved = db.session.get(Clause, public.id)
    assert moved.position < db.session.get(Clause, documentation.id).position
    withdrawn = _clause(code, "measure", "II.4.14")
    page.goto(f"{base}/codes/{code.slug}/clauses/{withdrawn.uid}")
    page.get_by_role("button", name="Withdraw").click()
    page.locator(".withdrawn-badge").wait_for()

    # The drafters' note of a measure is beside it, not in its text.
    measure = _clause(code, "measure", "II.4.1")
    page.goto(f"{base}/codes/{code.slug}/clauses/{measure.uid}")
    assert "Summary of changes from the second draft" in page.locator(".drafters-notes").inner_text()
    assert "Summary of changes" not in page.locator("#clause-text").inner_text()
    _shot(page, "5-clause-with-notes")

    # Publish Draft 3 and export it.
    page.goto(f"{base}/codes/{code.slug}")
    page.get_by_label("Publish the live text as").fill("Third Draft")
    page.get_by_role("button", name="Publish draft").click()
    page.wait_for_url(re.compile(r".*/drafts/2$"))
    docx = _export(page, base, code.slug, 2, "docx")
    pdf = _export(page, base, code.slug, 2, "pdf")
    from docx import Document

    word = Document(io.BytesIO(docx))
    text = "\n".join(paragraph.text for paragraph in word.paragraphs)
    assert word.paragraphs[0].text == THIRD_TITLE and "Second Draft" not in word.paragraphs[0].text
    for marker in ("Summary of changes", "Explanation of changes", "Potential material for future Recital", "<!--"):
        assert marker not in text, marker
    pdf_path = tmp_path / "draft3.pdf"
    pdf_path.write_bytes(pdf)
    import subprocess

    pdf_text = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout
    assert THIRD_TITLE in " ".join(pdf_text.split())
    for marker in ("Summary of changes", "Potential material for future Recital"):
        assert marker not in pdf_text, marker
    # Draft 2's exports still carry Draft 2's title.
    old = Document(io.BytesIO(_export(page, base, code.slug, 1, "docx")))
    assert old.paragraphs[0].text.startswith("Second Draft of the General-Purpose AI Code of Practice")
