"""How account changes reach live sockets, without accounts knowing about Socket.IO."""
from __future__ import annotations

from flask import current_app

from codedraft import signals


def login_session_ended(session_id: str | None) -> None:
    """Call after committing the end of a login session: its sockets lose their authority at once."""
    if not session_id:
        return
    signals.login_session_ended.send(current_app._get_current_object(), login_session_id=session_id)
