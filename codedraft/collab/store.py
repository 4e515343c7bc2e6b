"""Live clause documents: the in-memory replicas people co-edit, over the clause log.

Order for every incoming edit (STYLE.md habit 6): the adapter authorises, the core validates
and applies (here, under the clause's lock), the log persists it (``log.py``: group commit),
and only then is the edit acknowledged and broadcast. This module owns the documents, their
locks, loading, eviction and, with several processes, applying what the others stored, read in
order from the clause feed (``feed.py``); ``ClauseLog`` owns every write of the log.
Server-side edits have one way in: :meth:`ClauseStore.edit_live_text`.
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
from codedraft.collab.core import ClauseDocument, LiveChange, ProtocolError, SyncOutcome, sync_update_message
from codedraft.collab.feed import START, ClauseFeed, Published, StreamedEdit, position_key
from codedraft.collab.log import ClauseLog, LogEntry, seed_update
from codedraft.concurrency import run_blocking
from codedraft.extensions import db
from codedraft.timeutil import utcnow

log = logging.getLogger(__name__)

# A clause is re-snapshotted after this many new updates, so opening it replays few.
SNAPSHOT_EVERY = 400
# A clause nobody in this process has joined or touched for this long is dropped from memory
# (its log has everything acknowledged): a document costs about 1 kB per stored edit, and a
# server up for weeks would otherwise keep every clause anyone ever opened.
IDLE_SECONDS = 120.0
# A peer's step 1 is answered with the whole document, so not while a transaction holds a
# server-side edit of the clause: the answer waits for it to end, looking this often, this long.
SETTLE_POLL_SECONDS = 0.01
SETTLE_SECONDS = 10.0


@dataclass
class OpenClause:
    """A clause document held in memory while anyone works on it."""

    uid: str
    clause_id: int
    code_id: int
    doc: ClauseDocument
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Highest log id this replica holds (a snapshot is written "up to" it).
    seen_update_id: int = 0
    updates_since_snapshot: int = 0
    # Several processes: the position on the clause's feed up to which this replica has applied
    # what others stored (codedraft/collab/feed.py).
    feed_position: str = START
    # When anyone last opened or wrote it, and how many open transactions hold an edit of it
    # not committed yet; neither kind of clause is dropped from memory.
    last_used: float = field(default_factory=time.monotonic)
    uncommitted: int = 0
    # Several processes: this replica holds edits (stored here, or read from the feed) that the
    # body column may lack; written when the feed is quiet (``ClauseStore.write_owed_bodies``).
    body_owed: bool = False
    # How many edits of it were ever queued for the writer (counted under ``lock``), and the last:
    # the writer stores in queue order, so once that one is stored, all that it follows are.
    submitted: int = 0
    last_submitted: LogEntry | None = None
    # Dropped from memory (idle, a failed write, a rolled-back server-side edit): it may hold an
    # edit the log does not, so it never writes its text anywhere again; the next open reloads.
    dropped: bool = False


class PersistenceFailed(RuntimeError):
    """The database refused an update; the document is reloaded from the log."""


class ClauseStore:
    """Registry of open clauses for one app, with the group-commit writer."""

    def __init__(self, app: Flask, feed: ClauseFeed | None = None) -> None:
        """``feed``: how this process hears what other processes store (None: it is the only one)."""
        self.app = app
        self.feed = feed
        self._open: dict[str, OpenClause] = {}
        self._by_clause_id: dict[int, OpenClause] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._registry_lock = threading.Lock()
        self.log = ClauseLog(app, texts_of=self._batch_texts, after_stored=self._stored, after_done=self._compact)

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

    def open(self, clause: Clause, *, compact: bool = True) -> OpenClause:
        """The in-memory document of ``clause``, loaded from its snapshot and log on first use.

        A long tail replayed is compacted before this returns, unless ``compact`` is False: the
        caller then calls :meth:`compact_if_long` itself once it has answered whoever waits."""
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
            if self.feed is not None:
                self.feed.start(self._streamed, self.resync_from_log, self.write_owed_bodies)
            opened = self._load(clause)
            with self._registry_lock:
                self._open[clause.uid] = opened
                self._by_clause_id[opened.clause_id] = opened
                self._loading.pop(clause.uid, None)
            if self.feed is not None:
                self.feed.follow(opened.clause_id, opened.feed_position)
            if compact:
                self.compact_if_long(opened)
            return opened

    @staticmethod
    def owes_snapshot(opened: OpenClause) -> bool:
        """Whether ``opened`` replayed so long a tail that it should be compacted now."""
        return opened.updates_since_snapshot >= SNAPSHOT_EVERY

    def compact_if_long(self, opened: OpenClause) -> None:
        """A long tail replayed on open (an import, or a crash before the last compaction) is
        compacted at once, so the next process to open the clause reads a snapshot instead."""
        if not self.owes_snapshot(opened):
            return
        try:
            run_blocking(self._snapshot, opened, opened.seen_update_id)
        except Exception:  # the clause is open and correct; only the next open stays slow
            log.exception("compacting clause %s after loading it failed", opened.uid)

    def _load(self, clause: Clause) -> OpenClause:
        # The feed's position first, then the log: whatever commits after the read is published
        # after its commit, so after this position (codedraft/collab/feed.py).
        position = self.feed.position(clause.id) if self.feed is not None else START
        history = self.log.history(clause.id)
        if history.snapshot is None and not history.rows:
            self.log.store_seed(clause.id, clause.body)
            history = self.log.history(clause.id)
        rows = history.rows
        document = ClauseDocument.from_history(history.snapshot, [u for _, u in rows])
        seen = max([history.snapshot_upto, *(i for i, _ in rows)])
        stale = document.text != clause.body
        if stale and self.feed is not None:
            # A process that died owing this body (several processes write bodies when quiet)
            # left it behind the log; drafts, exports and search read the body.
            self.log.write_body_if_stale(clause.id, document.text)
        # One process: a batch left it to a transaction that then rolled back. Owed, not written
        # here: the caller may be in a transaction holding SQLite's write lock, which the
        # writer's own connection would wait for. The next batch or server-side edit writes it.
        return OpenClause(uid=clause.uid, clause_id=clause.id, code_id=clause.code_id, doc=document,
                          seen_update_id=seen, updates_since_snapshot=len(rows), feed_position=position,
                          body_owed=stale and self.feed is None)

    def evict(self, uid: str) -> None:
        with self._registry_lock:
            opened = self._open.pop(uid, None)
            if opened is not None:
                self._forget(opened)

    def _forget(self, opened: OpenClause) -> None:
        """The clause left memory (registry lock held): stop following its feed."""
        opened.dropped = True
        if self._by_clause_id.get(opened.clause_id) is opened:
            del self._by_clause_id[opened.clause_id]
            if self.feed is not None:
                self.feed.forget(opened.clause_id)

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

    def drop_rolled_back(self, opened: OpenClause) -> None:
        """The transaction holding an edit of ``opened`` rolled back: out of memory first, so that
        an answer waiting for that transaction reloads the clause rather than answer from it."""
        self.evict(opened.uid)
        with self._registry_lock:
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
                    self._forget(opened)
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

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, opened: OpenClause, message: bytes, *, user_id: int | None, may_write: bool,
                may_suggest: bool = False, writes_as: Callable[[int, bool], bool] | None = None) -> SyncOutcome:
        """Validate and apply ``message``; if it changed the clause, persist it before returning.

        Raises ProtocolError (from the core) for a bad message, PersistenceFailed if the
        database refused; in that case the in-memory document is dropped and reloaded later, so
        memory never holds an edit the log does not.
        """
        suggester = user_id if may_suggest and not may_write else None
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            with opened.lock:
                outcome = opened.doc.receive(message, may_write=may_write, suggester=suggester, writes_as=writes_as)
                if outcome.kind != "step1" or self._may_write_out(opened):
                    outcome, streamed, pending = self._take_in(opened, outcome, user_id)
                    break
            # A step 1's answer (a step 2) would carry a server-side edit that may yet roll back;
            # the peer would send it back as its own at its next sync. A step 1 changes nothing.
            opened = self._after_transaction(opened, deadline)
        # Other processes' edits read on the way are committed already: this process's sockets get
        # them now, as from the feed's reader, which will not bring them again.
        self._send_streamed(opened, streamed)
        if pending is not None:
            self._wait(pending)  # at once when stored already; its error if storing it failed
        return outcome

    def _take_in(self, opened: OpenClause, outcome: SyncOutcome,
                 user_id: int | None) -> tuple[SyncOutcome, list[bytes], LogEntry | None]:
        """After the core applied a message (lock held): release a held edit from the feed, queue
        what is new for the log. The outcome, the frames read from the feed, and the log entry the
        answer waits for."""
        streamed: list[bytes] = []
        if outcome.deferred and self.feed is not None:
            outcome, streamed = self._release_from_feed(opened, outcome)
        if outcome.update is not None:
            pending = LogEntry(opened.clause_id, outcome.update, user_id, "editor", owner=opened)
            self._submit(pending)
            return outcome, streamed, pending
        if outcome.kind in ("update", "step2") and not outcome.deferred:
            # Nothing new: the document holds all of it, maybe in an edit still on its way to the
            # log (a resend, or one the feed released). The answer waits for that.
            return outcome, streamed, opened.last_submitted
        return outcome, streamed, None

    def _after_transaction(self, opened: OpenClause, deadline: float) -> OpenClause:
        """``opened`` once no transaction holds an uncommitted edit of it; reloaded from the log if
        that transaction rolled back (which drops the document). PersistenceFailed at ``deadline``."""
        while opened.uncommitted and not opened.dropped:
            if time.monotonic() >= deadline:
                raise PersistenceFailed("the clause is being changed; try again")
            time.sleep(SETTLE_POLL_SECONDS)
        current = self.opened(opened.uid)
        if current is not None:
            return current
        clause = db.session.get(Clause, opened.clause_id)
        if clause is None:
            raise PersistenceFailed("the clause is gone")
        return self.open(clause)

    def _release_from_feed(self, opened: OpenClause, outcome: SyncOutcome) -> tuple[SyncOutcome, list[bytes]]:
        """A held edit may build on one on the feed already, not read yet (the sender had it from
        another process): read the feed now (lock held). If that releases the edit, it is stored,
        acknowledged and broadcast as if it had applied at once. Also the frames of what was read."""
        assert self.feed is not None
        released: list[bytes] = []
        frames = self._apply_streamed(opened, self.feed.read_after(opened.clause_id, opened.feed_position),
                                      released=released)
        if released:
            update = released[0] if len(released) == 1 else merge_updates(*released)
            outcome = SyncOutcome(kind=outcome.kind, update=update, broadcast=sync_update_message(update))
        return outcome, frames

    def _send_streamed(self, opened: OpenClause, frames: list[bytes]) -> None:
        """Send other processes' edits, applied here, to this process's sockets in the room."""
        if frames:
            signals.live_text_committed.send(self.app, edits=[(opened.uid, frame) for frame in frames])

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
        log_id = self.log.append_in_session(session, clause_id=opened.clause_id, update=update, user_id=user_id,
                                            origin=origin)
        edits = session.info.setdefault(_IN_TRANSACTION, [])
        edits.append((self, opened, update, log_id))
        # Listeners on this session object only, not on every Session of the process.
        if not event.contains(session, "after_commit", _edits_committed):
            event.listen(session, "after_commit", _edits_committed)
            event.listen(session, "after_rollback", _edits_rolled_back)

    def _committed_in_session(self, edits: list[tuple[OpenClause, bytes, int]]) -> None:
        """Server-side edits committed: bookkeeping, and onto the feed for the other processes."""
        for opened, _update, log_id in edits:
            opened.updates_since_snapshot += 1
            opened.seen_update_id = max(opened.seen_update_id, log_id)
            self.unpin(opened.uid)
        if self.feed is not None:
            self.feed.publish([Published(opened.clause_id, log_id, update) for opened, update, log_id in edits])
        else:
            # A batch stored meanwhile left the body to now (one process; several write owed
            # bodies when their feed is quiet).
            self.write_owed_bodies()

    # -- other processes' edits (the feed) ----------------------------------------------------------

    def _streamed(self, clause_id: int, edits: list[StreamedEdit]) -> None:
        """The feed brought edits of a clause held here: apply those of other processes and send
        them to this process's sockets in its room."""
        opened = self._by_clause_id.get(clause_id)
        if opened is None:
            return
        with opened.lock:
            frames = self._apply_streamed(opened, edits)
            held_back = opened.doc.holds_back
        self._send_streamed(opened, frames)
        if held_back:
            # An edit on the feed builds on one that never reached it: stored by a process that
            # died between its commit and its publication. The log has it.
            self._read_again(opened)

    def _apply_streamed(self, opened: OpenClause, edits: list[StreamedEdit],
                        released: list[bytes] | None = None) -> list[bytes]:
        """Apply the feed's ``edits`` past the replica's position (lock held); the frames to send
        to this process's sockets. An edit can release one this replica was holding back (it came
        before what it builds on); nobody stored that part yet, so it is queued here and sent once
        stored, or handed to the caller in ``released``."""
        assert self.feed is not None
        frames = []
        for edit in edits:
            if position_key(edit.position) <= position_key(opened.feed_position):
                continue
            opened.feed_position = edit.position
            opened.seen_update_id = max(opened.seen_update_id, edit.log_id)
            if edit.origin == self.feed.token:
                continue  # stored here: applied and sent already
            try:
                freed = opened.doc.apply_stored(edit.update)
            except ProtocolError:
                log.exception("clause %s: an edit on the feed does not decode (log id %s)", opened.uid, edit.log_id)
                continue
            opened.body_owed = True
            frames.append(sync_update_message(edit.update))
            if freed is not None and released is not None:
                released.append(freed)
            elif freed is not None:
                self._store_and_broadcast(LogEntry(opened.clause_id, freed, None, "editor", owner=opened))
        if edits:
            opened.last_used = time.monotonic()
        return frames

    def resync_from_log(self) -> list[str]:
        """The feed may have lost edits (Redis was unreachable or restarted empty, or a process
        died between its commit and its publication): read every clause held here again from the
        log, the truth, and send this process's sockets what that added. Returns the uids that
        gained something."""
        if self.feed is None:
            return []
        gained = [opened.uid for opened in list(self._by_clause_id.values()) if self._read_again(opened)]
        if gained:
            log.warning("read %d clause(s) again from the log after a gap in the feed: %s", len(gained), gained)
        return gained

    def _read_again(self, opened: OpenClause) -> bool:
        """Read one clause again from the log and send this process's sockets what that added.
        The feed's position is noted first, as on opening. Returns whether it added anything."""
        assert self.feed is not None
        position = self.feed.position(opened.clause_id)
        with self.app.app_context():
            history = self.log.history(opened.clause_id)
            db.session.remove()
        stored = ([history.snapshot] if history.snapshot is not None else []) + [u for _, u in history.rows]
        with opened.lock:
            before_vector, before_text = opened.doc.state_vector(), opened.doc.text
            for update in stored:
                freed = opened.doc.apply_stored(update)
                if freed is not None:
                    self._store_and_broadcast(LogEntry(opened.clause_id, freed, None, "editor", owner=opened))
            changed = opened.doc.state_vector() != before_vector or opened.doc.text != before_text
            missed = opened.doc.diff_since(before_vector) if changed else None
            if position_key(position) > position_key(opened.feed_position):
                opened.feed_position = position
            opened.seen_update_id = max([opened.seen_update_id, *(i for i, _ in history.rows)])
            if changed:
                opened.body_owed = True
        self.feed.follow(opened.clause_id, opened.feed_position)
        if missed is not None:
            signals.live_text_committed.send(self.app, edits=[(opened.uid, sync_update_message(missed))])
        return missed is not None

    def write_owed_bodies(self) -> list[str]:
        """Write the body column of clauses whose replica holds edits the column may lack (stored
        here or read from the feed since this process last wrote it; the feed calls this when
        it is quiet, and at least every second). Each process's last body write then holds every
        edit it has, so once typing stops the body equals the log. Returns the uids whose body
        was rewritten."""
        rewritten = []
        for opened in list(self._by_clause_id.values()):
            if not opened.body_owed:
                continue
            with opened.lock:
                if not self._may_write_out(opened):
                    continue  # still owed: written once that transaction ends
                text, opened.body_owed = opened.doc.text, False
            try:
                if run_blocking(self.log.write_body_if_stale, opened.clause_id, text):
                    rewritten.append(opened.uid)
            except Exception:  # written by the next quiet moment or the next batch
                opened.body_owed = True
                log.exception("writing the body of clause %s failed", opened.uid)
        return rewritten

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
        opened.last_submitted = pending
        self.log.append(pending)

    def _stored(self, batch: list[LogEntry], ids: list[int]) -> None:
        """The log stored ``batch`` (not acknowledged yet): bookkeeping, and onto the clause feed,
        so an acknowledged edit is one the other processes can read."""
        for pending, update_id in zip(batch, ids, strict=True):
            opened: OpenClause = pending.owner
            opened.updates_since_snapshot += 1
            opened.seen_update_id = max(opened.seen_update_id, update_id)
        if self.feed is not None:
            self.feed.publish([Published(p.clause_id, i, p.update) for p, i in zip(batch, ids, strict=True)])

    def _compact(self, batch: list[LogEntry], ids: list[int]) -> None:
        """After the acknowledgements: a snapshot for clauses with many new updates."""
        for opened in {p.owner.uid: p.owner for p in batch}.values():
            if opened.updates_since_snapshot >= SNAPSHOT_EVERY:
                self._snapshot(opened, max(i for p, i in zip(batch, ids, strict=True) if p.owner is opened))

    def _batch_texts(self, batch: list[LogEntry]) -> dict[int, str]:
        """Each clause's text as of the batch's last edit of it, read once per batch rather than on
        every keystroke (a clause of a few pages costs more to read out than to apply an edit). A
        clause with edits queued after this batch is left out: its text already holds them, and
        the batch that stores them writes its body.

        Several processes: none. Every process's writer updating the same clause rows made the
        writers wait for each other's commits (a row lock per clause per batch: 2 processes
        acknowledged a third of what one did); the body is owed instead, and written when the
        feed is quiet or at least every second (``write_owed_bodies``)."""
        if self.feed is not None:
            for pending in batch:
                pending.owner.body_owed = True
            return {}
        last = {p.owner.uid: p for p in batch}
        texts = {}
        for pending in last.values():
            opened: OpenClause = pending.owner
            with opened.lock:
                if opened.submitted != pending.seq:
                    continue
                if self._may_write_out(opened):
                    texts[opened.clause_id] = opened.doc.text
                    opened.body_owed = False
                else:
                    opened.body_owed = True  # written once that transaction ends (see below)
        return texts

    def _may_write_out(self, opened: OpenClause) -> bool:
        """Whether the document may go into the body, a snapshot or a peer's step 2 (its lock
        held): not while a transaction holds a server-side edit of it not committed yet (the
        document shows that edit already; rolled back, the body, snapshot or peer would keep
        it), nor once the document was dropped (it may hold such an edit; the next open reloads)."""
        with self._registry_lock:
            return not (opened.uncommitted or opened.dropped)

    def _snapshot(self, opened: OpenClause, upto: int) -> None:
        """Compact: the log stores the whole document, so the next open replays only what follows.
        Not while a transaction holds a server-side edit of the clause (``_may_write_out``): the
        next batch compacts it instead."""
        with opened.lock:
            if not self._may_write_out(opened):
                return
            state = opened.doc.encode_state()
            opened.updates_since_snapshot = 0
        self.log.write_snapshot(opened.clause_id, upto, state)


def store_for(app: Flask) -> ClauseStore:
    store: ClauseStore = app.extensions["codedraft_collab"]
    return store


# session.info: the server-side edits of the session's current transaction, as
# (store, open clause, update, log id).
_IN_TRANSACTION = "codedraft_live_edits"


def _edits_committed(session: Session) -> None:
    """The transaction holding server-side edits committed: the log has them; tell the rooms."""
    edits = session.info.pop(_IN_TRANSACTION, None) or []
    by_store: dict[ClauseStore, list[tuple[OpenClause, bytes, int]]] = {}
    for store, opened, update, log_id in edits:
        by_store.setdefault(store, []).append((opened, update, log_id))
    for store, committed in by_store.items():
        store._committed_in_session(committed)
        signals.live_text_committed.send(
            store.app, edits=[(opened.uid, sync_update_message(update)) for opened, update, _ in committed])


def _edits_rolled_back(session: Session) -> None:
    """The in-memory documents hold edits the log does not: drop them, reload on next use."""
    for store, opened, _update, _log_id in session.info.pop(_IN_TRANSACTION, None) or []:
        store.drop_rolled_back(opened)
