"""The named signals through which features tell each other what happened.

A feature that changes something sends a signal with the app as sender; a feature that cares
connects to it for that app (``signal.connect(receiver, sender=app)``), so two apps in one
process (tests) never hear each other. Senders never import receivers: accounts knows nothing of
Socket.IO, feedback nothing of search. blinker keeps receivers weakly, so a receiver lives as
long as the object it is bound to.
"""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Who may do what in some clause may have changed (a role granted or revoked, a login ended, a
# chapter moved to another working group, a clause withdrawn). Sent by the operation, inside the
# transaction; receivers must act again once it has committed (see collab/namespace.py).
rights_changed = _signals.signal("rights-changed")

# A login session ended (sign-out, or the account's sessions ended), after the commit.
# Keyword: ``login_session_id``.
login_session_ended = _signals.signal("login-session-ended")

# The co-editing writer committed clause bodies (on its own connection, from its own thread).
live_bodies_stored = _signals.signal("live-bodies-stored")

# Live clause text written in a transaction that has now committed; keyword ``edits``: a list of
# (clause uid, y-protocols update frame) for the clauses' rooms.
live_text_committed = _signals.signal("live-text-committed")

# Suggestions of a clause were accepted or rejected through the suggestion routes, in the current
# transaction. Keywords: ``clause`` (Clause), ``accepted``, ``rejected`` (sets of suggestion ids),
# ``by`` (User). Feedback marks the amendments among them decided (one model, one list).
suggestions_decided = _signals.signal("suggestions-decided")


def announce_rights_changed() -> None:
    """Send ``rights_changed`` for the current app (operations call this where they change rights)."""
    from flask import current_app

    rights_changed.send(current_app._get_current_object())
