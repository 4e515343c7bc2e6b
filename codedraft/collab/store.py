"""Live clause documents: the in-memory replicas people co-edit, over the clause log.

Order for every incoming edit (STYLE.md habit 6): the adapter authorises, the core validates
and applies (here, under the clause's lock), the log persists it (``log.py``: group commit),
and only then is the edit acknowledged and broadcast. This module owns the documents, their
locks, loading, eviction and, with several processes, catching up with what others stored;
``ClauseLog`` owns every write of the log. Server-side edits have one way in:
:meth:`ClauseStore.edit_live_text`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field

from flask import Flask
from pycrdt import merge_updates
from sqlalchemy import event
from sqlalchemy.orm import Session

from codedraft import signals
from codedraft.codes.models import Clause
from codedraft.collab.core import ClauseDocument, LiveChange, SyncOutcome, sync_update_message
from codedraft.collab.log import ClauseLog, LogEntry, seed_update
from codedraft.concurrency import run_blocking
from codedraft.extensions import db
from codedraft.timeutil import utcnow

log = logging.getLogger(__name__)

# A clause is re-snapshotted after this many new updates, so opening it replays few.
SNAPSHOT_EVERY = 400
# On PostgreSQL a log id is taken at insert time but seen only at commit, so a lower id can appear
# after a higher one. The catch-up keeps re-checking ids above the highest one seen at least this
# long ago: a writer's transaction lasts milliseconds, never this long.
CATCH_UP_SETTLE_SECONDS = 10.0
# While edits arrive, a clause looks for other processes' new rows (ids above the highest it has)
# at most this often, and re-checks the whole settle window at most this often. Looking on every
# message, over the whole window, cost 50 typists on PostgreSQL seconds of latency (a scan of
# ~2,500 ids per message); an edit that builds on rows not seen yet looks at once anyway.
CATCH_UP_QUICK_EVERY = 0.05
CATCH_UP_THOROUGH_EVERY = 1.0
# A clause nobody in this process has joined or touched for this long is dropped from memory
# (its log has everything acknowledged): a document costs about 1 kB per stored edit, and a
# server up for weeks would otherwise keep every clause anyone ever opened.
IDLE_SECONDS = 120.0
# Several processes: each writes a clause's body column from its own replica, which may lack the
# last edits another process stored a moment before, so the last writer can leave a stale body
# (3 processes: all 200 clients and the log agreed, the body did not). For this long after it
# last wrote a clause, a process catches up and rewrites the body if the database's differs.
RECONCILE_WINDOW_SECONDS = CATCH_UP_SETTLE_SECONDS + 5.0


@dataclass
class OpenClause:
    """A clause document held in memory while anyone works on it."""

    uid: str
    clause_id: int
    code_id: int
    doc: ClauseDocument
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Highest log id read back from the database (used when other processes write too).
    seen_update_id: int = 0
    updates_since_snapshot: int = 0
    # Multi-process catch-up: every log id at or below ``settled_update_id`` is applied; the ids
    # above it that are applied already (with when they were first seen) are in ``recent_ids``.
    settled_update_id: int = 0
    recent_ids: dict[int, float] = field(default_factory=dict)
    # When the catch-up last looked above ``seen_update_id`` (quick) and over the window (thorough).
    quick_look_at: float = 0.0
    thorough_look_at: float = 0.0
    # When anyone last opened or wrote it, and how many open transactions hold an edit of it
    # not committed yet; neither kind of clause is dropped from memory.
    last_used: float = field(default_factory=time.monotonic)
    uncommitted: int = 0
    # When this process last wrote the clause's body column (multi-process reconciliation).
    body_written_at: float = float("-inf")
    # How many edits of it were ever queued for the writer (counted under ``lock``).
    submitted: int = 0


class PersistenceFailed(RuntimeError):
    """The database refused an update; the document is reloaded from the log."""


class ClauseStore:
    """Registry of open clauses for one app, with the group-commit writer."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.multi_process = bool(app.config.get("REDIS_URL")) or bool(app.config.get("COLLAB_CATCH_UP"))
        self._open: dict[str, OpenClause] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._registry_lock = threading.Lock()
        self.log = ClauseLog(app, texts_of=self._batch_texts, after_stored=self._stored)

    # -- opening ------------------------------------------------------------------------------

    def opened(self, uid: str) -> OpenClause | None:
        """The clause's document if it is in memory already (no database access)."""
        existing = self._open.get(uid)
        if existing is not None:
            existing.last_used = time.monotonic()
        return existing

    def holds(self, uid: str) -> bool:
        """Whether the clause's document is in memory (without counting as a use of it)."""
        return uid in self._open

    def open(self, clause: Clause) -> OpenClause:
        """The in-memory document of ``clause``, loaded from its snapshot and log on first use."""
        existing = self.opened(clause.uid)
        if existing is not None:
            return existing
        # Load under a lock of this clause only: a global lock held while loading made every
        # other socket wait, each holding a pooled connection, until the pool ran dry and the
        # loader itself could not get one (a 30 s stall with 50 people joining at once).
        with self._registry_lock:
            loading = self._loading.setdefault(clause.uid, threading.Lock())
        with loading:
            existing = self._open.get(clause.uid)
            if existing is not None:
                return existing
            opened = self._load(clause)
            with self._registry_lock:
                self._open[clause.uid] = opened
                self._loading.pop(clause.uid, None)
            if opened.updates_since_snapshot >= SNAPSHOT_EVERY:
                self._compact_after_load(opened)
            return opened

    def _compact_after_load(self, opened: OpenClause) -> None:
        """A long tail replayed on open (an import, or a crash before the last compaction) is
        compacted at once, so the next process to open the clause reads a snapshot instead."""
        try:
            run_blocking(self._snapshot, opened, opened.seen_update_id)
        except Exception:  # the clause is open and correct; only the next open stays slow
            log.exception("compacting clause %s after loading it failed", opened.uid)

    def _load(self, clause: Clause) -> OpenClause:
        history = self.log.history(clause.id)
        if history.snapshot is None and not history.rows:
            self.log.store_seed(clause.id, clause.body)
            history = self.log.history(clause.id)
        rows = history.rows
        document = ClauseDocument.from_history(history.snapshot, [u for _, u in rows])
        seen = max([history.snapshot_upto, *(i for i, _ in rows)])
        now = time.monotonic()
        return OpenClause(uid=clause.uid, clause_id=clause.id, code_id=clause.code_id, doc=document,
                          seen_update_id=seen, updates_since_snapshot=len(rows),
                          settled_update_id=history.since, recent_ids={i: now for i, _ in rows})

    def evict(self, uid: str) -> None:
        with self._registry_lock:
            self._open.pop(uid, None)

    def pin(self, opened: OpenClause) -> None:
        """Keep ``opened`` in memory while a transaction holds an edit of it not committed yet."""
        with self._registry_lock:
            opened.uncommitted += 1

    def unpin(self, uid: str) -> None:
        """That transaction committed: the log has the edit, so the clause may idle out again."""
        with self._registry_lock:
            opened = self._open.get(uid)
            if opened is not None:
                opened.uncommitted = max(0, opened.uncommitted - 1)

    def evict_idle(self, in_use: Collection[str], *, idle_for: float = IDLE_SECONDS,
                   now: float | None = None) -> list[str]:
        """Drop the documents of clauses not in ``in_use`` (joined by a socket of this process)
        and unused for ``idle_for`` seconds; the next open reloads them from the log. A clause
        busy at this moment (its lock held) or with an uncommitted edit is kept. Returns the
        uids dropped."""
        now = time.monotonic() if now is None else now
        dropped = []
        with self._registry_lock:
            for uid, opened in list(self._open.items()):
                if uid in in_use or opened.uncommitted or now - opened.last_used < idle_for:
                    continue
                if not opened.lock.acquire(blocking=False):
                    continue
                try:
                    del self._open[uid]
                finally:
                    opened.lock.release()
                dropped.append(uid)
        return dropped

    def open_count(self) -> int:
        return len(self._open)

    def close(self) -> None:
        """Close the log writer's own connection (tests, and any code that makes a store of its
        own; the app's store lives as long as its process)."""
        self.log.close()

    def reconcile_bodies(self, now: float | None = None) -> list[str]:
        """Several processes only: for each clause whose body this process wrote in the last
        RECONCILE_WINDOW_SECONDS, catch up and rewrite the body column if it differs from the
        caught-up text. Once typing stops every replica holds every edit, so the bodies written
        last agree with the log. A clause busy this moment waits for the next call. Returns the
        uids whose body was rewritten."""
        if not self.multi_process:
            return []
        now = time.monotonic() if now is None else now
        rewritten = []
        for opened in list(self._open.values()):
            if now - opened.body_written_at > RECONCILE_WINDOW_SECONDS:
                continue
            if not opened.lock.acquire(blocking=False):
                continue
            try:
                self._catch_up(opened)
                text = opened.doc.text
            finally:
                opened.lock.release()
            if run_blocking(self.log.write_body_if_stale, opened.clause_id, text):
                rewritten.append(opened.uid)
        return rewritten

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, opened: OpenClause, message: bytes, *, user_id: int | None, may_write: bool,
                may_suggest: bool = False) -> SyncOutcome:
        """Validate and apply ``message``; if it changed the clause, persist it before returning.

        Raises ProtocolError (from the core) for a bad message, PersistenceFailed if the
        database refused; in that case the in-memory document is dropped and reloaded later, so
        memory never holds an edit the log does not.
        """
        with opened.lock:
            if self.multi_process:
                self._catch_up_if_due(opened)
            suggester = user_id if may_suggest and not may_write else None
            outcome = opened.doc.receive(message, may_write=may_write, suggester=suggester)
            if outcome.deferred and self.multi_process:
                # What it builds on may be in the log already, stored by another process (its
                # broadcast reached the sender first): look now, and if that releases the edit,
                # store, acknowledge and broadcast it as if it had applied at once.
                released: list[bytes] = []
                self._catch_up(opened, released=released)
                if released:
                    update = released[0] if len(released) == 1 else merge_updates(*released)
                    outcome = SyncOutcome(kind=outcome.kind, update=update, broadcast=sync_update_message(update))
            if outcome.update is None:
                return outcome
            pending = LogEntry(opened.clause_id, outcome.update, user_id, "editor", owner=opened)
            self._submit(pending)
        self._wait(pending)
        return outcome

    def has_history(self, clause: Clause) -> bool:
        """Whether the clause has ever been opened for co-editing (its log is not empty)."""
        return self.log.has_history(clause.id)

    def edit_live_text(self, clause: Clause, compute: Callable[[ClauseDocument], LiveChange], *, user_id: int | None,
                       origin: str, after: Callable[[ClauseDocument], None] | None = None) -> bool:
        """The one way the server edits a clause's live text (restore, accepted amendment, import).

        ``compute(document)`` gives the new text from the live document, and the difference is
        applied as a minimal edit, both under the clause's lock, so a keystroke landing meanwhile
        is never overwritten; ``after(document)`` then runs under the same lock (to re-anchor
        comments). The edit goes into the caller's transaction (``db.session``): its log row and
        the clause's body; the caller commits. Once that transaction commits, the edit is sent
        to the clause's room (``signals.live_text_committed``); if it rolls back, the in-memory
        document, which holds the edit already, is dropped and reloaded from the log on next use.

        A clause never co-edited only gets its new body: its first live document is seeded from
        the body, deterministically, so ``compute`` and ``after`` see that seed document.
        ``compute`` may also give a change of suggestions (``SettleSuggestions``, ``SuggestText``
        from the core), applied the same way; a clause never co-edited has no suggestions, so
        suggesting opens its live document first. Returns whether the document changed.
        """
        if not self.has_history(clause):
            change = compute(ClauseDocument.from_history(None, [seed_update(clause.body)]))
            if isinstance(change, str):
                return self._edit_body_only(clause, change, after)
            # A suggestion needs the live document: opening it stores the seed, then as below.
        opened = self.open(clause)
        with opened.lock:
            if self.multi_process:
                self._catch_up(opened)
            update_bytes = opened.doc.apply_change(compute(opened.doc), origin=origin)
            if after is not None:
                after(opened.doc)
            if update_bytes is None:
                return False
            text = opened.doc.text
            self.pin(opened)  # until the transaction ends
        self._log_in_session(opened, update_bytes, user_id=user_id, origin=origin)
        clause.body, clause.updated_at = text, utcnow()
        return True

    @staticmethod
    def _edit_body_only(clause: Clause, new_text: str, after: Callable[[ClauseDocument], None] | None) -> bool:
        """A clause never co-edited: only its body changes (its first document is seeded from it)."""
        if after is not None:
            after(ClauseDocument.from_history(None, [seed_update(new_text)]))
        if new_text == clause.body:
            return False
        clause.body, clause.updated_at = new_text, utcnow()
        return True

    def _log_in_session(self, opened: OpenClause, update: bytes, *, user_id: int | None, origin: str) -> None:
        """Add the log row of a server-side edit to the caller's transaction, and have its end
        (commit: broadcast; rollback: forget the in-memory document) handled."""
        session = db.session()
        self.log.append_in_session(session, clause_id=opened.clause_id, update=update, user_id=user_id, origin=origin)
        edits = session.info.setdefault(_IN_TRANSACTION, [])
        edits.append((self, opened, sync_update_message(update)))
        # Listeners on this session object only, not on every Session of the process.
        if not event.contains(session, "after_commit", _edits_committed):
            event.listen(session, "after_commit", _edits_committed)
            event.listen(session, "after_rollback", _edits_rolled_back)

    def _committed_in_session(self, opened: OpenClause) -> None:
        opened.updates_since_snapshot += 1
        opened.body_written_at = time.monotonic()
        self.unpin(opened.uid)

    def catch_up(self, opened: OpenClause) -> None:
        """Bring ``opened`` up to date with every update other processes stored (when several
        processes write; the sweep and every message do this on their own schedule)."""
        with opened.lock:
            self._catch_up(opened)

    def _catch_up_if_due(self, opened: OpenClause) -> None:
        """The catch-up, thorough or quick, if its interval has passed (lock held)."""
        now = time.monotonic()
        if now - opened.thorough_look_at >= CATCH_UP_THOROUGH_EVERY:
            self._catch_up(opened)
        elif now - opened.quick_look_at >= CATCH_UP_QUICK_EVERY:
            self._catch_up(opened, quick=True)

    def _catch_up(self, opened: OpenClause, *, quick: bool = False, released: list[bytes] | None = None) -> None:
        """Apply updates other processes stored since we last looked (lock held).

        Thorough: every id above the settled mark not applied yet (finds a lower id committed
        after a higher one). Quick: only ids above the highest seen. A stored update can release
        one this replica was holding back (it arrived before what it builds on); the released
        part has not been stored by anyone yet, so it is queued here, or handed to the caller in
        ``released`` when given.
        """
        now = time.monotonic()
        with self.app.app_context():
            # Ids first (an index-only scan), then the bytes of those not applied yet. Thorough:
            # above the settled mark; quick: above the highest id seen.
            ids = self.log.ids_after(opened.clause_id, opened.seen_update_id if quick else opened.settled_update_id)
            rows = self.log.updates([i for i in ids if i not in opened.recent_ids])
            db.session.remove()
        for update_id, stored in rows:
            freed = opened.doc.apply_stored(stored)
            opened.recent_ids[update_id] = now
            opened.seen_update_id = max(opened.seen_update_id, update_id)
            if freed is not None and released is not None:
                released.append(freed)
            elif freed is not None:
                self._store_and_broadcast(LogEntry(opened.clause_id, freed, None, "editor", owner=opened))
        opened.seen_update_id = max([opened.seen_update_id, *ids])
        opened.quick_look_at = now
        if not quick:
            opened.thorough_look_at = now
            _settle(opened, now)

    def _store_and_broadcast(self, pending: LogEntry) -> None:
        """Queue an edit nobody else will send to the room (one held back and now released: its
        sender was told to resync, not acknowledged) and broadcast it once it is stored."""

        def broadcast(done: Future[int]) -> None:
            if done.exception() is None:
                signals.live_text_committed.send(
                    self.app, edits=[(pending.owner.uid, sync_update_message(pending.update))])

        pending.done.add_done_callback(broadcast)
        self._submit(pending)

    def _wait(self, pending: LogEntry) -> None:
        try:
            self.log.wait(pending)
        except Exception as error:
            self.evict(pending.owner.uid)
            raise PersistenceFailed("the edit could not be stored") from error

    def _submit(self, pending: LogEntry) -> None:
        """Queue ``pending`` for the log; the caller holds the clause's lock."""
        opened: OpenClause = pending.owner
        opened.submitted += 1
        pending.seq = opened.submitted
        self.log.append(pending)

    def _stored(self, batch: list[LogEntry], ids: list[int]) -> None:
        """The log stored ``batch``: bookkeeping, and a snapshot for clauses with many new updates."""
        stored_at = time.monotonic()
        for pending, update_id in zip(batch, ids, strict=True):
            opened: OpenClause = pending.owner
            opened.updates_since_snapshot += 1
            opened.body_written_at = stored_at
            if self.multi_process:  # our own rows: the catch-up need not read them back
                opened.recent_ids[update_id] = stored_at
        for opened in {p.owner.uid: p.owner for p in batch}.values():
            if opened.updates_since_snapshot >= SNAPSHOT_EVERY:
                self._snapshot(opened, max(i for p, i in zip(batch, ids, strict=True) if p.owner is opened))

    @staticmethod
    def _batch_texts(batch: list[LogEntry]) -> dict[int, str]:
        """Each clause's text as of the batch's last edit of it, read once per batch rather than on
        every keystroke (a clause of a few pages costs more to read out than to apply an edit). A
        clause with edits queued after this batch is left out: its text already holds them, and
        the batch that stores them writes its body."""
        last = {p.owner.uid: p for p in batch}
        texts = {}
        for pending in last.values():
            opened: OpenClause = pending.owner
            with opened.lock:
                if opened.submitted == pending.seq:
                    texts[opened.clause_id] = opened.doc.text
        return texts

    def _snapshot(self, opened: OpenClause, upto: int) -> None:
        """Compact: the log stores the whole document, so the next open replays only what follows."""
        with opened.lock:
            if self.multi_process:
                self._catch_up(opened)
            state = opened.doc.encode_state()
            opened.updates_since_snapshot = 0
        self.log.write_snapshot(opened.clause_id, upto, state)


