"""Open clause documents and their durable log: the stateful half of co-editing.

Order for every incoming edit (STYLE.md habit 6): the adapter authorises, the core validates
and applies, this store persists (group commit), and only then is the edit acknowledged and
broadcast. A single writer thread takes every pending update queued at that moment and stores
them in one transaction, so concurrent typists share one fsync instead of queueing for theirs.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field

from flask import Flask
from pycrdt import Doc, Text, merge_updates
from sqlalchemy import Engine, create_engine, event, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from codedraft import signals
from codedraft.codes.models import Clause
from codedraft.collab.core import BODY, ClauseDocument, SyncOutcome, sync_update_message
from codedraft.collab.models import ClauseSnapshot, ClauseUpdate
from codedraft.concurrency import run_blocking
from codedraft.extensions import db
from codedraft.timeutil import utcnow

log = logging.getLogger(__name__)

# A clause is re-snapshotted after this many new updates, so opening it replays few.
SNAPSHOT_EVERY = 400
# Updates just below a snapshot's mark are replayed too: on PostgreSQL a lower id can commit
# after a higher one. Yjs updates are idempotent, so replaying a few twice costs nothing.
SNAPSHOT_OVERLAP = 200
# The client id of the update that turns a clause's stored body into its first Yjs state. Fixed,
# so two processes seeding the same clause produce identical structs that Yjs merges into one.
SEED_CLIENT_ID = 1
MAX_BATCH = 500
# A batch PostgreSQL aborted (deadlock_detected, serialization_failure) stored nothing and is tried
# again, up to this many times in all.
WRITE_ATTEMPTS = 3
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
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


def seed_update(text: str) -> bytes:
    """The deterministic first update of a clause whose body predates co-editing."""
    doc: Doc[Text] = Doc(client_id=SEED_CLIENT_ID)
    body = doc.get(BODY, type=Text)
    if text:
        body.insert(0, text)
    return doc.get_update()


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


@dataclass
class PendingUpdate:
    clause: OpenClause
    update: bytes
    user_id: int | None
    origin: str
    done: Future[int] = field(default_factory=Future)
    # Its place among the clause's queued edits (OpenClause.submitted when it was queued).
    seq: int = 0


class PersistenceFailed(RuntimeError):
    """The database refused an update; the document is reloaded from the log."""


class ClauseStore:
    """Registry of open clauses for one app, with the group-commit writer."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.multi_process = bool(app.config.get("REDIS_URL")) or bool(app.config.get("COLLAB_CATCH_UP"))
        self._open: dict[str, OpenClause] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._writer_engine: Engine | None = None
        self._registry_lock = threading.Lock()
        self._queue: queue.Queue[PendingUpdate | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self.stats = {"batches": 0, "updates": 0, "retries": 0}

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
        snapshot = db.session.get(ClauseSnapshot, clause.id)
        since = snapshot.upto_update_id - SNAPSHOT_OVERLAP if snapshot else 0
        rows = db.session.execute(
            select(ClauseUpdate.id, ClauseUpdate.update)
            .where(ClauseUpdate.clause_id == clause.id, ClauseUpdate.id > since)
            .order_by(ClauseUpdate.id)
        ).all()
        if snapshot is None and not rows:
            self._store_seed(clause)
            rows = db.session.execute(
                select(ClauseUpdate.id, ClauseUpdate.update).where(ClauseUpdate.clause_id == clause.id)
            ).all()
        document = ClauseDocument.from_history(snapshot.state if snapshot else None, [u for _, u in rows])
        seen = max([snapshot.upto_update_id if snapshot else 0, *(i for i, _ in rows)])
        now = time.monotonic()
        return OpenClause(uid=clause.uid, clause_id=clause.id, code_id=clause.code_id, doc=document,
                          seen_update_id=seen, updates_since_snapshot=len(rows),
                          settled_update_id=max(since, 0), recent_ids={i: now for i, _ in rows})

    def _store_seed(self, clause: Clause) -> None:
        """Store the seed on the writer's own connection, committed at once. Not on a second
        connection from the app's pool: the loader already holds one, and fifty clauses opened at
        once by a thousand viewers then held the whole PostgreSQL pool while each waited for a
        second connection (a deadlock until the pool's 30 s timeout)."""
        row = {"clause_id": clause.id, "user_id": None, "update": seed_update(clause.body),
               "created_at": utcnow(), "origin": "import"}
        with Session(self._writer_bind()) as session:
            session.execute(insert(ClauseUpdate), [row])
            session.commit()

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
        """Close the writer's own connection (tests, and any code that makes a store of its own;
        the app's store lives as long as its process)."""
        engine, self._writer_engine = self._writer_engine, None
        if engine is not None and self.app.extensions.get("sqlalchemy") is not None:
            with self.app.app_context():
                if engine is not db.engine:
                    engine.dispose()

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
            if run_blocking(self._write_body_if_stale, opened.clause_id, text):
                rewritten.append(opened.uid)
        if rewritten:
            signals.live_bodies_stored.send(self.app)
        return rewritten

    def _write_body_if_stale(self, clause_id: int, text: str) -> bool:
        with Session(self._writer_bind()) as session:
            result = session.execute(update(Clause).where(Clause.id == clause_id, Clause.body != text)
                                     .values(body=text, updated_at=utcnow()))
            session.commit()
        return bool(getattr(result, "rowcount", 0))

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, opened: OpenClause, message: bytes, *, user_id: int | None, may_write: bool) -> SyncOutcome:
        """Validate and apply ``message``; if it changed the clause, persist it before returning.

        Raises ProtocolError (from the core) for a bad message, PersistenceFailed if the
        database refused; in that case the in-memory document is dropped and reloaded later, so
        memory never holds an edit the log does not.
        """
        with opened.lock:
            if self.multi_process:
                self._catch_up_if_due(opened)
            outcome = opened.doc.receive(message, may_write=may_write)
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
            pending = PendingUpdate(opened, outcome.update, user_id, "editor")
            self._submit(pending)
        self._wait(pending)
        return outcome

    def has_history(self, clause: Clause) -> bool:
        """Whether the clause has ever been opened for co-editing (its log is not empty)."""
        return db.session.scalar(select(ClauseUpdate.id).where(ClauseUpdate.clause_id == clause.id).limit(1)) is not None

    def edit_live_text(self, clause: Clause, compute: Callable[[ClauseDocument], str], *, user_id: int | None,
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
        Returns whether the text changed.
        """
        if not self.has_history(clause):
            new_text = compute(ClauseDocument.from_history(None, [seed_update(clause.body)]))
            if after is not None:
                after(ClauseDocument.from_history(None, [seed_update(new_text)]))
            if new_text == clause.body:
                return False
            clause.body, clause.updated_at = new_text, utcnow()
            return True
        opened = self.open(clause)
        with opened.lock:
            if self.multi_process:
                self._catch_up(opened)
            update_bytes = opened.doc.apply_text(compute(opened.doc), origin=origin)
            if after is not None:
                after(opened.doc)
            if update_bytes is None:
                return False
            text = opened.doc.text
            self.pin(opened)  # until the transaction ends
        self._log_in_session(opened, update_bytes, user_id=user_id, origin=origin)
        clause.body, clause.updated_at = text, utcnow()
        return True

    def _log_in_session(self, opened: OpenClause, update: bytes, *, user_id: int | None, origin: str) -> None:
        """Add the log row of a server-side edit to the caller's transaction, and have its end
        (commit: broadcast; rollback: forget the in-memory document) handled."""
        session = db.session()
        session.add(ClauseUpdate(clause_id=opened.clause_id, user_id=user_id, update=update, origin=origin))
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
            if quick:
                ids = db.session.scalars(select(ClauseUpdate.id).where(
                    ClauseUpdate.clause_id == opened.clause_id, ClauseUpdate.id > opened.seen_update_id)).all()
            else:
                # Ids first (an index-only scan), then the bytes of those not applied yet.
                ids = db.session.scalars(select(ClauseUpdate.id).where(
                    ClauseUpdate.clause_id == opened.clause_id, ClauseUpdate.id > opened.settled_update_id)).all()
            unseen = [i for i in ids if i not in opened.recent_ids]
            rows = db.session.execute(
                select(ClauseUpdate.id, ClauseUpdate.update).where(ClauseUpdate.id.in_(unseen))
                .order_by(ClauseUpdate.id)
            ).all() if unseen else []
            db.session.remove()
        for update_id, stored in rows:
            freed = opened.doc.apply_stored(stored)
            opened.recent_ids[update_id] = now
            opened.seen_update_id = max(opened.seen_update_id, update_id)
            if freed is not None and released is not None:
                released.append(freed)
            elif freed is not None:
                self._store_and_broadcast(PendingUpdate(opened, freed, None, "editor"))
        opened.seen_update_id = max([opened.seen_update_id, *ids])
        opened.quick_look_at = now
        if not quick:
            opened.thorough_look_at = now
            _settle(opened, now)

    def _store_and_broadcast(self, pending: PendingUpdate) -> None:
        """Queue an edit nobody else will send to the room (one held back and now released: its
        sender was told to resync, not acknowledged) and broadcast it once it is stored."""

        def broadcast(done: Future[int]) -> None:
            if done.exception() is None:
                signals.live_text_committed.send(
                    self.app, edits=[(pending.clause.uid, sync_update_message(pending.update))])

        pending.done.add_done_callback(broadcast)
        self._submit(pending)

    def _wait(self, pending: PendingUpdate) -> None:
        try:
            pending.done.result(timeout=30)
        except Exception as error:
            self.evict(pending.clause.uid)
            raise PersistenceFailed("the edit could not be stored") from error

    # -- the writer ---------------------------------------------------------------------------

    def _submit(self, pending: PendingUpdate) -> None:
        """Queue ``pending`` for the writer; the caller holds the clause's lock."""
        pending.clause.submitted += 1
        pending.seq = pending.clause.submitted
        if self._writer is None or not self._writer.is_alive():
            with self._writer_lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._write_loop, name="collab-writer", daemon=True)
                    self._writer.start()
        self._queue.put(pending)

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            self._write_batch(batch)

    def _write_batch(self, batch: list[PendingUpdate]) -> None:
        texts = self._batch_texts(batch)
        try:
            ids = self._store_rows_retrying(batch, texts)
        except Exception as error:  # the whole batch failed: every sender is told, nothing acked
            log.exception("storing %d clause updates failed", len(batch))
            for pending in batch:
                pending.done.set_exception(error)
            return
        self.stats["batches"] += 1
        self.stats["updates"] += len(batch)
        stored_at = time.monotonic()
        for pending, update_id in zip(batch, ids, strict=True):
            pending.clause.updates_since_snapshot += 1
            pending.clause.body_written_at = stored_at
            if self.multi_process:  # our own rows: the catch-up need not read them back
                pending.clause.recent_ids[update_id] = stored_at
            pending.done.set_result(update_id)
        if texts:
            self._announce_bodies()
        for opened in {p.clause.uid: p.clause for p in batch}.values():
            if opened.updates_since_snapshot >= SNAPSHOT_EVERY:
                self._snapshot(opened, max(i for p, i in zip(batch, ids, strict=True) if p.clause is opened))

    @staticmethod
    def _batch_texts(batch: list[PendingUpdate]) -> dict[int, str]:
        """Each clause's text as of the batch's last edit of it, read once per batch rather than on
        every keystroke (a clause of a few pages costs more to read out than to apply an edit). A
        clause with edits queued after this batch is left out: its text already holds them, and
        the batch that stores them writes its body."""
        last = {p.clause.uid: p for p in batch}
        texts = {}
        for pending in last.values():
            opened = pending.clause
            with opened.lock:
                if opened.submitted == pending.seq:
                    texts[opened.clause_id] = opened.doc.text
        return texts

    def _store_rows_retrying(self, batch: list[PendingUpdate], texts: dict[int, str]) -> list[int]:
        """Store the batch; a transaction PostgreSQL aborted to break a deadlock or a
        serialisation conflict is tried again, since nothing of it was stored."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return run_blocking(self._store_rows, batch, texts)
            except DBAPIError as error:
                if attempt == WRITE_ATTEMPTS or getattr(error.orig, "sqlstate", None) not in TRANSIENT_SQLSTATES:
                    raise
                self.stats["retries"] += 1
                log.warning("storing %d clause updates: %s; trying again", len(batch), type(error.orig).__name__)
                time.sleep(0.02 * attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _store_rows(self, batch: list[PendingUpdate], texts: dict[int, str]) -> list[int]:
        """Insert the batch's updates and the clauses' ``texts`` in one transaction; the log
        ids in batch order. Touches only the database, so it can run outside the event loop."""
        now = utcnow()
        with Session(self._writer_bind()) as session:
            ids = session.scalars(
                insert(ClauseUpdate).returning(ClauseUpdate.id, sort_by_parameter_order=True),
                [{"clause_id": p.clause.clause_id, "user_id": p.user_id, "update": p.update,
                  "created_at": now, "origin": p.origin} for p in batch],
            ).all()
            # Clause rows are locked in id order: two processes storing batches that touch the
            # same clauses in different orders deadlocked (bench/realtime_scaled.py, 3 processes).
            for clause_id, text in sorted(texts.items()):
                session.execute(update(Clause).where(Clause.id == clause_id).values(body=text, updated_at=now))
            session.commit()
        return list(ids)

    def _announce_bodies(self) -> None:
        """Tell the app (search) that clause bodies were committed; its failure is not the writer's."""
        try:
            signals.live_bodies_stored.send(self.app)
        except Exception:
            log.exception("a receiver of live_bodies_stored failed")

    def _snapshot(self, opened: OpenClause, upto: int) -> None:
        """Compact: store the whole document so the next open replays only what follows."""
        with opened.lock:
            if self.multi_process:
                self._catch_up(opened)
            state = opened.doc.encode_state()
            opened.updates_since_snapshot = 0
        with Session(self._writer_bind()) as session:
            existing = session.get(ClauseSnapshot, opened.clause_id)
            if existing is None:
                session.add(ClauseSnapshot(clause_id=opened.clause_id, upto_update_id=upto, state=state))
            else:
                existing.upto_update_id, existing.state, existing.created_at = upto, state, utcnow()
            session.commit()

    def _writer_bind(self) -> Engine:
        """The writer's own engine with one connection of its own. Taking connections from the
        shared pool, the writer queued behind hundreds of socket handlers (each acquiring one
        for its permission checks) and stalled until the pool's 30 s timeout under load."""
        if self._writer_engine is None:
            with self.app.app_context():
                shared = db.engine
            url = shared.url
            if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
                self._writer_engine = shared  # an in-memory database exists on one connection only
            else:
                # SQLite: the writer thread may be restarted, and the connection moves with it.
                args = {"check_same_thread": False} if url.get_backend_name() == "sqlite" else {}
                self._writer_engine = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=True,
                                                    connect_args=args)
        return self._writer_engine


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
