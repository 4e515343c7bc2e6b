"""Two people co-edit a clause in real Chromium pages; the server is SIGKILLed and restarted on
the same port; the editors reconnect by themselves, nothing acknowledged is lost, and editing
goes on until the database holds exactly what the editors show (SECURITY-CASES 10)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from codedraft import create_app
from codedraft.accounts import operations as accounts
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Role
from codedraft.extensions import db
from tests.browser.conftest import LiveProcess

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
SEED = "Signatories publish a model card."
EDITOR_TEXT = "window.codedraftEditor ? window.codedraftEditor.current().view.state.doc.toString() : null"


def seed_database(live: LiveProcess) -> dict[str, Any]:
    """Schema, a code with one clause, and two chairs, written to the server's SQLite file."""
    app = create_app(live.config())
    with app.app_context():
        db.create_all()
        code = codes.create_code("Browser Code")
        clause = codes.add_clause(codes.add_chapter(code, "Openness"), kind="commitment", number="1",
                                  title="Model cards", body=SEED)
        people = {}
        for email, name in (("alice@example.test", "Alice Author"), ("bob@example.test", "Bob Builder")):
            user = accounts.create_user(email, name, PASSWORD)
            accounts.grant_role(user, code, Role.chair)
            people[email] = name
        db.session.commit()
        seeded = {"slug": code.slug, "uid": clause.uid, "clause_id": clause.id, "people": people, "app": app}
        db.session.remove()
    return seeded


def stored_body(seeded: dict[str, Any]) -> str:
    app = seeded["app"]
    with app.app_context():
        body = db.session.get(Clause, seeded["clause_id"]).body
        db.session.remove()
        return body


def open_editor(browser: Any, live: LiveProcess, seeded: dict[str, Any], email: str,
                prepare: Callable[[Any], None] | None = None) -> Any:
    """The clause's editor, signed in as ``email``; ``prepare(page)`` runs before the clause
    page is opened (to route its requests, or add a script)."""
    page = browser.new_context().new_page()
    page.goto(f"{live.base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live.base}/")
    if prepare is not None:
        prepare(page)
    page.goto(f"{live.base}/codes/{seeded['slug']}/clauses/{seeded['uid']}")
    page.wait_for_selector('#clause-editor[data-editable="true"]', timeout=15_000)
    return page


def editor_text(page: Any) -> str:
    return str(page.evaluate(EDITOR_TEXT))


def wait_until(page: Any, expression: str, timeout: float = 15_000) -> None:
    """Poll ``expression`` from here: Playwright's wait_for_function evaluates a string, which the
    app's CSP (no 'unsafe-eval') rightly forbids, while page.evaluate goes through the devtools."""
    deadline = time.monotonic() + timeout / 1000
    while time.monotonic() < deadline:
        if page.evaluate(f"() => Boolean({expression})"):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expression}; the page shows {page_state(page)}")


def page_state(page: Any) -> dict[str, Any]:
    """What a page showed when a wait ran out: its editor's text and status, for the report."""
    return page.evaluate(f"""() => {{
        const host = document.querySelector('#clause-editor')
        const status = document.querySelector('#collab-status')
        return {{text: {EDITOR_TEXT}, status: status && status.textContent,
                 collab: host && host.dataset.collabStatus, unacked: host && host.dataset.unacked,
                 focused: document.activeElement && document.activeElement.className}}
    }}""")


