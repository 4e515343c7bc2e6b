"""Rendered public fragments, kept in memory.

What is cached is made only from immutable material (a published draft, the redline between
two published drafts), so an entry never goes stale and needs no invalidation; whether the
code is still public is checked on every request before a fragment is served.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock

from flask import Flask


class FragmentCache:
    """A small least-recently-used map of rendered HTML, safe to share between threads."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = Lock()

    def get_or_render(self, key: Hashable, render: Callable[[], str]) -> str:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        # Rendered outside the lock: two readers may render the same fragment once each, which
        # is cheaper than making every reader of every other fragment wait.
        html = render()
        with self._lock:
            self._entries[key] = html
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return html

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def fragments_of(app: Flask) -> FragmentCache:
    """The app's cache. Kept on the app, not in the module: two apps in one process (tests, or a
    script beside a server) have their own databases, and draft ids repeat between them."""
    cache = app.extensions.get("codedraft_public_fragments")
    if cache is None:
        cache = app.extensions.setdefault("codedraft_public_fragments", FragmentCache())
    return cache  # type: ignore[no-any-return]
