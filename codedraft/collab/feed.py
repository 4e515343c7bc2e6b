"""The clause feed: every process's stored edits, in one order per clause, for every other process.

With several server processes each holds its own replica of the clauses its sockets joined. After
its writer commits a batch, a process publishes each stored update with its log id on the clause's
feed; every process that holds the clause reads the feed in order, applies what others stored and
sends it to its own sockets (the design of the Yjs team's y-redis: a Redis stream per document).
So no process polls the log, and no settle window is needed: the feed's order is the order of
publication, which follows each commit.

Opening a clause notes the feed's position *before* reading the log, then follows the feed from
there: an update committed after the read is published after its commit, so after the noted
position; one committed before it is in the read. Yjs updates are idempotent, so one that is in
both is applied twice at no cost.

When a process may have missed part of a feed (its connection to Redis broke, or it could not
publish), the feed calls ``on_gap``: the store then reads every clause it holds again from the
log (:meth:`codedraft.collab.store.ClauseStore.resync_from_log`), which is the truth, and sends its
sockets whatever that added.

Two implementations behind one interface: :class:`codedraft.scaleout.clause_stream.RedisClauseFeed`
(Redis streams, chosen when ``REDIS_URL`` is set) and :class:`MemoryClauseFeed` (several stores in
one process share a :class:`MemoryFeedHub`; for tests).
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import NamedTuple, Protocol


class StreamedEdit(NamedTuple):
    """One stored update as the feed carries it."""

    position: str  # the feed's id for it ("<ms>-<seq>"), increasing along one clause's feed
    log_id: int
    origin: str  # the token of the store that stored and published it
    update: bytes


class Published(NamedTuple):
    clause_id: int
    log_id: int
    update: bytes


# Called with a clause id and its new edits, in feed order.
OnEdits = Callable[[int, list[StreamedEdit]], None]
# Called when edits may have been missed (after a broken connection, or a failed publication).
OnGap = Callable[[], None]
# Called when the feed has been quiet a moment (the store writes bodies it owes then).
OnQuiet = Callable[[], None]

START = "0-0"


def position_key(position: str) -> tuple[int, int]:
    """A feed position as a sortable pair."""
    ms, _, seq = position.partition("-")
    return int(ms), int(seq or 0)


class ClauseFeed(Protocol):
    token: str

    def start(self, on_edits: OnEdits, on_gap: OnGap, on_quiet: OnQuiet) -> None:
        """Begin reading (once; later calls do nothing)."""

    def position(self, clause_id: int) -> str:
        """The position of the clause's latest edit on the feed (START when it has none)."""

    def follow(self, clause_id: int, after: str) -> None:
        """Deliver the clause's edits published after position ``after`` to ``on_edits``."""

    def forget(self, clause_id: int) -> None:
        """Stop delivering the clause's edits."""

    def publish(self, edits: list[Published]) -> None:
        """Put stored edits on their clauses' feeds. Never raises: an edit that could not be
        published is kept and published again once the feed works, and ``on_gap`` is called."""

    def read_after(self, clause_id: int, after: str) -> list[StreamedEdit]:
        """The clause's edits after ``after``, read now (an empty list if the feed is down)."""

    def close(self) -> None:
        """Stop reading."""


class MemoryFeedHub:
    """The feeds of several stores in one process (tests standing in for several processes)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.entries: dict[int, list[StreamedEdit]] = {}
        self.feeds: list[MemoryClauseFeed] = []
        self.sequence = 0


class MemoryClauseFeed:
    """A :class:`ClauseFeed` over a :class:`MemoryFeedHub`; delivers synchronously on publish.

    ``connected = False`` stands for a broken connection: nothing is delivered to it or
    published by it; :meth:`reconnect` delivers what it held back and calls ``on_gap``.
    """

    def __init__(self, hub: MemoryFeedHub) -> None:
        self.hub = hub
        self.token = uuid.uuid4().hex
        self.following: dict[int, str] = {}
        self.connected = True
        self._unpublished: list[Published] = []
        self._on_edits: OnEdits | None = None
        self._on_gap: OnGap | None = None
        with hub.lock:
            hub.feeds.append(self)

    def start(self, on_edits: OnEdits, on_gap: OnGap, on_quiet: OnQuiet) -> None:
        self._on_edits, self._on_gap = on_edits, on_gap

    def position(self, clause_id: int) -> str:
        with self.hub.lock:
            entries = self.hub.entries.get(clause_id)
            return entries[-1].position if entries else START

    def follow(self, clause_id: int, after: str) -> None:
        self.following[clause_id] = after

    def forget(self, clause_id: int) -> None:
        self.following.pop(clause_id, None)

    def publish(self, edits: list[Published]) -> None:
        if not self.connected:
            self._unpublished.extend(edits)
            return
        with self.hub.lock:
            for edit in edits:
                self.hub.sequence += 1
                entry = StreamedEdit(f"1-{self.hub.sequence}", edit.log_id, self.token, edit.update)
                self.hub.entries.setdefault(edit.clause_id, []).append(entry)
            feeds = list(self.hub.feeds)
        for feed in feeds:
            feed.deliver()

    def deliver(self) -> None:
        """Hand every followed clause's new edits to the store."""
        if not self.connected or self._on_edits is None:
            return
        for clause_id, after in list(self.following.items()):
            new = self.read_after(clause_id, after)
            if new and clause_id in self.following:
                self.following[clause_id] = new[-1].position
                self._on_edits(clause_id, new)

    def read_after(self, clause_id: int, after: str) -> list[StreamedEdit]:
        if not self.connected:
            return []
        with self.hub.lock:
            return [e for e in self.hub.entries.get(clause_id, []) if position_key(e.position) > position_key(after)]

    def reconnect(self) -> None:
        self.connected = True
        held, self._unpublished = self._unpublished, []
        if held:
            self.publish(held)
        if self._on_gap is not None:
            self._on_gap()
        self.deliver()

    def close(self) -> None:
        with self.hub.lock:
            if self in self.hub.feeds:
                self.hub.feeds.remove(self)
