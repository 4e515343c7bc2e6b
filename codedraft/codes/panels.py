"""Panels other features add to the clause page (the editor, comment threads, history links).

A feature registers a function taking the clause and the viewer and returning a
``ClausePanel`` (or None to show nothing); the clause page renders them in order. This keeps
the codes feature ignorant of co-editing and feedback.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from codedraft.accounts.models import User
from codedraft.codes.models import Clause, Code


@dataclass
class ClausePanel:
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    # Where on the page: "main" replaces nothing and sits under the text; "aside" goes beside it.
    region: str = "main"
    order: int = 100


PanelFactory = Callable[[Code, Clause, User], ClausePanel | None]
_KEY = "codedraft_clause_panels"


def register_clause_panel(app: Flask, factory: PanelFactory) -> None:
    app.extensions.setdefault(_KEY, []).append(factory)


def clause_panels(code: Code, clause: Clause, viewer: User) -> list[ClausePanel]:
    panels = [factory(code, clause, viewer) for factory in current_app.extensions.get(_KEY, [])]
    return sorted((p for p in panels if p is not None), key=lambda p: p.order)