def type_at_end(page: Any, text: str) -> None:
    page.locator("#clause-editor .cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text, delay=15)


def wait_converged(alice: Any, bob: Any, *needles: str) -> str:
    for page in (alice, bob):
        for needle in needles:
            wait_until(page, f"({EDITOR_TEXT} || '').includes({needle!r})")
    wait_until(alice, f"{EDITOR_TEXT} === {editor_text(bob)!r}")
    assert editor_text(alice) == editor_text(bob)
    return editor_text(alice)


def wait_saved(page: Any) -> None:
    wait_until(page, "document.querySelector('#clause-editor').dataset.unacked === '0' && "
                     "document.querySelector('#clause-editor').dataset.collabStatus === 'synced'")


def test_two_editors_survive_a_server_kill(chromium, live_process):
    seeded = seed_database(live_process)
    live_process.start()
    alice = open_editor(chromium, live_process, seeded, "alice@example.test")
    bob = open_editor(chromium, live_process, seeded, "bob@example.test")
    assert editor_text(alice) == editor_text(bob) == SEED

    # Presence: each sees the other by name.
    wait_until(alice, "document.querySelector('#presence-list').textContent.includes('Bob Builder')")
    wait_until(bob, "document.querySelector('#presence-list').textContent.includes('Alice Author')")

    # Both type at once, word by word in turn, neither waiting for the other to sync.
    type_at_end(alice, " Alice")
    type_at_end(bob, " Bob")
    for word in ("one", "two", "three"):
        alice.keyboard.type(f" a-{word}", delay=10)
        bob.keyboard.type(f" b-{word}", delay=10)
    before_kill = wait_converged(alice, bob, "a-three", "b-three")
    assert before_kill.startswith(SEED)
    wait_saved(alice)
    wait_saved(bob)
    assert stored_body(seeded) == before_kill

    live_process.kill()
    wait_until(alice, "document.querySelector('#clause-editor').dataset.collabStatus === 'offline'")
    live_process.start()
    for page in (alice, bob):
        wait_until(page, "document.querySelector('#clause-editor').dataset.collabStatus === 'synced'", 30_000)
    assert editor_text(alice) == editor_text(bob) == before_kill

    # Editing goes on after the restart, by both, and everything reaches the database. Bob
    # types once Alice's words have reached him: typed at the same end at once, the two would
    # interleave letter by letter (" after-al after-bobice", converged and correct), which is
    # what the first part tries, not what the needles below can look for.
    type_at_end(alice, " after-alice")
    wait_until(bob, f"({EDITOR_TEXT} || '').includes('after-alice')")
    type_at_end(bob, " after-bob")
    final = wait_converged(alice, bob, "after-alice", "after-bob")
    assert final.startswith(before_kill)
    wait_saved(alice)
    wait_saved(bob)
    assert stored_body(seeded) == final
    wait_until(bob, "document.querySelector('#presence-list').textContent.includes('Alice Author')")


def test_two_editors_co_edit_through_gunicorns_gevent_worker(chromium, tmp_path):
    """Production's server: the browser opens with long-polling and upgrades to a websocket
    (CodeDraft's own driver under the gevent worker), each types in turn, and each sees the
    other's words live, written straight to its websocket by the fan-out."""
    live = LiveProcess(tmp_path, server="gunicorn")
    seeded = seed_database(live)
    live.start(timeout=60)
    try:
        alice = open_editor(chromium, live, seeded, "alice@example.test")
        bob = open_editor(chromium, live, seeded, "bob@example.test")
        for page in (alice, bob):
            wait_until(page, "document.querySelector('#clause-editor').dataset.collabStatus === 'synced'")
        type_at_end(alice, " alice-through-gunicorn")
        # Bob types after Alice's words reach him, as a person would: on a busy machine he once
        # typed while only half of them had, at what was then the end, and the two insertions
        # at one place interleaved (as Yjs rightly orders concurrent ones), splitting the needle.
        wait_until(bob, f"({EDITOR_TEXT} || '').includes('alice-through-gunicorn')")
        type_at_end(bob, " bob-through-gunicorn")
        text = wait_converged(alice, bob, "alice-through-gunicorn", "bob-through-gunicorn")
        for page in (alice, bob):
            wait_saved(page)
        assert stored_body(seeded) == text
        # The upgrade happened: the pages' transports are websockets now.
        assert alice.evaluate("() => window.codedraftEditor.current().provider.socket.io.engine.transport.name") \
            == "websocket"
    finally:
        live.kill()
    assert "Traceback" not in live.log_tail(100_000)
