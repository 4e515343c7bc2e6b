"""Live feedback: tell everyone viewing a clause that its threads changed.

Events go to the clause's room of the /collab namespace, which only admits sockets whose user
may read the clause (the namespace checks on join and on every message). The payload names the
thread, never its text: each browser re-fetches the thread list through an HTTP request that
applies its own viewer's rights, so a hidden comment never travels to someone who may not see it.
"""
from __future__ import annotations

from typing import Literal

from flask import current_app

from codedraft.extensions import socketio

NAMESPACE = "/collab"
EVENT = "feedback"
Kind = Literal["comment", "reply", "status", "support", "amendment"]


def clause_room(uid: str) -> str:
    return f"clause:{uid}"


def announce(clause_uid: str, kind: Kind, comment_id: int) -> None:
    """Emit ``feedback {clause, kind, id}`` to the clause room. Call after the commit."""
    payload = {"clause": clause_uid, "kind": kind, "id": comment_id}
    try:
        socketio.emit(EVENT, payload, to=clause_room(clause_uid), namespace=NAMESPACE)
    except Exception:  # a broken message queue must not turn a saved comment into an error page
        current_app.logger.exception("could not announce feedback on clause %s", clause_uid)
