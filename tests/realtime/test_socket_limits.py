"""One account may hold only so many co-editing connections in a process (a clause page holds one):
past that, a signed-in script could take every connection the worker has and lock everyone else
out. The refusal names the reason in the person's language; other accounts are not affected."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio
from flask import Flask

from tests.conftest import app_with
from tests.support.live import YClient, wait_for

PER_ACCOUNT = 3


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    with app_with(tmp_path, COLLAB_SOCKETS_PER_ACCOUNT=PER_ACCOUNT) as made:
        yield made


def refusal_of(client: YClient) -> str:
    """Connect ``client``, which the server must refuse; the reason it gave."""
    refused: list[str] = []
    client.sio.on("connect_error", lambda data: refused.append(str((data or {}).get("message"))), namespace="/collab")
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()
    assert not client.sio.connected
    assert client.received == 0
    return refused[0] if refused else ""


def test_an_account_past_its_connections_is_refused_with_a_reason_and_others_are_not(stage):
    held = [stage.editor("chair") for _ in range(PER_ACCOUNT)]
    extra = stage.client("chair", connect=False)
    assert refusal_of(extra) == "Too many pages are open for this account; close some, then reload this one."
    # Another person connects and edits as ever, and the chair's open pages go on working.
    other = stage.editor("second_chair")
    held[0].insert(0, "Still here. ")
    wait_for(lambda: other.value().startswith("Still here. "), message="the chair's edit reaching the other chair")
    # A page closed frees its place (the same signed-in browser opens a new page).
    held[1].close()
    wait_for(lambda: _connects(stage, extra.headers), message="a connection once a page is closed")


def _connects(stage, headers: dict[str, str]) -> bool:
    page = YClient(stage.base, headers=headers)
    stage.clients.append(page)
    try:
        page.connect()
    except socketio.exceptions.ConnectionError:
        return False
    return bool(page.join(stage.clause.uid)["ok"])


def test_the_refusal_is_in_the_language_of_the_page(stage):
    for _ in range(PER_ACCOUNT):
        stage.client("member")
    polish = stage.client("member", connect=False)
    polish.headers["Accept-Language"] = "pl"
    assert refusal_of(polish) == "Na tym koncie otwarto zbyt wiele stron; zamknij niektóre, a potem odśwież tę."


def test_a_connection_without_a_session_is_told_to_sign_in(stage):
    """The refusals at connect reach the client with their words: the namespace raised Python's own
    ConnectionRefusedError, which Socket.IO answers with "Connection refused by server" alone."""
    assert refusal_of(YClient(stage.base)) == "Sign in to edit clauses."
