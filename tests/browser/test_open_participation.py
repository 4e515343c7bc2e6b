"""In a real Chromium: a stakeholder applies, the Office approves, the stakeholder comments; and
a sign-in round trip through a real OpenID Connect provider on 127.0.0.1."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from codedraft.drafts.models import Draft
from codedraft.extensions import db
from codedraft.feedback import operations as feedback
from codedraft.feedback.models import Comment
from codedraft.timeutil import utcnow
from tests.browser.test_reading import _audit, _require
from tests.conftest import PASSWORD
from tests.public.conftest import (
    PublicScene,
    public_scene,  # noqa: F401  (the fixture)
)
from tests.support.live import serving
from tests.support.oidc_provider import Provider
from tests.test_oidc import provider, site  # noqa: F401  (the fixtures)

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/")


def test_apply_the_office_approves_and_the_stakeholder_comments(public_scene: PublicScene,  # noqa: F811
                                                                tmp_path: Path):
    _require(CHROMIUM, "Debian's chromium")
    _require(AXE, "axe-core (npm)")
    from playwright.sync_api import sync_playwright

    second = db.session.get(Draft, public_scene.round.draft_id)
    feedback.open_round(public_scene.code, second, utcnow() + timedelta(days=7), name="Open round")
    db.session.commit()
    slug, uid = public_scene.code.slug, public_scene.clause.uid
    with serving(public_scene.app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        applicant = browser.new_context(bypass_csp=True).new_page()  # bypass for axe's injected script only
        office = browser.new_context().new_page()
        try:
            applicant.goto(f"{base}/")
            applicant.get_by_role("link", name="Apply to take part").click()
            applicant.get_by_role("heading", name="Apply to take part").wait_for()
            assert _audit(applicant) == []
            applicant.get_by_label("Your name").fill("Ada Applicant")
            applicant.get_by_label("E-mail").fill("ada@example.test")
            applicant.get_by_label("Password", exact=True).fill("long enough secret")
            applicant.get_by_label("Password again").fill("long enough secret")
            applicant.get_by_label("Organisation (leave empty if you speak for yourself)").fill("Open Models Alliance")
            applicant.get_by_label("Stakeholder category").select_option("open-source")
            applicant.get_by_role("button", name="Apply").click()
            applicant.get_by_role("heading", name="Application received").wait_for()

            sign_in(applicant, base, "ada@example.test", "long enough secret")
            applicant.get_by_text("The Office has not decided on your application yet.").wait_for()
            assert applicant.goto(f"{base}/codes/{slug}/clauses/{uid}").status == 404

            sign_in(office, base, public_scene.people["office"].email)
            office.get_by_role("link", name="Applications").click()
            office.get_by_role("heading", name="Ada Applicant · ada@example.test").wait_for()
            office.get_by_label("Confirmed category").select_option("civil-society")
            office.get_by_role("button", name="Approve as reviewer").click()
            office.get_by_text("Ada Applicant is now a reviewer.").wait_for()
            office.screenshot(path=str(tmp_path / "office-queue.png"), full_page=True)

            applicant.goto(f"{base}/codes/{slug}/clauses/{uid}")
            applicant.get_by_label("Your comment (Markdown)").fill("We would keep the documentation for ten years.")
            applicant.get_by_role("button", name="Post", exact=True).click()
            applicant.locator(".fb-panel").get_by_text("We would keep the documentation for ten years.").wait_for()
            applicant.screenshot(path=str(tmp_path / "stakeholder-commented.png"), full_page=True)
        finally:
            browser.close()
    db.session.expire_all()
    comment = db.session.query(Comment).filter(Comment.body.like("We would keep%")).one()
    assert (comment.organisation, comment.category) == ("Open Models Alliance", "civil-society")


def test_an_openid_connect_sign_in_round_trip(site, provider: Provider, tmp_path: Path):  # noqa: F811
    _require(CHROMIUM, "Debian's chromium")
    from playwright.sync_api import sync_playwright

    _app, base = site
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            page.goto(f"{base}/login")
            page.get_by_role("link", name="Sign in with Test Login").click()
            page.wait_for_url(f"{base}/")
            assert page.get_by_text("Eva Provider").count() >= 1  # the header names who is signed in
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(f"{base}/login")
            provider.tamper = True
            page.get_by_role("link", name="Sign in with Test Login").click()
            page.get_by_text("did not complete").wait_for()
            page.screenshot(path=str(tmp_path / "oidc-refused.png"), full_page=True)
            assert page.get_by_text("Eva Provider").count() == 0
        finally:
            browser.close()
    assert provider.tokens_issued == 2
