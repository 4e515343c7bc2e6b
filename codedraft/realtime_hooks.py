"""Hooks through which account changes reach live sockets.

The co-editing adapter registers listeners here; the accounts feature calls them without
knowing about Socket.IO.
"""
from __future__ import annotations

from collections.abc import Callable

_session_listeners: list[Callable[[str], None]] = []


def on_login_session_ended(listener: Callable[[str], None]) -> None:
    _session_listeners.append(listener)


def login_session_ended(session_id: str | None) -> None:
    if not session_id:
        return
    for listener in _session_listeners:
        listener(session_id)
