"""Writing without Markdown in a real Chromium: the toolbar's buttons and shortcuts type the
markup, live preview hides it away from the cursor, authorship colours come on demand, and the
toolbar is keyboard accessible and labelled (axe finds no serious violation)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_coediting import EDITOR_TEXT, PASSWORD, SEED, editor_text, seed_database, wait_until

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
_SCREENSHOT_DIR = os.environ.get("CODEDRAFT_SCREENSHOT_DIR")


def _open(chromium: Any, base: str, seeded: dict[str, Any]) -> Any:
    page = chromium.new_context(bypass_csp=True).new_page()  # bypass only to inject axe below
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill("alice@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/codes/{seeded['slug']}/clauses/{seeded['uid']}")
    page.wait_for_selector('#clause-editor[data-editable="true"]', timeout=15_000)
    return page


def _select_word(page: Any, word: str) -> None:
    start = SEED.index(word)
    page.evaluate(f"""() => {{ const view = window.codedraftEditor.current().view;
        view.dispatch({{selection: {{anchor: {start}, head: {start + len(word)}}}}}); view.focus() }}""")


def test_toolbar_writes_markdown_and_live_preview_hides_it(chromium, live_process):
    seeded = seed_database(live_process)
    live_process.start()
    page = _open(chromium, live_process.base, seeded)
    toolbar = page.get_by_role("toolbar", name="Formatting")
    toolbar.wait_for()

    # Synced and editable: the formatting buttons are on.
    wait_until(page, "document.querySelector('#editor-toolbar button[data-command=\"bold\"]')"
                     ".getAttribute('aria-disabled') === 'false'")
    _select_word(page, "publish")
    toolbar.get_by_role("button", name="Bold").click()
    wait_until(page, f"{EDITOR_TEXT}.includes('**publish**')")
    # Positions shifted by the four asterisks: select the next word by where it is now.
    page.evaluate("""() => { const view = window.codedraftEditor.current().view;
        const at = view.state.doc.toString().indexOf('model');
        view.dispatch({selection: {anchor: at, head: at + 5}}); view.focus() }""")
    page.keyboard.press("Control+i")
    wait_until(page, f"{EDITOR_TEXT}.includes('*model*')")
    toolbar.get_by_role("button", name="Bullet list").click()
    wait_until(page, f"{EDITOR_TEXT}.startsWith('- ')")
    assert editor_text(page) == "- Signatories **publish** a *model* card."

    # A second line, then live preview: away from the cursor the markup is hidden.
    page.keyboard.press("Control+End")
    page.keyboard.type("\nSecond line.")
    toolbar.get_by_role("button", name="Live preview").click()
    assert toolbar.get_by_role("button", name="Live preview").get_attribute("aria-pressed") == "true"
    first_line = page.locator("#clause-editor .cm-line").first
    wait_until(page, "!document.querySelector('#clause-editor .cm-line').textContent.includes('**')")
    assert "Signatories publish a model card." in first_line.inner_text()
    assert page.locator("#clause-editor .cm-md-strong").count() >= 1
    # On the cursor's line the markup is back, to be edited.
    page.evaluate("() => window.codedraftEditor.current().view.dispatch({selection: {anchor: 3}})")
    wait_until(page, "document.querySelector('#clause-editor .cm-line').textContent.includes('**publish**')")

    # Keyboard: one tab stop; arrows move between the buttons.
    toolbar.get_by_role("button", name="Bold").focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.command") == "italic"
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.dataset.command") == "authors"
    assert page.locator("#editor-toolbar button[tabindex='0']").count() == 1

    # Authorship colours on demand, once the edits are saved.
    wait_until(page, "document.querySelector('#clause-editor').dataset.unacked === '0'")
    toolbar.get_by_role("button", name="Who wrote what").click()
    wait_until(page, "document.querySelectorAll('#clause-editor .cm-author').length > 0")
    assert "Alice Author" in page.locator("[data-toolbar-status]").inner_text()
    titles = page.evaluate("[...document.querySelectorAll('#clause-editor .cm-author')].map(e => e.title)")
    assert "Alice Author" in titles and "Imported text" in titles

    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("""async () => {
        const r = await axe.run(document.querySelector('.collab-panel'), {resultTypes: ['violations']});
        return r.violations.filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id) }""")
    assert violations == []
    if _SCREENSHOT_DIR:
        page.screenshot(path=str(Path(_SCREENSHOT_DIR) / "editor-toolbar.png"))
        page.goto(f"{live_process.base}/codes/{seeded['slug']}/clauses/{seeded['uid']}/history")
        page.get_by_role("heading", name="Changes").first.wait_for()
        page.screenshot(path=str(Path(_SCREENSHOT_DIR) / "history.png"), full_page=True)
