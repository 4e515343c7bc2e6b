"""SECURITY-CASES 34, the browser half: a hostile presence (a CSS declaration as colour, another
person's name) sent by a reviewer's socket changes nothing in a chair's editor page."""
from __future__ import annotations

import pytest

from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.collab.core import AwarenessEntry, awareness_message
from codedraft.extensions import db
from tests.browser.test_coediting import wait_until
from tests.conftest import PASSWORD
from tests.support.live import YClient, http_sign_in, serving

pytestmark = pytest.mark.browser

HOSTILE = {
    "user": {"name": "Chiara Chair", "color": "red;position:fixed;inset:0;z-index:99999;background:red",
             "colorLight": "red;position:fixed;inset:0"},
    "cursor": {"anchor": {"type": None, "tname": "body", "item": None, "assoc": 0},
               "head": {"type": None, "tname": "body", "item": None, "assoc": 0}},
}
LAYOUT = """() => {
  const box = document.querySelector('#clause-editor .cm-editor').getBoundingClientRect()
  const centre = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2)
  return {x: box.x, y: box.y, width: box.width, height: box.height,
          centreInEditor: Boolean(centre && centre.closest('#clause-editor')),
          fixed: Array.from(document.querySelectorAll('body *')).filter(
            (element) => getComputedStyle(element).position === 'fixed').length,
          styles: Array.from(document.querySelectorAll('[style]')).map((element) => element.getAttribute('style'))}
}"""


def test_security_case_34_a_hostile_presence_changes_nothing_in_the_editor(chromium, app, make_code, make_user):
    code = make_code("Presence Code")
    clause = codes.add_clause(codes.add_chapter(code, "Chapter"), kind="commitment", number="1", title="Cards",
                              body="Signatories publish a model card.")
    chair = make_user("chair", code, name="Chiara Chair", email="chair@presence.test")
    reviewer = make_user("reviewer", code, name="Rex Reviewer", email="reviewer@presence.test")
    db.session.commit()
    reviewer_colour = db.session.get(User, reviewer.id).colour
    with serving(app) as base:
        page = chromium.new_context().new_page()
        page.goto(f"{base}/login")
        page.get_by_label("E-mail").fill(chair.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/codes/{code.slug}/clauses/{clause.uid}")
        page.wait_for_selector('#clause-editor[data-editable="true"]', timeout=15_000)
        wait_until(page, "document.querySelector('#presence-list').textContent.includes('Chiara Chair')")
        before = page.evaluate(LAYOUT)

        hostile = YClient(base, http_sign_in(base, reviewer.email, PASSWORD)).connect()
        try:
            assert hostile.join(clause.uid)["ok"]
            frame = awareness_message({4242: AwarenessEntry(1, HOSTILE)})
            answer = hostile.call("y", {"clause": clause.uid, "msg": frame})
            assert answer["ok"] is True
            wait_until(page, "document.querySelector('#presence-list').textContent.includes('Rex Reviewer')")
            wait_until(page, "document.querySelector('.cm-ySelectionCaret') !== null")
            after = page.evaluate(LAYOUT)
            names = page.locator("#presence-list .presence-name").all_inner_texts()
            caret_style = page.locator(".cm-ySelectionCaret").first.get_attribute("style") or ""
            caret_label = page.locator(".cm-ySelectionInfo").first.inner_text()
        finally:
            hostile.close()

    assert [name for name in names if "Chiara Chair" in name] == [names[0]], names  # only the chair herself
    assert any("Rex Reviewer" in name for name in names)
    assert caret_label == "Rex Reviewer"
    assert reviewer_colour in caret_style and "fixed" not in caret_style and "red" not in caret_style
    for key in ("x", "y", "width", "height"):
        assert after[key] == before[key], (key, before, after)
    assert after["centreInEditor"] and after["fixed"] == before["fixed"]
    assert not [style for style in after["styles"] if "fixed" in style or "url(" in style or "inset" in style]
