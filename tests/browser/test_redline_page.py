"""The draft 2 -> 3 redline page in a real Chromium: the clause text keeps its Markdown structure
(lists, paragraphs, no literal ``####``), and the reader goes from change to change with the
toolbar's buttons and with the keyboard."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from codedraft.accounts.operations import create_user
from codedraft.extensions import db
from codedraft.importer.operations import import_document
from tests.exports.conftest import CORPUS
from tests.support.live import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "redline reader 2026"
SCREENSHOTS = Path(os.environ.get("CODEDRAFT_SCREENSHOT_DIR", "")) if os.environ.get("CODEDRAFT_SCREENSHOT_DIR") else None

pytestmark = pytest.mark.browser


@pytest.fixture
def redline_browser(app) -> Iterator[tuple[object, str, str]]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is missing; run `make test` to install it")
    for name in ("gpai-cop-draft2-2024-12.md", "gpai-cop-draft3-2025-03.md"):
        if not (CORPUS / name).exists():
            pytest.skip(f"the real drafts are not present beside the project: {name}")
    from playwright.sync_api import sync_playwright

    create_user("office.redline@example.test", "Office Reader", PASSWORD, is_office=True)
    second = import_document((CORPUS / "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8"),
                             draft_name="Second Draft")
    import_document((CORPUS / "gpai-cop-draft3-2025-03.md").read_text(encoding="utf-8"), code=second.code,
                    draft_name="Third Draft")
    db.session.commit()
    slug = second.code.slug
    with serving(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        try:
            page.goto(f"{base}/login")
            page.get_by_label("E-mail").fill("office.redline@example.test")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base}/")
            yield page, base, slug
        finally:
            browser.close()


def test_redline_page_keeps_structure_and_steps_through_changes(redline_browser):
    page, base, slug = redline_browser
    page.goto(f"{base}/codes/{slug}/compare?from=1&to=2")
    redline = page.locator("[data-redline]")
    redline.wait_for()
    # Structure: lists and paragraphs are elements, and no Markdown heading marker is shown.
    assert redline.locator("li").count() > 100
    assert redline.locator(".redline-text p").count() > 300
    assert "####" not in redline.inner_text()
    assert page.locator(".redline-index li").count() > 50

    toolbar = page.get_by_role("toolbar", name="Move from change to change")
    toolbar.wait_for()
    status = toolbar.locator("[data-change-status]")
    toolbar.get_by_role("button", name="Next change").click()
    page.wait_for_function("document.activeElement.classList.contains('redline-current')")
    assert status.inner_text().startswith("Change 1 of ")
    first = page.evaluate("document.activeElement.textContent")

    page.keyboard.press("n")
    page.wait_for_function("document.querySelector('[data-change-status]').textContent.startsWith('Change 2 of')")
    second = page.evaluate("document.activeElement.textContent")
    assert page.evaluate("document.querySelectorAll('.redline-current').length") == 1
    total = int(status.inner_text().rsplit(" ", 1)[1])
    assert total > 500

    page.keyboard.press("p")
    page.wait_for_function("document.querySelector('[data-change-status]').textContent.startsWith('Change 1 of')")
    assert page.evaluate("document.activeElement.textContent") == first != second
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "redline-page.png"))

    # "Changed clauses only" leaves the unchanged ones out; the index still leads to each one.
    page.goto(f"{base}/codes/{slug}/compare?from=1&to=2&changed_only=1")
    link = page.locator(".redline-index a").nth(3)
    target = link.get_attribute("href")
    link.click()
    assert page.locator(target).count() == 1
