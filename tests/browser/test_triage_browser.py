"""A chair's triage of a round in a real Chromium: open the digest, answer a campaign group with
a template, the Office publishes the round's responses, and the annex shows them; axe-core
finds no serious or critical accessibility violation on the new pages."""
from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from codedraft.codes import operations as codes
from codedraft.drafts.operations import publish_draft
from codedraft.extensions import db
from codedraft.feedback import install, triage
from codedraft.feedback import operations as ops
from codedraft.timeutil import utcnow
from tests.conftest import PASSWORD
from tests.support.live import serving

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
CAMPAIGN = ("On behalf of our members we ask that the summary of training data names every crawler used "
            "and says how machine-readable opt-outs were honoured.")

pytestmark = pytest.mark.browser


def _require(path: Path, what: str) -> None:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing at {path}; `make test` installs it")
        pytest.skip(f"{what} is missing at {path}; run `make test` to install it")


@pytest.fixture
def round_scene(app, make_code, make_user):
    install(app)
    code = make_code("Triage Code")
    group = codes.add_working_group(code, "Copyright WG")
    chapter = codes.add_chapter(code, "Copyright", working_group=group)
    clause = codes.add_clause(chapter, kind="measure", number="2.1", title="Opt-out compliance",
                              body="Signatories shall honour machine-readable opt-outs.")
    draft = publish_draft(code, "Second Draft")
    feedback_round = ops.open_round(code, draft, utcnow() + timedelta(days=7), name="Round on the Second Draft",
                                    opens_at=utcnow() - timedelta(days=1))
    chair = make_user("chair", code, email="chair@example.test", name="Chris Chair", group=group)
    office = make_user(office=True, email="office@example.test", name="Office Person")
    for n in range(5):
        author = make_user("reviewer", code, name=f"Signatory {n}", category="rightsholder")
        author.organisation.name = f"Rights Society {n}"
        text = CAMPAIGN if n == 0 else CAMPAIGN.replace("our members", f"the {n} members of our society")
        ops.post_comment(code, clause, author, text)
    other = make_user("reviewer", code, name="Ada Academic", category="academia")
    ops.post_comment(code, clause, other, "Small research labs need a lighter template for the summary.")
    triage.add_template(code, chair, "Opt-outs documented",
                        "The next draft asks providers to document how they honour opt-outs.", "partly_accepted")
    db.session.commit()
    return {"code": code, "clause": clause, "round": feedback_round, "chair": chair, "office": office}


@pytest.fixture
def browser_at(app) -> Iterator[tuple[object, str]]:
    _require(CHROMIUM, "Debian's chromium")
    _require(AXE, "axe-core (npm)")
    from playwright.sync_api import sync_playwright

    with serving(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser, base
        finally:
            browser.close()


def _audit(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['nodes'][:3]}" for v in result if v["impact"] in ("serious", "critical")]


def _signed_in(browser, base: str, email: str):
    context = browser.new_context(bypass_csp=True)  # only so that axe can be injected for the audit
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm questions: the person agrees
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    return context, page


def test_a_chair_triages_a_round_and_the_office_publishes_the_annex(round_scene, browser_at, tmp_path):
    browser, base = browser_at
    code, clause, feedback_round = round_scene["code"], round_scene["clause"], round_scene["round"]
    round_url = f"{base}/codes/{code.slug}/rounds/{feedback_round.id}"

    context, page = _signed_in(browser, base, "chair@example.test")
    page.goto(round_url)
    page.get_by_role("button", name="Group campaigns and find themes").click()
    page.get_by_text("1 campaign groups (5 of 6 comments)").wait_for()

    page.get_by_role("link", name="Digest").first.click()
    page.get_by_role("heading", name="Digest of Copyright").wait_for()
    assert page.locator("table.fb-category-chart svg").count() >= 1
    assert _audit(page) == []
    page.get_by_role("link", name=clause.heading).click()
    page.get_by_role("heading", name=f"Digest of {clause.heading}").wait_for()
    assert page.get_by_text("What each stakeholder group asked for").count() == 1
    assert _audit(page) == []
    page.screenshot(path=str(tmp_path / "clause-digest.png"), full_page=True)

    page.locator("table.fb-groups a").first.click()
    page.get_by_role("heading", name=f"Campaign group of 5 comments on {clause.heading}").wait_for()
    assert page.get_by_text("Rights Society 4").count() == 1
    page.get_by_label("Answer template").select_option(label="Opt-outs documented")
    page.get_by_role("button", name="Save the response").click()
    page.get_by_text("1 answered; the responses stay with the drafting team").wait_for()
    assert "partly accepted" in page.locator(".fb-response").inner_text().lower()
    assert _audit(page) == []
    page.get_by_role("link", name="Response table").click()
    page.get_by_role("heading", name="Response table").wait_for()
    assert "partly accepted" in page.locator('tr[data-target^="group:"]').inner_text().lower()
    assert "not answered" in page.locator('tr[data-target^="comment:"]').inner_text()
    assert _audit(page) == []
    page.screenshot(path=str(tmp_path / "response-table.png"), full_page=True)
    context.close()

    ops.close_round(db.session.get(type(feedback_round), feedback_round.id))
    db.session.commit()

    context, page = _signed_in(browser, base, "office@example.test")
    page.goto(round_url)
    page.get_by_role("button", name="Publish the responses").click()
    page.get_by_role("heading", name="Annex: responses to Round on the Second Draft").wait_for()
    annex = page.locator("table.fb-annex").inner_text()
    assert "Shared text of 5 submissions" in annex and CAMPAIGN in annex
    assert "Rights Society 0" in annex and "Rights Society 4" in annex
    assert "document how they honour opt-outs" in annex and "Partly accepted" in annex
    assert page.locator("[data-round-state]").first.get_attribute("data-round-state") == "published"
    assert _audit(page) == []
    page.screenshot(path=str(tmp_path / "annex.png"), full_page=True)
    context.close()
