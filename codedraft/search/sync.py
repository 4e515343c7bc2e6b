"""Keeping the index in step with the database, after commits and never on the keystroke path.

Two paths feed the index:

* ORM changes (microblog's ``SearchableMixin`` pattern): ``before_flush`` notes the changed
  clauses, draft clauses, comments (and chapters and drafts, whose titles appear in clause
  documents); ``after_flush_postexec`` turns them into documents while SQL may still run;
  ``after_commit`` hands them to the engine. A rollback drops them. Failures are logged and
  retried by the live-text indexer, never raised into the request.
* The co-editing store writes ``Clause.body`` from its writer thread, on a connection of its
  own that these session events never see; it sends ``signals.live_bodies_stored`` after each
  commit, which pokes a ``LiveTextIndexer`` (so does a bulk UPDATE of clauses in the app's own
  session, noticed by ``do_orm_execute``): one small thread per app, started lazily, that
  at most every ``SEARCH_LIVE_INTERVAL`` seconds (default 0.25: a pass takes about a tenth of
  a second, so an edit is searchable well within a second even mid-burst; at 2 s the bench
  measured 2.1 s at p95) reindexes clauses whose ``updated_at`` moved since its last pass.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from codedraft import signals
from codedraft.codes.models import Chapter, Clause, Code
from codedraft.concurrency import run_blocking
from codedraft.drafts.models import Draft, DraftClause
from codedraft.extensions import db
from codedraft.search import indexing
from codedraft.search.engine import SearchDocument
from codedraft.timeutil import utcnow

log = logging.getLogger(__name__)

INSTALLED_KEY = "codedraft_search_sync"
LIVE_INDEXER_KEY = "codedraft_search_live_indexer"
DEFAULT_LIVE_INTERVAL_S = 0.25
# Without a poke, the live indexer still looks every this often (edits by other processes).
DEFAULT_LIVE_POLL_S = 30.0
# Clauses updated this long before the last pass are looked at again: a transaction that
# started earlier can commit later than one we already saw.
LIVE_OVERLAP = dt.timedelta(seconds=5)

_TOUCHED = "codedraft_search_touched"  # session.info: (kind, object) noted before a flush
_DOCS = "codedraft_search_docs"  # session.info: doc_id -> document, or None to delete
_LIVE = "codedraft_search_live_touched"  # session.info: a bulk UPDATE of clauses ran

_listeners_installed = False
_listeners_guard = threading.Lock()


def install_sync(app: Flask) -> None:
    """Keep ``app``'s index in sync with its database from now on (idempotent)."""
    if not app.extensions.get(INSTALLED_KEY):
        signals.live_bodies_stored.connect(_live_bodies_stored, sender=app)
    app.extensions[INSTALLED_KEY] = True
    _install_listeners()


def _live_bodies_stored(app: Flask) -> None:
    """The co-editing writer committed clause bodies (from its own thread, outside the app)."""
    live_indexer(app).poke()


def _active_app() -> Flask | None:
    if not has_app_context():
        return None
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app if app.extensions.get(INSTALLED_KEY) else None


# --- ORM events ------------------------------------------------------------------------------


def _install_listeners() -> None:
    global _listeners_installed
    with _listeners_guard:
        if _listeners_installed:
            return
        # On the app's sessions (db.session's own Session subclass), not on every Session of the
        # process: the co-editing writer's sessions announce themselves by a signal instead.
        event.listen(db.session, "before_flush", _before_flush)
        event.listen(db.session, "after_flush_postexec", _after_flush_postexec)
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_rollback", _after_rollback)
        event.listen(db.session, "do_orm_execute", _on_orm_execute)
        _listeners_installed = True


_WATCHED: tuple[tuple[type, str], ...] = (
    (Clause, "clause"),
    (DraftClause, "draft_clause"),
    (Chapter, "chapter"),
    (Draft, "draft"),
)


def _kind_of(obj: object) -> str | None:
    for model, kind in _WATCHED:
        if isinstance(obj, model):
            return kind
    comment = indexing.comment_model()
    if comment is not None and isinstance(obj, comment):
        return "comment"
    reply = indexing.reply_model()
    if reply is not None and isinstance(obj, reply):
        return "reply"  # its comment's document holds the replies
    return None


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if _active_app() is None:
        return
    touched: list[tuple[str, object]] = session.info.setdefault(_TOUCHED, [])
    docs: dict[str, SearchDocument | None] = session.info.setdefault(_DOCS, {})
    for obj in (*session.new, *session.dirty):
        kind = _kind_of(obj)
        if kind is not None:
            touched.append((kind, obj))
    with session.no_autoflush:
        for obj in session.deleted:
            for doc_id in _doc_ids_of_deleted(session, obj):
                docs[doc_id] = None


