"""Suggestion mode in real Chromium pages: a reviewer suggests an insertion and a deletion while a
chair types elsewhere in the clause; the chair sees both live, accepts one inline and rejects the
other from the list; both replicas and the database end identical. The reviewer's browser cannot
change the text directly: a plain edit made in its Y.Doc is refused by the server."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codedraft import create_app
from codedraft.accounts import operations as accounts
from codedraft.codes import operations as codes
from codedraft.codes.models import Role
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

    expected = "Signatories publish a detailed model card for every model. Chairs review it."
    for page in (chair, reviewer):
        wait_until(page, f"{TEXT} === {expected!r}", 20_000)
        wait_until(page, "document.querySelectorAll('#clause-editor .cm-suggestion').length === 0")
    wait_saved(chair)
    assert editor_text(chair) == editor_text(reviewer) == stored_body(seeded) == expected
