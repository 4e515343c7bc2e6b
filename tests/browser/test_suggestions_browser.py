"""Suggestion mode in real Chromium pages: a reviewer suggests an insertion and a deletion while a
chair types elsewhere in the clause; the chair sees both live, accepts one inline and rejects the
other from the list; both replicas and the database end identical. The reviewer's browser cannot
change the text directly: a plain edit made in its Y.Doc is refused by the server.

Authors are named right from the first paint, and never misnamed: with the list requests held
unanswered, a pending suggestion shows its author's name at once (the page carries it), and one
arriving live from someone new is unnamed until the answer, never "Someone"."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from codedraft import create_app
from codedraft.accounts import operations as accounts
from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Role
from codedraft.collab.core import SuggestText
from codedraft.collab.store import store_for
from codedraft.extensions import db
from tests.browser.conftest import LiveProcess
from tests.browser.test_coediting import (
    EDITOR_TEXT,
    PASSWORD,
    editor_text,
    open_editor,
    stored_body,
    wait_saved,
    wait_until,
)

pytestmark = pytest.mark.browser

SEED = "Signatories publish a model card for every model."
TEXT = f"({EDITOR_TEXT} || '')"
SHOTS = Path("/tmp/shots16")


def seed_database(live: LiveProcess) -> dict[str, Any]:
    app = create_app(live.config())
    with app.app_context():
        db.create_all()
        code = codes.create_code("Suggestion Code")
        clause = codes.add_clause(codes.add_chapter(code, "Openness"), kind="commitment", number="1",
                                  title="Model cards", body=SEED)
        chair = accounts.create_user("chair@example.test", "Chloe Chair", PASSWORD)
        accounts.grant_role(chair, code, Role.chair)
        reviewer = accounts.create_user("reviewer@example.test", "Rita Reviewer", PASSWORD)
        accounts.grant_role(reviewer, code, Role.reviewer)
        db.session.commit()
        seeded = {"slug": code.slug, "uid": clause.uid, "clause_id": clause.id, "app": app}
        db.session.remove()
    return seeded


# Every author label the page ever shows for a suggestion (mark titles, the popover, list rows),
# collected from the moment the document exists: what a person could have seen, however briefly.
LABEL_RECORDER = """
window.__suggestionLabels = [];
new MutationObserver(() => {
  const seen = window.__suggestionLabels;
  const shown = [
    ...[...document.querySelectorAll('#clause-editor .cm-suggestion')].map((e) => 'mark: ' + e.title),
    ...[...document.querySelectorAll('.cm-suggestion-who')].map((e) => 'popover: ' + e.textContent),
    ...[...document.querySelectorAll('#suggestion-panel .suggestion-what')].map((e) => 'list: ' + e.textContent)
  ];
  for (const label of shown) if (!seen.includes(label)) seen.push(label);
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


class HeldList:
    """The requests of a page for the suggestion list, held unanswered until ``release()``."""

    def __init__(self) -> None:
        self.routes: list[Any] = []
        self.holding = True

    def route(self, route: Any) -> None:
        if self.holding:
            self.routes.append(route)
        else:
            route.continue_()

    def release(self) -> None:
        self.holding = False
        for route in self.routes:
            route.continue_()


def open_holding_the_list(browser: Any, live: LiveProcess, seeded: dict[str, Any], email: str) -> tuple[Any, HeldList]:
    """The clause page for ``email``, its requests for the suggestion list held, and
    LABEL_RECORDER running."""
    held = HeldList()

    def prepare(page: Any) -> None:
        page.route("**/suggestions", held.route)
        page.add_init_script(LABEL_RECORDER)

    return open_editor(browser, live, seeded, email, prepare), held


def wait_held(page: Any, held: HeldList, timeout: float = 15.0) -> None:
    """Until the page has asked for the list at least once (and is still waiting for it)."""
    deadline = time.monotonic() + timeout
    while not held.routes:
        assert time.monotonic() < deadline, "the page never asked for the suggestion list"
        page.evaluate("true")  # Playwright hands over the route events while it talks to the page
        time.sleep(0.05)


def rgb(colour: str) -> str:
    """``#rrggbb`` as the browser reads it back from a style."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def labels_seen(page: Any) -> list[str]:
    return list(page.evaluate("window.__suggestionLabels"))


def suggest_as(seeded: dict[str, Any], email: str, new_text: str, suggestion_id: str) -> str:
    """A pending suggestion by ``email`` in the clause's live text, as the editor makes it;
    returns the author's colour."""
    app = seeded["app"]
    with app.app_context():
        author = db.session.scalar(select(User).where(User.email == email))
        clause = db.session.get(Clause, seeded["clause_id"])
        store_for(app).edit_live_text(clause, lambda _doc: SuggestText(new_text, by=author.id, id=suggestion_id),
                                      user_id=author.id, origin="suggestion")
        db.session.commit()
        colour = author.colour
        db.session.remove()
    return colour


def place(page: Any, start: int, end: int | None = None) -> None:
    """Put the editor's selection at [start, end) (the caret at start when end is None)."""
    page.evaluate("([a, h]) => { const v = window.codedraftEditor.current().view; v.focus();"
                  " v.dispatch({selection: {anchor: a, head: h}}) }", [start, start if end is None else end])


def position(page: Any, needle: str) -> int:
    return int(page.evaluate(f"{TEXT}.indexOf({needle!r})"))


def test_a_reviewer_suggests_and_a_chair_decides_live(chromium, live_process):
    seeded = seed_database(live_process)
    live_process.start()
    chair = open_editor(chromium, live_process, seeded, "chair@example.test")
    reviewer = open_editor(chromium, live_process, seeded, "reviewer@example.test")
    # The reviewer may only suggest: the mode is locked to Suggesting.
    wait_until(reviewer, "document.querySelector('#clause-editor').dataset.mode === 'suggesting'")
    assert reviewer.locator('#suggest-mode button[data-mode="editing"]').is_disabled()
    assert chair.evaluate("document.querySelector('#clause-editor').dataset.mode") == "editing"

    # The reviewer suggests an insertion, and a deletion, while the chair types at the end.
    place(reviewer, position(reviewer, "model card"))
    reviewer.keyboard.type("detailed ", delay=20)
    # The chair types at the end, in the same moments (the caret put there in one step, so
    # words arriving meanwhile cannot leave it short of the end).
    chair.evaluate("() => { const v = window.codedraftEditor.current().view; v.focus();"
                   " v.dispatch({selection: {anchor: v.state.doc.length}}) }")
    chair.keyboard.type(" Chairs review it.", delay=20)
    start = position(reviewer, "every ")
    place(reviewer, start, start + len("every "))
    reviewer.keyboard.press("Backspace")

    # The chair sees both suggestions live, marked, with the reviewer's name.
    wait_until(chair, "[...document.querySelectorAll('#clause-editor .cm-suggestion-insert')]"
                      ".map(e => e.textContent).join('') === 'detailed '")
    wait_until(chair, "[...document.querySelectorAll('#clause-editor .cm-suggestion-delete')]"
                      ".map(e => e.textContent).join('') === 'every '")
    wait_until(chair, "document.querySelector('#clause-editor .cm-suggestion-insert').title.includes('Rita Reviewer')")
    wait_until(chair, "document.querySelectorAll('#suggestion-panel li[data-suggestion-id]').length === 2")
    wait_until(reviewer, f"{TEXT}.includes('Chairs review it.')")
    SHOTS.mkdir(parents=True, exist_ok=True)
    chair.screenshot(path=str(SHOTS / "chair-sees-suggestions.png"), full_page=True)
    reviewer.screenshot(path=str(SHOTS / "reviewer-suggesting.png"), full_page=True)
    # Nothing is accepted yet: the stored text is the chair's edit only.
    wait_saved(chair)
    assert stored_body(seeded) == SEED + " Chairs review it."

    # A plain edit made in the reviewer's own Y.Doc is refused by the server (the page reloads the
    # clause from the server), and never reaches the chair or the database.
    reviewer.evaluate("window.codedraftEditor.current().ydoc.getText('body').insert(0, 'HACK ')")
    wait_until(reviewer, f"!{TEXT}.includes('HACK')", 20_000)
    assert "HACK" not in editor_text(chair)
    assert "HACK" not in stored_body(seeded)

    # Accepting is previewed first in the list: the text it would give, and its diff.
    chair.locator('#suggestion-panel button[data-action="preview-all"]').click()
    all_accepted = "Signatories publish a detailed model card for model. Chairs review it."
    wait_until(chair, f"document.querySelector('.suggestion-result').textContent === {all_accepted!r}")
    assert chair.locator(".suggestion-preview").is_visible()
    assert "detailed" in chair.locator(".suggestion-diff ins").first.text_content()
    chair.screenshot(path=str(SHOTS / "chair-previews-accepting-all.png"), full_page=True)
    assert stored_body(seeded) == SEED + " Chairs review it."  # a preview writes nothing

    # The chair accepts the insertion inline (the popover at the suggestion), from the keyboard:
    # Tab from the caret reaches the popover's buttons ...
    place(chair, position(chair, "detailed") + 2)
    chair.locator(".cm-suggestion-actions").wait_for()
    chair.keyboard.press("Tab")
    assert chair.evaluate("document.activeElement.dataset.suggestionAction") == "accept"
    chair.keyboard.press("Enter")
    assert chair.evaluate("document.activeElement.classList.contains('cm-content')")  # back in the text
    # ... and rejects the deletion from the list.
    wait_until(chair, "document.querySelectorAll('#suggestion-panel li[data-suggestion-id]').length === 1")
    chair.locator('#suggestion-panel li[data-suggestion-id] button[data-action="reject"]').click()
    # Someone else's suggestion is rejected, not withdrawn (tests/js/suggestion-panel.test.mjs).
    wait_until(chair, "document.querySelector('#suggestion-panel [role=status]').textContent === 'Rejected.'")

    expected = "Signatories publish a detailed model card for every model. Chairs review it."
    for page in (chair, reviewer):
        wait_until(page, f"{TEXT} === {expected!r}", 20_000)
        wait_until(page, "document.querySelectorAll('#clause-editor .cm-suggestion').length === 0")
    wait_saved(chair)
    assert editor_text(chair) == editor_text(reviewer) == stored_body(seeded) == expected


def test_a_pending_suggestion_is_named_from_the_first_paint(chromium, live_process):
    """The chair opens a clause with the reviewer's pending suggestion while every request for the
    suggestion list goes unanswered: the mark, the popover and the list name the reviewer from the
    start, in the reviewer's colour, and nothing ever says "Someone"."""
    seeded = seed_database(live_process)
    colour = suggest_as(seeded, "reviewer@example.test", SEED.replace("model card", "detailed model card"), "r1")
    live_process.start()
    chair, held = open_holding_the_list(chromium, live_process, seeded, "chair@example.test")
    wait_until(chair, "document.querySelector('#clause-editor .cm-suggestion-insert')")
    place(chair, position(chair, "detailed") + 2)
    chair.locator(".cm-suggestion-actions").wait_for()
    wait_held(chair, held)

    seen = labels_seen(chair)
    assert all("Rita Reviewer" in label for label in seen), seen
    assert "mark: Suggested insertion by Rita Reviewer" in seen and "popover: Insertion by Rita Reviewer" in seen
    assert any(label.startswith("list: Rita Reviewer: insert") for label in seen), seen
    mark = chair.locator("#clause-editor .cm-suggestion-insert").first
    assert mark.get_attribute("data-author-known") == "true"
    assert mark.evaluate("e => e.style.textDecorationColor") == rgb(colour)
    SHOTS.mkdir(parents=True, exist_ok=True)
    chair.screenshot(path=str(SHOTS / "chair-first-paint-list-held.png"), full_page=True)
    held.release()


def chair_holding_the_list_with_reviewer_here(browser: Any, live: LiveProcess,
                                              seeded: dict[str, Any]) -> tuple[Any, HeldList, Any]:
    """The chair's page (its list requests held) and the reviewer's, once the chair's "Here now"
    lists the reviewer."""
    chair, held = open_holding_the_list(browser, live, seeded, "chair@example.test")
    reviewer = open_editor(browser, live, seeded, "reviewer@example.test")
    wait_until(chair, "[...document.querySelectorAll('#presence-list .presence-name')]"
                      ".some(e => e.textContent === 'Rita Reviewer')")
    return chair, held, reviewer


def suggest_detailed_and_see_it(chair: Any, held: HeldList, reviewer: Any) -> Any:
    """The reviewer suggests "detailed "; once the chair's page shows the mark (and has asked
    for the list), the mark."""
    place(reviewer, position(reviewer, "model card"))
    reviewer.keyboard.type("detailed ", delay=20)
    wait_saved(reviewer)
    wait_until(chair, "[...document.querySelectorAll('#clause-editor .cm-suggestion-insert')]"
                      ".map(e => e.textContent).join('') === 'detailed '")
    wait_held(chair, held)
    return chair.locator("#clause-editor .cm-suggestion-insert").first


def test_a_live_suggestion_by_someone_present_is_named_at_once(chromium, live_process):
    """A suggestion arriving live from someone the chair's page has not met in the list but who is
    here ("Here now") is named from their presence at once, while every request for the list is
    held: the server stamps presence with the account's id, name and colour."""
    seeded = seed_database(live_process)
    live_process.start()
    chair, held, reviewer = chair_holding_the_list_with_reviewer_here(chromium, live_process, seeded)
    mark = suggest_detailed_and_see_it(chair, held, reviewer)
    assert mark.get_attribute("title") == "Suggested insertion by Rita Reviewer"
    assert mark.get_attribute("data-author-known") == "true"
    place(chair, position(chair, "detailed") + 2)
    chair.locator(".cm-suggestion-actions").wait_for()
    assert chair.locator(".cm-suggestion-who").text_content() == "Insertion by Rita Reviewer"
    seen = labels_seen(chair)
    assert seen and all("Rita Reviewer" in label for label in seen if not label.startswith("list:")), seen
    SHOTS.mkdir(parents=True, exist_ok=True)
    chair.screenshot(path=str(SHOTS / "chair-names-present-suggester.png"), full_page=True)
    held.release()


def test_a_live_suggestion_by_someone_absent_is_unnamed_until_known_never_misnamed(chromium, live_process):
    """A suggestion arriving live from someone the chair's page has met neither in the list nor
    in presence (the reviewer's editor withdrew its presence) is shown unnamed while the list
    (which names its author) is held, and named once it is answered."""
    seeded = seed_database(live_process)
    live_process.start()
    chair, held, reviewer = chair_holding_the_list_with_reviewer_here(chromium, live_process, seeded)
    reviewer.evaluate("window.codedraftEditor.current().awareness.setLocalState(null)")
    wait_until(chair, "![...document.querySelectorAll('#presence-list .presence-name')]"
                      ".some(e => e.textContent === 'Rita Reviewer')")
    mark = suggest_detailed_and_see_it(chair, held, reviewer)
    assert mark.get_attribute("title") == "Suggested insertion"
    assert mark.get_attribute("data-author-known") == "false"
    place(chair, position(chair, "detailed") + 2)
    chair.locator(".cm-suggestion-actions").wait_for()
    assert chair.locator(".cm-suggestion-who").text_content() == "Insertion"

    held.release()
    wait_until(chair, "document.querySelector('#clause-editor .cm-suggestion-insert').title"
                      " === 'Suggested insertion by Rita Reviewer'")
    wait_until(chair, "document.querySelector('.cm-suggestion-who').textContent === 'Insertion by Rita Reviewer'")
    wait_until(chair, "document.querySelector('#suggestion-panel .suggestion-what').textContent"
                      ".startsWith('Rita Reviewer: insert')")
    seen = labels_seen(chair)
    assert not [label for label in seen if "Someone" in label], seen
    unnamed = {label for label in seen if "Rita Reviewer" not in label}
    assert unnamed <= {"mark: Suggested insertion", "popover: Insertion"}, seen


def test_one_person_in_two_tabs_is_one_entry_under_here_now(chromium, live_process):
    """The chair opens the clause in two tabs of one browser: each tab lists her once, as
    herself; the reviewer's page lists her once too. (And every request of the page's co-editing
    connection names the clause, which the proxy routes by: deploy/nginx.conf.)"""
    seeded = seed_database(live_process)
    live_process.start()
    first = open_editor(chromium, live_process, seeded, "chair@example.test")
    second = first.context.new_page()
    connection_urls: list[str] = []
    second.on("request", lambda request: connection_urls.append(request.url) if "/socket.io/" in request.url else None)
    second.on("websocket", lambda websocket: connection_urls.append(websocket.url))
    second.goto(f"{live_process.base}/codes/{seeded['slug']}/clauses/{seeded['uid']}")
    second.wait_for_selector('#clause-editor[data-editable="true"]', timeout=15_000)
    assert any(url.startswith("ws") for url in connection_urls), connection_urls
    assert all(f"clause={seeded['uid']}" in url for url in connection_urls), connection_urls
    reviewer = open_editor(chromium, live_process, seeded, "reviewer@example.test")
    names = "[...document.querySelectorAll('#presence-list .presence-name')].map(e => e.textContent).join('|')"
    # Both of the chair's tabs are here (each has had the other's presence) before it is read.
    wait_until(reviewer, "window.codedraftEditor.current().awareness.getStates().size === 3")
    for tab in (first, second):
        wait_until(tab, "window.codedraftEditor.current().awareness.getStates().size === 3")
        wait_until(tab, f"{names} === 'Chloe Chair (you)|Rita Reviewer'")
    wait_until(reviewer, f"{names} === 'Rita Reviewer (you)|Chloe Chair'")
    SHOTS.mkdir(parents=True, exist_ok=True)
    reviewer.screenshot(path=str(SHOTS / "reviewer-here-now-two-tabs.png"), full_page=True)


def test_a_reviewer_who_loses_the_role_is_told_and_can_type_nothing_more(chromium, live_process):
    """The Office takes the reviewer's role away while the reviewer's page is open: the page says
    it is not connected and why, the suggestion list says it is no longer shown (not "could not
    be loaded"), and the editor takes no more typing, which could never reach the clause."""
    seeded = seed_database(live_process)
    with seeded["app"].app_context():
        accounts.create_user("office@example.test", "Olga Office", PASSWORD, is_office=True)
        db.session.commit()
        reviewer_id = db.session.scalar(select(User.id).where(User.email == "reviewer@example.test"))
        db.session.remove()
    live_process.start()
    reviewer = open_editor(chromium, live_process, seeded, "reviewer@example.test")
    office = open_editor(chromium, live_process, seeded, "office@example.test")
    office.goto(f"{live_process.base}/codes/{seeded['slug']}/settings")
    office.select_option("#role-user", str(reviewer_id))
    office.select_option("#role-role", "none")
    office.select_option("#role-wg", "")
    office.get_by_role("button", name="Save role").click()
    office.get_by_text("Role saved for Rita Reviewer.").wait_for()

    wait_until(reviewer, "document.querySelector('#clause-editor').dataset.editable === 'false'", 30_000)
    wait_until(reviewer, "document.querySelector('#suggestion-panel').textContent"
                         ".includes('You can no longer see the suggestions of this clause.')", 30_000)
    assert reviewer.locator("#collab-status").inner_text().startswith("Not connected:")
    assert "could not be loaded" not in reviewer.locator("#suggestion-panel").inner_text()
    assert "No pending suggestions." not in reviewer.locator("#suggestion-panel").inner_text()
    assert reviewer.locator('#suggest-mode button[data-mode="editing"]').is_disabled()
    assert reviewer.locator('#suggest-mode button[data-mode="suggesting"]').is_disabled()
    assert reviewer.locator('#editor-toolbar button[data-command="bold"]').get_attribute("aria-disabled") == "true"
    before = editor_text(reviewer)
    place(reviewer, 0)
    reviewer.keyboard.type("late ", delay=20)
    assert editor_text(reviewer) == before
    assert "late" not in stored_body(seeded)
    SHOTS.mkdir(parents=True, exist_ok=True)
    reviewer.screenshot(path=str(SHOTS / "reviewer-after-losing-the-role.png"), full_page=True)
