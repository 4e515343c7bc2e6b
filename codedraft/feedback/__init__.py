"""Feedback on clauses: rounds, anchored comment threads, support, amendments, dispositions.

``install(app)`` adds the feedback panel to the clause page. Template helpers (the unread
count, the code overview's per-clause chart data) come with the blueprint's context processor.
"""
from __future__ import annotations

from typing import Any

from flask import Flask

_INSTALLED = "codedraft_feedback_installed"


def install(app: Flask) -> None:
    """Register this feature's clause panel on ``app`` (once, however often it is called)."""
    from codedraft.codes.panels import ClausePanel, register_clause_panel

    if app.extensions.get(_INSTALLED):
        return
    app.extensions[_INSTALLED] = True

    def feedback_panel(code: Any, clause: Any, viewer: Any) -> ClausePanel | None:
        from codedraft.feedback.views import panel_context

        if viewer is None or not viewer.is_authenticated:
            return None
        return ClausePanel("feedback/panel.html", panel_context(code, clause), region="aside", order=50)

    register_clause_panel(app, feedback_panel)
    from codedraft import signals
    from codedraft.drafts.operations import after_publish
    from codedraft.feedback.operations import amendments_decided_in_text, carry_after_publish

    # Amendments are suggestions in the live text too: deciding one there decides the amendment.
    signals.suggestions_decided.connect(amendments_decided_in_text, sender=app)

    if carry_after_publish not in after_publish:
        after_publish.append(carry_after_publish)