def _settle(opened: OpenClause, now: float) -> None:
    """Raise the settled mark to the highest id seen at least CATCH_UP_SETTLE_SECONDS ago: every
    transaction that took a lower id has committed or rolled back since. The writer thread adds
    ids concurrently, hence the copy."""
    cutoff = now - CATCH_UP_SETTLE_SECONDS
    settled = [update_id for update_id, seen in list(opened.recent_ids.items()) if seen <= cutoff]
    if not settled:
        return
    opened.settled_update_id = max(opened.settled_update_id, max(settled))
    for update_id in [i for i in list(opened.recent_ids) if i <= opened.settled_update_id]:
        opened.recent_ids.pop(update_id, None)


def store_for(app: Flask) -> ClauseStore:
    store: ClauseStore = app.extensions["codedraft_collab"]
    return store


# session.info: the server-side edits of the session's current transaction, as
# (store, open clause, update frame).
_IN_TRANSACTION = "codedraft_live_edits"


def _edits_committed(session: Session) -> None:
    """The transaction holding server-side edits committed: the log has them; tell the rooms."""
    edits = session.info.pop(_IN_TRANSACTION, None) or []
    by_store: dict[ClauseStore, list[tuple[str, bytes]]] = {}
    for store, opened, frame in edits:
        store._committed_in_session(opened)
        by_store.setdefault(store, []).append((opened.uid, frame))
    for store, frames in by_store.items():
        signals.live_text_committed.send(store.app, edits=frames)


def _edits_rolled_back(session: Session) -> None:
    """The in-memory documents hold edits the log does not: drop them, reload on next use."""
    for store, opened, _frame in session.info.pop(_IN_TRANSACTION, None) or []:
        store.unpin(opened.uid)
        store.evict(opened.uid)
