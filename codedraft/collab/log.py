"""The clause log: every clause's Yjs updates, append-only and durable, and its snapshots.

This is the only code that writes update rows (``clause_update``) and snapshots. A single writer
thread with a database connection of its own takes every entry queued at that moment and stores
them in one transaction (group commit), so concurrent typists share one fsync instead of queueing
for theirs; a transaction PostgreSQL aborts for a deadlock or a serialisation conflict is tried
again. A server-side edit adds its row to the caller's transaction instead
(:meth:`ClauseLog.append_in_session`).

The log knows clause ids and bytes, not live documents: what the live documents
(``store.py``) need around a write, each clause's current text before it and their bookkeeping
after it, they hand in as two functions.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from flask import Flask
from pycrdt import Doc, Text
from sqlalchemy import Connection, Engine, LargeBinary, bindparam, create_engine, insert, select, text, update
from sqlalchemy import Text as SQLText
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from codedraft import signals
from codedraft.codes.models import Clause
from codedraft.collab.core import BODY, update_clients
from codedraft.collab.models import ClauseSnapshot, ClauseUpdate
from codedraft.concurrency import run_blocking
from codedraft.extensions import db
from codedraft.timeutil import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

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
# How long a handler waits for its entry to be stored before giving up on it.
WAIT_SECONDS = 30.0
# How far back ClauseLog.author_of_client looks for the account behind a Yjs client id.
AUTHOR_ROWS = 2000


class CommitUnanswered(Exception):
    """The connection was lost while a batch committed: it may be stored or not, so it is not
    stored again; its senders are told it failed and send it again (Yjs merges a duplicate)."""


# The writer's two statements: the batch's update rows (their ids back, in batch order) and each
# touched clause's plain text.
STORE_UPDATES = insert(ClauseUpdate.__table__).returning(ClauseUpdate.__table__.c.id, sort_by_parameter_order=True)
# PostgreSQL: the same rows as four arrays, so the statement has one shape whatever the batch's
# size. SQLAlchemy's multi-row VALUES has one parameter per value and a different text for each
# size, so psycopg converted it anew every time (4 % of a process's CPU under the scaled
# throughput load) and never prepared it; this one psycopg prepares after a few uses. The rows
# go in ordered by their place in the batch, and the identity column takes its values in that
# order, so the returned ids sorted are in batch order (the same guarantee SQLAlchemy's own
# insert-many relies on for PostgreSQL).
STORE_UPDATES_ARRAYS = text(
    'INSERT INTO clause_updates (clause_id, user_id, "update", created_at, origin) '
    "SELECT clause_id, user_id, body, :now, origin "
    "FROM unnest(CAST(:clause_ids AS bigint[]), CAST(:user_ids AS bigint[]), :updates, CAST(:origins AS text[])) "
    "WITH ORDINALITY AS batch(clause_id, user_id, body, origin, place) ORDER BY place RETURNING id",
).bindparams(bindparam("now", type_=ClauseUpdate.__table__.c.created_at.type),
             bindparam("updates", type_=ARRAY(LargeBinary)), bindparam("origins", type_=ARRAY(SQLText)))
STORE_BODY = (update(Clause.__table__).where(Clause.__table__.c.id == bindparam("clause"))
              .values(body=bindparam("text"), updated_at=bindparam("at")))


def seed_update(text: str) -> bytes:
    """The deterministic first update of a clause whose body predates co-editing."""
    doc: Doc[Text] = Doc(client_id=SEED_CLIENT_ID)
    body = doc.get(BODY, type=Text)
    if text:
        body.insert(0, text)
    return doc.get_update()


@dataclass
class LogEntry:
    """One update waiting to be stored; ``done`` gets its log id, or the error that stopped it."""

    clause_id: int
    update: bytes
    user_id: int | None
    origin: str
    # Whatever queued it (the live documents' open clause); the log never looks inside.
    owner: Any = None
    seq: int = 0
    done: Future[int] = field(default_factory=Future)


class History(NamedTuple):
    """What opening a clause replays: its snapshot (if any) and the update rows after it."""

    snapshot: bytes | None
    snapshot_upto: int
    rows: list[tuple[int, bytes]]
    since: int


# The texts to store with a batch: clause id -> its current text (clauses left out keep theirs).
TextsOf = Callable[[list[LogEntry]], dict[int, str]]
# Called once a batch is stored, before its entries are done: (entries, their log ids); and once
# they are done (acknowledged).
AfterStored = Callable[[list[LogEntry], list[int]], None]


class ClauseLog:
    """The log of one app's database, with its group-commit writer."""

    def __init__(self, app: Flask, *, texts_of: TextsOf, after_stored: AfterStored,
                 after_done: AfterStored | None = None) -> None:
        self.app = app
        self._texts_of = texts_of
        self._after_stored = after_stored
        self._after_done = after_done
        self._writer_engine: Engine | None = None
        self._queue: queue.Queue[LogEntry | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        # Whether the writer's loop runs: set before it starts, cleared as it ends. Asked on
        # every append; Thread.is_alive() takes a lock, which under gevent cost 1.7 % of the
        # throughput benchmark's CPU.
        self._writing = False
        self._writer_lock = threading.Lock()
        self.stats = {"batches": 0, "updates": 0, "retries": 0, "reconnects": 0}

    # -- reading (on the caller's session) ------------------------------------------------------

    def has_history(self, clause_id: int) -> bool:
        """Whether the clause has ever been opened for co-editing (its log is not empty)."""
        first_update = select(ClauseUpdate.id).where(ClauseUpdate.clause_id == clause_id).limit(1)
        return db.session.scalar(first_update) is not None

    def history(self, clause_id: int) -> History:
        """The clause's latest snapshot and the updates stored after it (a little before it too)."""
        snapshot = db.session.get(ClauseSnapshot, clause_id)
        since = snapshot.upto_update_id - SNAPSHOT_OVERLAP if snapshot else 0
        # A Core query on the session's connection: through the ORM's result machinery, 10,000
        # rows took 40% longer (12 against 7 ms), and a long log is read while someone waits.
        updates = ClauseUpdate.__table__
        rows = db.session.connection().execute(
            select(updates.c.id, updates.c.update)
            .where(updates.c.clause_id == clause_id, updates.c.id > since)
            .order_by(updates.c.id)
        ).all()
        return History(snapshot.state if snapshot else None, snapshot.upto_update_id if snapshot else 0,
                       [(i, u) for i, u in rows], max(since, 0))

    def author_of_client(self, clause_id: int, client_id: int, *, rows: int = AUTHOR_ROWS) -> int | None:
        """The account whose stored edit of the clause last carried Yjs client ``client_id``,
        from the newest ``rows`` rows; None if none of them did, or the edit was the server's.
        Asked rarely: when someone extends an id whose claim was lost (one process restarted)."""
        updates = ClauseUpdate.__table__
        found = db.session.connection().execute(
            select(updates.c.user_id, updates.c.update)
            .where(updates.c.clause_id == clause_id)
            .order_by(updates.c.id.desc()).limit(rows)
        )
        for user_id, stored in found:
            if client_id in update_clients(stored):
                return int(user_id) if user_id is not None else None
        return None

    # -- writing --------------------------------------------------------------------------------

    def append(self, entry: LogEntry) -> None:
        """Queue ``entry`` for the writer's next batch; ``entry.done`` tells when it is stored."""
        if not self._writing:
            with self._writer_lock:
                if not self._writing:
                    self._writing = True
                    self._writer = threading.Thread(target=self._write_loop, name="collab-writer", daemon=True)
                    self._writer.start()
        self._queue.put(entry)

    @staticmethod
    def wait(entry: LogEntry, timeout: float = WAIT_SECONDS) -> int:
        """The entry's log id once stored. Raises what stopped it (or a timeout)."""
        return entry.done.result(timeout=timeout)

    def append_in_session(self, session: Session, *, clause_id: int, update: bytes, user_id: int | None,
                          origin: str) -> int:
        """Add an update row to ``session``'s transaction (a server-side edit: the caller commits);
        its log id (the row is flushed)."""
        row = ClauseUpdate(clause_id=clause_id, user_id=user_id, update=update, origin=origin)
        session.add(row)
        session.flush()
        return int(row.id)

    def store_seed(self, clause_id: int, body: str) -> None:
        """Store a clause's seed on the writer's own connection, committed at once. Not on a second
        connection from the app's pool: the loader already holds one, and fifty clauses opened at
        once by a thousand viewers then held the whole PostgreSQL pool while each waited for a
        second connection (a deadlock until the pool's 30 s timeout)."""
        row = {"clause_id": clause_id, "user_id": None, "update": seed_update(body),
               "created_at": utcnow(), "origin": "import"}

        def store() -> None:
            with Session(self._writer_bind()) as session:
                session.execute(insert(ClauseUpdate), [row])
                session.commit()

        # Two seeds stored (a connection lost as it committed) are one: Yjs merges equal structs.
        self._again_on_lost_connection(store)

    def write_snapshot(self, clause_id: int, upto: int, state: bytes) -> None:
        """Compact: the whole document as of log id ``upto``, so the next open replays only what
        follows. A snapshot never replaces one that reaches further (several processes compact
        the same clause), and two processes writing the first one at once store one of them."""
        self._again_on_lost_connection(lambda: self._store_snapshot(clause_id, upto, state))

    def _store_snapshot(self, clause_id: int, upto: int, state: bytes) -> None:
        with Session(self._writer_bind()) as session:
            existing = session.get(ClauseSnapshot, clause_id)
            if existing is None:
                session.add(ClauseSnapshot(clause_id=clause_id, upto_update_id=upto, state=state))
            elif existing.upto_update_id < upto:
                existing.upto_update_id, existing.state, existing.created_at = upto, state, utcnow()
            try:
                session.commit()
            except IntegrityError:  # another process stored the first snapshot meanwhile
                session.rollback()
                session.execute(update(ClauseSnapshot).where(ClauseSnapshot.clause_id == clause_id,
                                                            ClauseSnapshot.upto_update_id < upto)
                                .values(upto_update_id=upto, state=state, created_at=utcnow()))
                session.commit()

    def write_body_if_stale(self, clause_id: int, text: str) -> bool:
        """Rewrite the clause's body if it differs from ``text``; whether it did."""

        def write() -> bool:
            with Session(self._writer_bind()) as session:
                result = session.execute(update(Clause).where(Clause.id == clause_id, Clause.body != text)
                                         .values(body=text, updated_at=utcnow()))
                session.commit()
            return bool(getattr(result, "rowcount", 0))

        rewritten = self._again_on_lost_connection(write)
        if rewritten:
            self._announce_bodies()
        return rewritten

    def close(self) -> None:
        """Close the writer's own connection (tests, and any code that makes a store of its own;
        the app's store lives as long as its process)."""
        engine, self._writer_engine = self._writer_engine, None
        if engine is not None and self.app.extensions.get("sqlalchemy") is not None:
            with self.app.app_context():
                if engine is not db.engine:
                    engine.dispose()

    # -- the writer -----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            self._write_batches()
        finally:
            self._writing = False

    def _write_batches(self) -> None:
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
            self.write_batch(batch)

    def write_batch(self, batch: list[LogEntry]) -> None:
        """Store ``batch`` in one transaction, here and now (the writer's one step), and settle
        every entry's ``done``: its log id, or the error when the whole batch failed."""
        texts = self._texts_of(batch)
        try:
            ids = self._store_rows_retrying(batch, texts)
        except Exception as error:  # the whole batch failed: every sender is told, nothing acked
            log.exception("storing %d clause updates failed", len(batch))
            for entry in batch:
                entry.done.set_exception(error)
            return
        self.stats["batches"] += 1
        self.stats["updates"] += len(batch)
        # Before the acknowledgements (the live documents publish the batch to the other
        # processes here: an edit acknowledged is an edit on the clause feed).
        self._after_stored(batch, ids)
        for entry, update_id in zip(batch, ids, strict=True):
            entry.done.set_result(update_id)
        if texts:
            self._announce_bodies()
        if self._after_done is not None:
            try:
                self._after_done(batch, ids)
            except Exception:  # compaction only: the batch is stored; the writer must go on
                log.exception("after storing %d clause updates", len(batch))

    def _store_rows_retrying(self, batch: list[LogEntry], texts: dict[int, str]) -> list[int]:
        """Store the batch; a transaction PostgreSQL aborted to break a deadlock or a
        serialisation conflict is tried again, since nothing of it was stored, and so is one
        whose connection was found dead before its commit (see :meth:`_writer_bind`)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return run_blocking(self._store_rows, batch, texts)
            except DBAPIError as error:
                transient = getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES
                if attempt == WRITE_ATTEMPTS or not (transient or error.connection_invalidated):
                    raise
                self.stats["retries" if transient else "reconnects"] += 1
                log.warning("storing %d clause updates: %s; trying again", len(batch), type(error.orig).__name__)
                time.sleep(0.02 * attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _store_rows(self, batch: list[LogEntry], texts: dict[int, str]) -> list[int]:
        """Insert the batch's updates and the clauses' ``texts`` in one transaction; the log
        ids in batch order. Touches only the database, so it can run outside the event loop.

        Core statements, compiled once, on the writer's connection: through the ORM session the
        same batch (20 updates, 3 clause texts) took 1.8 ms of CPU instead of 0.75 ms."""
        now = utcnow()
        with self._writer_bind().connect() as connection:
            ids = _insert_updates(connection, batch, now)
            # Clause rows are locked in id order: two processes storing batches that touch the
            # same clauses in different orders deadlocked (bench/realtime_scaled.py, 3 processes).
            if texts:
                connection.execute(STORE_BODY, [{"clause": clause_id, "text": text, "at": now}
                                                for clause_id, text in sorted(texts.items())])
            try:
                connection.commit()
            except DBAPIError as error:
                if error.connection_invalidated:  # the commit may have happened: not tried again
                    raise CommitUnanswered("the connection was lost as the batch committed") from error
                raise
        return ids

    def _again_on_lost_connection(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a write that may be done twice) once more if the writer's connection was
        found dead; SQLAlchemy has then replaced it (see :meth:`_writer_bind`)."""
        try:
            return work()
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            self.stats["reconnects"] += 1
            return work()

    def _announce_bodies(self) -> None:
        """Tell the app (search) that clause bodies were committed; its failure is not the writer's."""
        try:
            signals.live_bodies_stored.send(self.app)
        except Exception:
            log.exception("a receiver of live_bodies_stored failed")

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
                # No liveness ping before each use: that was a round trip per group commit (about
                # a sixth of the writer's CPU per batch on PostgreSQL). A connection found dead
                # instead (PostgreSQL restarted) fails its first statement; SQLAlchemy replaces
                # it, and the writer tries again (_store_rows_retrying, _again_on_lost_connection).
                self._writer_engine = create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False,
                                                    connect_args=args)
        return self._writer_engine


def _insert_updates(connection: Connection, batch: list[LogEntry], now: Any) -> list[int]:
    """Insert the batch's update rows on ``connection``; their ids in batch order."""
    if connection.dialect.name == "postgresql":
        ids = connection.execute(STORE_UPDATES_ARRAYS, {
            "clause_ids": [e.clause_id for e in batch], "user_ids": [e.user_id for e in batch],
            "updates": [e.update for e in batch], "origins": [e.origin for e in batch], "now": now,
        }).scalars().all()
        return sorted(ids)
    return list(connection.execute(
        STORE_UPDATES, [{"clause_id": e.clause_id, "user_id": e.user_id, "update": e.update,
                         "created_at": now, "origin": e.origin} for e in batch],
    ).scalars().all())
