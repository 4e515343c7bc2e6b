"""Editing a clause's live text from a test, the way the server's own edits do it."""
from __future__ import annotations

from collections.abc import Callable

from pycrdt import Doc, Text

from codedraft.codes.models import Clause
from codedraft.collab.core import BODY
from codedraft.collab.log import seed_update
from codedraft.collab.store import ClauseStore
from codedraft.extensions import db


def set_live_text(store: ClauseStore, clause: Clause, text: str, *, user_id: int | None = None,
                  origin: str = "test") -> bool:
    """Open the clause for co-editing (its log starts, as when someone joins), make its live text
    read ``text`` by a minimal edit, and commit. Returns whether the text changed."""
    store.open(clause)
    changed = store.edit_live_text(clause, lambda _live: text, user_id=user_id, origin=origin)
    db.session.commit()
    return changed


def change_live_text(store: ClauseStore, clause: Clause, change: Callable[[str], str], *, user_id: int | None = None,
                     origin: str = "test") -> bool:
    """Like :func:`set_live_text`, with the new text ``change(current live text)``."""
    store.open(clause)
    changed = store.edit_live_text(clause, lambda live: change(live.text), user_id=user_id, origin=origin)
    db.session.commit()
    return changed


def typed_history(count: int) -> tuple[list[bytes], str]:
    """``count`` one-letter edits typed into an empty clause, some at the start, each its own
    update as a browser sends them; and the text they make."""
    doc: Doc[Text] = Doc()
    doc.apply_update(seed_update(""))
    body = doc.get(BODY, type=Text)
    updates = []
    for n in range(count):
        before = doc.get_state()
        body.insert(len(str(body)) if n % 7 else 0, "x" if n % 3 else "w")  # ASCII: pycrdt offsets are bytes
        updates.append(doc.get_update(before))
    return updates, str(body)


def typed_after(state: bytes, text: str) -> bytes:
    """The update of a peer holding ``state`` that types ``text`` at the end (ASCII text before)."""
    peer: Doc[Text] = Doc()
    peer.apply_update(state)
    body = peer.get(BODY, type=Text)
    before = peer.get_state()
    body.insert(len(str(body)), text)
    return peer.get_update(before)