def _doc_ids_of_deleted(session: Session, obj: object) -> list[str]:
    kind = _kind_of(obj)
    if kind == "clause":
        return [indexing.live_doc_id(obj.uid)]  # type: ignore[attr-defined]
    if kind == "draft_clause":
        draft = session.get(Draft, obj.draft_id)  # type: ignore[attr-defined]
        return [indexing.draft_doc_id(obj.clause_uid, draft.number)] if draft else []  # type: ignore[attr-defined]
    if kind == "comment":
        return [indexing.comment_doc_id(obj.id)]  # type: ignore[attr-defined]
    return []


def _after_flush_postexec(session: Session, _context: Any) -> None:
    touched = session.info.pop(_TOUCHED, None)
    if not touched or _active_app() is None:
        return
    docs: dict[str, SearchDocument | None] = session.info.setdefault(_DOCS, {})
    try:
        with session.no_autoflush:
            for kind, obj in touched:
                docs.update(_documents_for(session, kind, obj))
    except Exception:  # indexing must never break the caller's transaction
        log.exception("could not prepare search documents; run `codedraft search-check`")


def _documents_for(session: Session, kind: str, obj: Any) -> dict[str, SearchDocument | None]:
    """The documents (or deletions, as None) that reflect ``obj`` as flushed."""
    if getattr(obj, "id", None) is None or inspect(obj).deleted or inspect(obj).detached:
        return {}
    if kind == "clause":
        return _live_clause_entry(session, obj)
    if kind == "draft_clause":
        draft = session.get(Draft, obj.draft_id)
        code = session.get(Code, draft.code_id) if draft else None
        if draft is None or code is None:
            return {}
        doc = indexing.draft_clause_document(obj, draft, code)
        return {doc.doc_id: doc}
    if kind == "reply":
        model = indexing.comment_model()
        parent = session.get(model, obj.comment_id) if model is not None else None
        return _documents_for(session, "comment", parent) if parent is not None else {}
    if kind == "comment":
        context = indexing.comment_context(obj, session)
        if context is None:
            return {}
        doc = indexing.comment_document(obj, context)
        return {doc.doc_id: doc}
    if kind == "chapter":
        entries: dict[str, SearchDocument | None] = {}
        for clause in session.scalars(select(Clause).where(Clause.chapter_id == obj.id)):
            entries.update(_live_clause_entry(session, clause))
        return entries
    if kind == "draft":
        code = session.get(Code, obj.code_id)
        if code is None:
            return {}
        rows = session.scalars(select(DraftClause).where(DraftClause.draft_id == obj.id))
        return {d.doc_id: d for d in (indexing.draft_clause_document(row, obj, code) for row in rows)}
    return {}


def _live_clause_entry(session: Session, clause: Clause) -> dict[str, SearchDocument | None]:
    doc_id = indexing.live_doc_id(clause.uid)
    if clause.withdrawn:
        return {doc_id: None}
    chapter = session.get(Chapter, clause.chapter_id)
    code = session.get(Code, clause.code_id)
    if chapter is None or code is None:
        return {}
    return {doc_id: indexing.live_clause_document(clause, chapter, code)}


def _on_orm_execute(state: Any) -> None:
    """Note bulk UPDATEs of clauses (the co-editing store's writes) for the live indexer."""
    if not state.is_update:
        return
    mapper = state.bind_mapper
    if mapper is not None and mapper.class_ is Clause:
        state.session.info[_LIVE] = True


def _after_commit(session: Session) -> None:
    docs = session.info.pop(_DOCS, None)
    live_touched = session.info.pop(_LIVE, False)
    session.info.pop(_TOUCHED, None)
    app = _active_app()
    if live_touched and app is not None:
        live_indexer(app).poke()
    if app is not None and docs:
        apply_changes(app, docs)


def _after_rollback(session: Session) -> None:
    for key in (_DOCS, _LIVE, _TOUCHED):
        session.info.pop(key, None)


def apply_changes(app: Flask, docs: dict[str, SearchDocument | None]) -> None:
    """Write committed changes to the index; on failure log them and let the live indexer retry."""
    try:
        write_changes(app, docs)
    except Exception:
        log.exception("search index update of %d documents failed; retrying in the background", len(docs))
        live_indexer(app).retry_later(docs)


def write_changes(app: Flask, docs: dict[str, SearchDocument | None]) -> None:
    """Index the documents and delete the ids mapped to None. Raises what the engine raises."""
    engine = indexing.search_engine(app)
    to_index = [doc for doc in docs.values() if doc is not None]
    to_delete = [doc_id for doc_id, doc in docs.items() if doc is None]
    if to_delete:
        engine.delete(to_delete)
    if to_index:
        engine.index(to_index)


# --- the debounced live-text indexer ---------------------------------------------------------


