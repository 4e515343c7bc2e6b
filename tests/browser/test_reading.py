"""A reader in a real Chromium: sign in, open a code, a clause and a draft; axe-core finds no
serious or critical accessibility violation on those pages."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from codedraft.demo import DEMO_PASSWORD, seed_demo
from codedraft.extensions import db
from tests.support.live import serving

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def _require(path: Path, what: str) -> None:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing at {path}; `make test` installs it")
        pytest.skip(f"{what} is missing at {path}; run `make test` to install it")


@pytest.fixture
def reading_browser(app) -> Iterator[tuple[object, str]]:
    _require(CHROMIUM, "Debian's chromium")
    _require(AXE, "axe-core (npm)")
    from playwright.sync_api import sync_playwright

    seed_demo()
    db.session.commit()
    with serving(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # axe is injected as a script tag, which the app's CSP forbids (rightly): bypass it for the audit only.
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        try:
            yield page, base
        finally:
            context.close()
            browser.close()


def _audit(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['nodes'][:3]}" for v in result if v["impact"] in ("serious", "critical")]


def test_sign_in_read_a_code_a_clause_and_a_draft(reading_browser):
    page, base = reading_browser
    page.goto(f"{base}/login")
    assert _audit(page) == []
    page.get_by_label("E-mail").fill("provider@demo.test")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    assert _audit(page) == []

    page.get_by_role("link", name="Demo Code of Practice for Model Releases").click()
    page.get_by_role("heading", name="Demo Code of Practice for Model Releases").wait_for()
    assert page.get_by_text("Working Group 1: Openness").count() >= 1
    assert _audit(page) == []

    page.get_by_role("link", name="Commitment 1. Model cards").click()
    page.get_by_role("heading", name="Commitment 1. Model cards").wait_for()
    assert "publishing a model card" in page.locator("#clause-text").inner_text()
    assert _audit(page) == []

    page.get_by_role("link", name="First Draft").first.click()
    page.get_by_role("heading", name="First Draft", exact=True).wait_for()
    assert page.locator("article.clause").count() == 20
    assert _audit(page) == []


def test_keyboard_reaches_the_main_content_first(reading_browser):
    page, base = reading_browser
    page.goto(f"{base}/login")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to content"
