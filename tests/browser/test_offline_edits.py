"""Offline edits survive closing the browser: typed while the server is down, kept in IndexedDB,
sent when the clause is opened again in a new browser on the same profile; closing a page with
unsaved edits asks first (beforeunload)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.browser.test_coediting import (
    PASSWORD,
    SEED,
    editor_text,
    seed_database,
    stored_body,
    type_at_end,
    wait_until,
)
from tests.support.live import wait_for

pytestmark = pytest.mark.browser

STORED_UPDATES = """async (name) => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open(name)
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
  try {
    if (!db.objectStoreNames.contains('updates')) return 0
    return await new Promise((resolve, reject) => {
      const request = db.transaction('updates').objectStore('updates').count()
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
  } finally { db.close() }
}"""


def _open_clause(context: Any, base: str, seeded: dict[str, Any], email: str = "alice@example.test") -> Any:
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/codes/{seeded['slug']}/clauses/{seeded['uid']}")
    return page


def _profile_launcher(playwright: Any, profile: Path) -> Callable[[], Any]:
    """Starts Chromium on one profile each time it is called: a browser closed and opened again."""
    return lambda: playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def _type_with_the_server_down(page: Any, live_process: Any, database: str, type_text: Callable[[], None]) -> None:
    """Kill the server, type (``type_text``) while the page is offline, and wait until the
    unacknowledged edit is kept in the clause's IndexedDB database."""
    live_process.kill()
    wait_until(page, "document.querySelector('#clause-editor').dataset.collabStatus === 'offline'")
    before = page.evaluate(STORED_UPDATES, database)
    type_text()
    wait_until(page, "Number(document.querySelector('#clause-editor').dataset.unacked) > 0")
    wait_for(lambda: page.evaluate(STORED_UPDATES, database) > before, message="the edit stored in IndexedDB")


def _reopen_after_restart(live_process: Any, launch: Callable[[], Any], seeded: dict[str, Any],
                          email: str = "alice@example.test") -> tuple[Any, Any]:
    """Start the server again, open the browser again on the same profile, and open the clause
    as ``email``: returns (browser, page) once the page is synced and has nothing unsent."""
    live_process.start()
    browser = launch()
    try:
        page = _open_clause(browser, live_process.base, seeded, email)
        wait_until(page, "document.querySelector('#clause-editor').dataset.collabStatus === 'synced'", 30_000)
        wait_until(page, "document.querySelector('#clause-editor').dataset.unacked === '0'")
    except BaseException:
        browser.close()
        raise
    return browser, page


def test_offline_edits_survive_closing_the_browser(live_process, tmp_path: Path):
    require_chromium()
    from playwright.sync_api import sync_playwright

    seeded = seed_database(live_process)
    live_process.start()
    profile = tmp_path / "profile"
    database = f"codedraft-clause-{seeded['uid']}"
    with sync_playwright() as playwright:
        launch = _profile_launcher(playwright, profile)
        first = launch()
        page = _open_clause(first, live_process.base, seeded)
        page.wait_for_selector('#clause-editor[data-editable="true"][data-offline-copy="true"]', timeout=15_000)
        assert editor_text(page) == SEED

        _type_with_the_server_down(page, live_process, database, lambda: type_at_end(page, " kept offline ✍"))
        assert "kept offline ✍" in editor_text(page)

        # Closing the page with unsaved edits asks first; staying keeps the page.
        with page.expect_event("dialog") as asked:
            page.close(run_before_unload=True)
        assert asked.value.type == "beforeunload"
        asked.value.dismiss()
        assert not page.is_closed()
        first.close()  # the whole browser goes, with the unsent edits only in its profile

        second, page = _reopen_after_restart(live_process, launch, seeded)
        try:
            wait_for(lambda: stored_body(seeded) == SEED + " kept offline ✍", timeout=20,
                     message="the offline edits reach the database")
            assert editor_text(page) == SEED + " kept offline ✍"
            # Nothing is duplicated on a further visit.
            page.reload()
            page.wait_for_selector('#clause-editor[data-editable="true"]', timeout=15_000)
            wait_until(page, "document.querySelector('#clause-editor').dataset.collabStatus === 'synced'", 30_000)
            assert editor_text(page) == SEED + " kept offline ✍" == stored_body(seeded)
        finally:
            second.close()


def test_a_reviewers_offline_suggestion_survives_closing_the_browser(live_process, tmp_path: Path):
    """A reviewer may only suggest, and keeps an offline copy too: a suggestion typed while the
    server is down reaches the chairs once the clause is opened again, and the text is unchanged."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    from tests.browser.test_suggestions_browser import SEED as SUGGESTION_SEED
    from tests.browser.test_suggestions_browser import TEXT, place
    from tests.browser.test_suggestions_browser import seed_database as seed_with_reviewer

    seeded = seed_with_reviewer(live_process)
    live_process.start()
    profile = tmp_path / "profile"
    database = f"codedraft-clause-{seeded['uid']}"
    with sync_playwright() as playwright:
        launch = _profile_launcher(playwright, profile)
        first = launch()
        page = _open_clause(first, live_process.base, seeded, "reviewer@example.test")
        page.wait_for_selector('#clause-editor[data-offline-copy="true"]', timeout=15_000)
        wait_until(page, "document.querySelector('#clause-editor').dataset.mode === 'suggesting'")
        wait_until(page, "document.querySelector('#clause-editor').dataset.collabStatus === 'synced'")

        def suggest() -> None:
            place(page, len(SUGGESTION_SEED))
            page.keyboard.type(" Offline idea.", delay=20)

        _type_with_the_server_down(page, live_process, database, suggest)
        first.close()

        second, _page = _reopen_after_restart(live_process, launch, seeded, "reviewer@example.test")
        second.close()

        # The chair, in a browser of their own, sees the suggestion; the text itself is unchanged.
        chair_browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            chair = _open_clause(chair_browser.new_context(), live_process.base, seeded, "chair@example.test")
            wait_until(chair, f"{TEXT}.includes('Offline idea.')", 30_000)
            wait_until(chair, "document.querySelectorAll('#clause-editor .cm-suggestion').length > 0")
            assert stored_body(seeded) == SUGGESTION_SEED
        finally:
            chair_browser.close()
