"""A clause page holds one co-editing connection: its editor and its feedback panel share it
(static/src/collab/socket.js). They were two, each a connection the server keeps (memory, a slot
of its connections, the account's allowance). The panel still hears feedback live on the shared one."""
from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_coediting import open_editor, wait_until
from tests.browser.test_suggestions_browser import seed_database

pytestmark = pytest.mark.browser


def socket_io_connections(opened: list[Any]) -> list[str]:
    return [socket.url for socket in opened if "/socket.io/" in socket.url]


def test_a_clause_page_holds_one_connection_and_its_feedback_panel_still_hears_live(chromium, live_process):
    seeded = seed_database(live_process)
    live_process.start()
    opened: list[Any] = []
    reader = open_editor(chromium, live_process, seeded, "chair@example.test",
                         prepare=lambda page: page.on("websocket", lambda socket: opened.append(socket)))
    wait_until(reader, "document.querySelector('#clause-editor').dataset.collabStatus === 'synced'")
    wait_until(reader, "document.querySelector('[data-fb-threads]') !== null")

    # A comment from another page (the chair's other tab: chairs comment with no round open)
    # reaches the first page's panel, which says so and shows the thread.
    writer = open_editor(chromium, live_process, seeded, "chair@example.test")
    writer.get_by_label("Your comment (Markdown)").fill("Heard on the shared connection.")
    writer.get_by_role("button", name="Post").click()
    wait_until(reader, "document.querySelector('[data-fb-live-status]').textContent === 'New feedback activity.'")
    wait_until(reader, "document.querySelector('[data-fb-threads]').textContent"
                       ".includes('Heard on the shared connection.')")
    # By now the panel has its connection (it heard the comment on it): still only the one.
    assert len(socket_io_connections(opened)) == 1, socket_io_connections(opened)
