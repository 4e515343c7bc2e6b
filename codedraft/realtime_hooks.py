"""Hooks through which account changes reach live sockets.

The co-editing adapter registers listeners on the app; the accounts feature calls them without
knowing about Socket.IO.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app

_KEY = "codedraft_session_listeners"


def on_login_session_ended(app: Flask, listener: Callable[[str], None]) -> None:
    app.extensions.setdefault(_KEY, []).append(listener)


def login_session_ended(session_id: str | None) -> None:
    if not session_id:
        return
    for listener in current_app.extensions.get(_KEY, []):
        listener(session_id)