class LiveTextIndexer:
    """Reindexes clauses whose ``updated_at`` moved, at most every ``interval`` seconds.

    Started lazily by ``poke()``; a daemon thread that holds only a weak reference to the app
    and ends when the app is gone or ``stop()`` is called. ``run_once()`` is the whole work of
    one pass and can be called directly (the CLI and tests do).
    """

    def __init__(self, app: Flask, *, interval: float, poll: float) -> None:
        self._app_ref = weakref.ref(app)
        self.interval = interval
        self.poll = poll
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._since = utcnow() - LIVE_OVERLAP
        self._indexed: dict[int, dt.datetime] = {}
        self._retry: dict[str, SearchDocument | None] = {}
        self._last_pass = 0.0
        self.passes = 0

    def poke(self) -> None:
        """Ask for a pass soon (within ``interval``); starts the thread on first use."""
        self._ensure_thread()
        self._wake.set()

    def retry_later(self, docs: dict[str, SearchDocument | None]) -> None:
        with self._lock:
            self._retry.update(docs)
        self.poke()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._stopped.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._loop, name="search-live-indexer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.poll)
            if self._stopped.is_set():
                return
            # Debounce: a burst of edits is indexed in one pass, at most every `interval`.
            pause = self._last_pass + self.interval - time.monotonic()
            if pause > 0 and self._stopped.wait(pause):
                return
            self._wake.clear()
            app = self._app_ref()
            if app is None:
                return
            try:
                # Index writes are CPU and disk work: under gevent, off the event loop.
                run_blocking(self.run_once, app)
            except Exception:
                log.exception("live search indexing pass failed; will try again")
                self._wake.set()  # retry after the debounce interval, not at the next poll
            finally:
                self._last_pass = time.monotonic()
                del app

    def run_once(self, app: Flask) -> int:
        """One pass: retry failed writes, then reindex clauses updated since the last pass.
        Returns how many documents were written. Raises what the engine raises."""
        with self._lock:
            pending, self._retry = self._retry, {}
        written = 0
        try:
            with app.app_context():
                changed, newest = self._changed_clauses()
                pending.update({doc_id: doc for doc_id, (doc, _stamp) in changed.items()})
                if pending:
                    write_changes(app, pending)
                    written = len(pending)
                for _doc, (clause_id, updated_at) in changed.values():
                    self._indexed[clause_id] = updated_at
                if newest is not None:
                    self._since = max(self._since, newest - LIVE_OVERLAP)
        except Exception:
            with self._lock:
                # Newer versions queued meanwhile win over the ones that failed now.
                self._retry = {**pending, **self._retry}
            raise
        finally:
            # The pass's connection goes back to the pool even when it failed: this thread's
            # scoped session would otherwise hold one for as long as the process lives.
            with app.app_context():
                db.session.remove()
        self.passes += 1
        return written

    def _changed_clauses(
        self,
    ) -> tuple[dict[str, tuple[SearchDocument | None, tuple[int, dt.datetime]]], dt.datetime | None]:
        rows = db.session.execute(
            select(Clause, Chapter, Code)
            .join(Chapter, Chapter.id == Clause.chapter_id)
            .join(Code, Code.id == Clause.code_id)
            .where(Clause.updated_at > self._since)
        ).all()
        changed: dict[str, tuple[SearchDocument | None, tuple[int, dt.datetime]]] = {}
        newest: dt.datetime | None = None
        for clause, chapter, code in rows:
            newest = clause.updated_at if newest is None else max(newest, clause.updated_at)
            if self._indexed.get(clause.id) == clause.updated_at:
                continue
            doc = None if clause.withdrawn else indexing.live_clause_document(clause, chapter, code)
            changed[indexing.live_doc_id(clause.uid)] = (doc, (clause.id, clause.updated_at))
        return changed, newest


_LIVE_GUARD = threading.Lock()


def live_indexer(app: Flask) -> LiveTextIndexer:
    """The app's live-text indexer (created on first use; its thread starts on first poke)."""
    indexer = app.extensions.get(LIVE_INDEXER_KEY)
    if indexer is None:
        with _LIVE_GUARD:
            indexer = app.extensions.get(LIVE_INDEXER_KEY)
            if indexer is None:
                indexer = LiveTextIndexer(
                    app,
                    interval=float(app.config.get("SEARCH_LIVE_INTERVAL", DEFAULT_LIVE_INTERVAL_S)),
                    poll=float(app.config.get("SEARCH_LIVE_POLL", DEFAULT_LIVE_POLL_S)),
                )
                app.extensions[LIVE_INDEXER_KEY] = indexer
    return indexer  # type: ignore[no-any-return]


def stop_live_indexer(app: Flask) -> None:
    indexer = app.extensions.get(LIVE_INDEXER_KEY)
    if indexer is not None:
        indexer.stop()


def reindex_clauses(clauses: Iterable[Clause], app: Flask | None = None) -> int:
    """Reindex the live documents of ``clauses`` now (for callers outside the ORM events)."""
    docs: dict[str, SearchDocument | None] = {}
    for clause in clauses:
        docs.update(_live_clause_entry(db.session(), clause))
    write_changes(app or current_app._get_current_object(), docs)  # type: ignore[attr-defined]
    return len(docs)
