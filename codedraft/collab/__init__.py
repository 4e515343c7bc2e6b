"""Real-time co-editing of clause bodies.

The pure core lives here and imports no web framework: ``core`` (the server replica of a clause's
Yjs document and the y-websocket wire protocol), ``minimal_edit`` (server-side edits as minimal
splices), ``offsets`` (UTF-16 / code point / UTF-8 index conversions) and ``history`` (sessions,
replay and blame over the update log).  The Socket.IO adapter and the pages sit beside it and
only authorise, persist and forward what the core decides.
"""
from __future__ import annotations

from typing import Any

_INSTALLED = "codedraft_collab_panel_installed"


def install(app: Any) -> None:
    """Add the live editor panel to the clause page. Calling it twice adds it once."""
    if app.extensions.get(_INSTALLED):
        return
    from codedraft.codes.panels import register_clause_panel
    from codedraft.collab.views import editor_panel

    register_clause_panel(app, editor_panel)
    app.extensions[_INSTALLED] = True
