"""An anonymous visitor in a real Chromium: reads the landing page, a published draft, the
redline, the process and the published responses of a public code, and cannot reach one
unpublished thing: every participant route below, the API and a Socket.IO join are tried."""
from __future__ import annotations

from pathlib import Path

import pytest
import socketio

from tests.browser.test_reading import _audit, _require
from tests.conftest import PASSWORD
from tests.public.conftest import (
    SECOND_TEXT,
    UNPUBLISHED,
    UNPUBLISHED_TITLE,
    PublicScene,
    public_scene,  # noqa: F401  (the fixture)
)
from tests.support.live import YClient, http_sign_in, serving

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SECRETS = (UNPUBLISHED, UNPUBLISHED_TITLE, "HIDDEN-COMMENT", "WITHDRAWN-COMMENT", "PRIVATE-TEXT", "Reviewer Person")

pytestmark = pytest.mark.browser


def participant_routes(scene: PublicScene) -> list[str]:
    """Everything a participant reads that the public must not: live text, history, presence,
    unpublished feedback, search, exports, settings, the API, and a private code's draft."""
    slug, uid = scene.code.slug, scene.clause.uid
    hidden = scene.comments["hidden"].id
    return [
        f"/codes/{slug}", f"/codes/{slug}/clauses/{uid}", f"/codes/{slug}/clauses/{uid}/history",
        f"/codes/{slug}/clauses/{uid}/history/replay", f"/codes/{slug}/clauses/{uid}/history/blame",
        f"/codes/{slug}/clauses/{uid}/feedback", f"/codes/{slug}/clauses/{uid}/feedback/{hidden}",
        f"/codes/{slug}/feedback", f"/codes/{slug}/compare?from=2&to=live", f"/codes/{slug}/exports",
        f"/codes/{slug}/search?q=UNPUBLISHED", "/search?q=UNPUBLISHED", f"/codes/{slug}/settings",
        f"/codes/{slug}/public-reading", f"/codes/{slug}/drafts/2", "/notifications",
        f"/codes/{scene.private_code.slug}/drafts/1", f"/public/{scene.private_code.slug}",
        f"/public/{scene.private_code.slug}/drafts/1", f"/public/{scene.private_code.slug}/drafts/1.akn.xml",
        f"/api/v1/codes/{slug}", f"/api/v1/codes/{slug}/clauses/{uid}", f"/api/v1/codes/{slug}/drafts",
        f"/api/v1/codes/{slug}/compare?from=2&to=live", f"/api/v1/codes/{slug}/clauses/{uid}/history",
        f"/api/v1/codes/{slug}/clauses/{uid}/comments", "/api/v1/search?q=UNPUBLISHED",
    ]


def test_an_anonymous_visitor_reads_published_material_and_nothing_else(public_scene: PublicScene,  # noqa: F811
                                                                         tmp_path: Path):
    _require(CHROMIUM, "Debian's chromium")
    _require(AXE, "axe-core (npm)")
    from playwright.sync_api import sync_playwright

    from codedraft.extensions import db
    from codedraft.public import operations as public

    public.publish_round(public_scene.round, public_scene.people["office"])
    db.session.commit()
    with serving(public_scene.app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(bypass_csp=True)  # for axe's injected script only
        page = context.new_page()
        try:
            page.goto(f"{base}/")
            page.get_by_role("heading", name="Codes of practice drafted in public").wait_for()
            assert _audit(page) == []
            page.get_by_role("link", name="Read the latest draft: Second Draft").click()
            page.get_by_role("heading", name="Second Draft", exact=True).wait_for()
            assert SECOND_TEXT in page.locator("#main").inner_text()
            assert _audit(page) == []
            page.screenshot(path=str(tmp_path / "public-draft.png"), full_page=True)
            seen = [page.content()]
            for link, heading in (("Changes between drafts", "Changes between drafts"),
                                  ("Process", "How Open Code of Practice is drafted"),
                                  ("Published feedback", "Published feedback")):
                page.get_by_role("link", name=link, exact=True).first.click()
                page.get_by_role("heading", name=heading, exact=True).wait_for()
                assert _audit(page) == [], link
                seen.append(page.content())
            assert "PUBLISHED-RESPONSE" in seen[-1]
            for html in seen:
                for secret in SECRETS:
                    assert secret not in html

            # The same pages in Polish, chosen by the link in the header.
            page.goto(f"{base}/public/{public_scene.code.slug}/drafts/2")
            page.get_by_role("link", name="Polski").click()
            page.get_by_role("link", name="Zmiany między projektami").wait_for()
            assert "Projekt 2, opublikowany" in page.locator("#main").inner_text()
            page.screenshot(path=str(tmp_path / "public-draft-pl.png"), full_page=True)
            page.goto(f"{base}/public/{public_scene.code.slug}/process?lang=pl")
            page.get_by_role("heading", name="Grupy robocze").wait_for()
            page.screenshot(path=str(tmp_path / "public-process-pl.png"), full_page=True)

            tried = []
            for route in participant_routes(public_scene):
                response = page.goto(base + route)
                assert response is not None
                landed = page.url.removeprefix(base)
                assert response.status in (401, 404) or landed.startswith("/login"), (route, response.status, landed)
                body = page.content()
                for secret in SECRETS:
                    assert secret not in body, (route, secret)
                tried.append(route)
            assert len(tried) == len(participant_routes(public_scene))

            # The browser's own cookies (a session with a CSRF token, no login) open no socket.
            cookies = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
            client = socketio.Client(reconnection=False)
            with pytest.raises(socketio.exceptions.ConnectionError):
                client.connect(base, namespaces=["/collab"], headers={"Cookie": cookies},
                               transports=["websocket"], wait_timeout=10)
            assert not client.connected
            # The control: the same connection with a participant's session is accepted, so the
            # refusal above is the missing login and nothing else.
            participant = YClient(base, http_sign_in(base, public_scene.people["chair"].email, PASSWORD)).connect()
            try:
                assert participant.join(public_scene.clause.uid)["ok"] is True
            finally:
                participant.sio.disconnect()
        finally:
            context.close()
            browser.close()
