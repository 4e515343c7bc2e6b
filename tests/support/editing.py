"""Editing a clause's live text from a test, the way the server's own edits do it."""
from __future__ import annotations

from collections.abc import Callable

from codedraft.codes.models import Clause
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
