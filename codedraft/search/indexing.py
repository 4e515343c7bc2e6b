"""From the database to the search index: documents, the per-process engine, rebuild and check.

Three kinds of document come from the database:

* the live text of every clause not withdrawn (``clause:<uid>:live``),
* every clause of every published draft (``clause:<uid>:draft:<number>``),
* every comment (``comment:<id>``), from ``codedraft.feedback.models.Comment`` when that model
  exists; it is imported lazily, so search works (without comments) if it does not.

Visibility tokens: clause documents carry ``code:<id>``; a comment carries ``code:<id>`` unless
it is hidden, then only ``code:<id>:office`` and ``code:<id>:user:<author_id>``. The author token
is scoped to the code on purpose: someone who lost access to the code no longer finds the
clause titles their hidden comment carries. A viewer's tokens come from ``policy.code_role``.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from codedraft import policy
from codedraft.accounts.models import User
from codedraft.codes.models import Chapter, Clause, Code, Membership, Role
from codedraft.drafts.models import Draft, DraftClause
from codedraft.extensions import db
from codedraft.numbers import stored_integer
from codedraft.search.engine import LIVE_DRAFT, SearchDocument, SearchEngine, document_fingerprint

log = logging.getLogger(__name__)

ENGINE_KEY = "codedraft_search_engine"
# Writers wait this long for another process's writer before giving up (and retrying later).
DEFAULT_WRITE_TIMEOUT_S = 10.0
# A search stops collecting after this long and says its results may be incomplete.
DEFAULT_SEARCH_TIME_LIMIT_S = 0.8
ROWS_PER_BATCH = 1000
SEARCH_BACKENDS = ("auto", "sqlite", "whoosh", "postgres")

_ENGINE_GUARD = threading.Lock()


# --- the engine of this process --------------------------------------------------------------


def search_engine(app: Flask | None = None) -> SearchEngine:
    """The app's one search engine, opened on first use (never at start-up).

    ``open_search_engine`` picks the backend; ``SEARCH_LANGUAGE`` (default "en") picks the
    stemmer. The engine is closed when the app object is garbage-collected.
    """
    flask_app = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    engine = flask_app.extensions.get(ENGINE_KEY)
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    with _ENGINE_GUARD:
        engine = flask_app.extensions.get(ENGINE_KEY)
        if engine is None:
            engine = open_search_engine(flask_app.config)
            if engine.needs_rebuild:
                log.warning("search index %s needs rebuilding; run `codedraft search-rebuild`", index_location(engine))
            flask_app.extensions[ENGINE_KEY] = engine
            weakref.finalize(flask_app, engine.close)
    return engine  # type: ignore[no-any-return]


def open_search_engine(config: Mapping[str, Any]) -> SearchEngine:
    """The backend ``SEARCH_BACKEND`` names: "sqlite", "whoosh", "postgres", or "auto" (the
    default).

    "auto" means PostgreSQL full-text search when the app's database is PostgreSQL and holds
    the search tables (``codedraft db upgrade`` made them), because an embedded index cannot be
    shared by processes on several machines; otherwise the embedded default, SQLite FTS5 in
    ``SEARCH_INDEX_DIR`` (Whoosh, the earlier default, stays available as "whoosh": see
    docs/dependencies.md for the numbers behind the choice).
    Raises ValueError for another ``SEARCH_BACKEND``.
    """
    # The backends are imported here, on first search, not with the app: with their stemmers,
    # lemmatiser dictionaries and database drivers they held about 15 MB of every server process,
    # co-editing workers included, that never search.
    from codedraft.search.postgres_backend import PostgresSearchEngine
    from codedraft.search.sqlite_backend import SqliteSearchEngine
    from codedraft.search.whoosh_backend import WhooshSearchEngine

    choice = config.get("SEARCH_BACKEND", "auto")
    if choice not in SEARCH_BACKENDS:
        raise ValueError(f"SEARCH_BACKEND must be one of {', '.join(SEARCH_BACKENDS)}, not {choice!r}")
    language = config.get("SEARCH_LANGUAGE", "en")
    write_timeout = float(config.get("SEARCH_WRITE_TIMEOUT", DEFAULT_WRITE_TIMEOUT_S))
    time_limit = float(config.get("SEARCH_TIME_LIMIT", DEFAULT_SEARCH_TIME_LIMIT_S))
    database = str(config["SQLALCHEMY_DATABASE_URI"])
    on_postgres = make_url(database).get_backend_name() == "postgresql"
    if choice == "postgres" or (choice == "auto" and on_postgres):
        engine = PostgresSearchEngine(database, language, write_timeout=write_timeout, search_time_limit=time_limit)
        if choice == "postgres" or engine.is_installed() is not False:
            return engine
        engine.close()
        log.warning("the PostgreSQL database has no search tables (run `codedraft db upgrade`); "
                    "searching an embedded index in %s, which only processes on this machine share",
                    config["SEARCH_INDEX_DIR"])
    if choice == "whoosh":
        return WhooshSearchEngine(config["SEARCH_INDEX_DIR"], language=language, write_timeout=write_timeout,
                                  search_time_limit=time_limit)
    return SqliteSearchEngine(config["SEARCH_INDEX_DIR"], language=language, write_timeout=write_timeout,
                              search_time_limit=time_limit)


def index_location(engine: SearchEngine) -> str:
    """Where ``engine`` keeps its index, for messages."""
    from codedraft.search.postgres_backend import PostgresSearchEngine
    from codedraft.search.sqlite_backend import SqliteSearchEngine
    from codedraft.search.whoosh_backend import WhooshSearchEngine

    if isinstance(engine, WhooshSearchEngine):
        return str(engine.path)
    if isinstance(engine, SqliteSearchEngine):
        return str(engine.database)
    if isinstance(engine, PostgresSearchEngine):
        return f"PostgreSQL ({engine.safe_url})"
    return type(engine).__name__


def close_search_engine(app: Flask) -> None:
    """Close and forget the app's engine (tests, and the CLI before a rebuild in another process)."""
    engine = app.extensions.pop(ENGINE_KEY, None)
    if engine is not None:
        engine.close()


# --- document ids ----------------------------------------------------------------------------


def live_doc_id(uid: str) -> str:
    return f"clause:{uid}:live"


def draft_doc_id(uid: str, draft_number: int) -> str:
    return f"clause:{uid}:draft:{draft_number}"


def comment_doc_id(comment_id: int) -> str:
    return f"comment:{comment_id}"


def code_token(code_id: int) -> str:
    return f"code:{code_id}"


def office_token(code_id: int) -> str:
    return f"code:{code_id}:office"


def author_token(code_id: int, user_id: int) -> str:
    return f"code:{code_id}:user:{user_id}"


# --- documents from rows ---------------------------------------------------------------------


def live_clause_document(clause: Clause, chapter: Chapter, code: Code) -> SearchDocument:
    """The live text of ``clause`` as a search document (caller skips withdrawn clauses)."""
    return SearchDocument(
        doc_id=live_doc_id(clause.uid), kind="clause", code_id=code.id, code_title=code.title,
        body=clause.body or "", visibility=[code_token(code.id)], chapter=chapter.title,
        clause_uid=clause.uid, clause_number=clause.number or "", clause_title=clause.heading,
        draft=LIVE_DRAFT, draft_label="", created=clause.updated_at, language=code.language or "",
    )


def draft_clause_document(row: DraftClause, draft: Draft, code: Code) -> SearchDocument:
    """One clause as it stood in a published draft."""
    return SearchDocument(
        doc_id=draft_doc_id(row.clause_uid, draft.number), kind="clause", code_id=code.id,
        code_title=code.title, body=row.body or "", visibility=[code_token(code.id)],
        chapter=row.chapter_title, clause_uid=row.clause_uid, clause_number=row.number or "",
        clause_title=row.heading, draft=str(draft.number), draft_label=draft.name,
        created=draft.published_at, language=code.language or "",
    )


@dataclasses.dataclass(frozen=True)
class CommentContext:
    """What a comment document needs besides the comment row itself."""

    code: Code
    clause: Clause | None
    chapter_title: str
    author_name: str
    draft: Draft | None
    amendment_text: str = ""
    # Replies, and the amendment's decision reason: shown under the comment to whoever sees it.
    responses: tuple[str, ...] = ()


def comment_visibility(code_id: int, author_id: int, hidden: bool) -> list[str]:
    """Everyone on the code, or, once hidden by moderation, the Office and the author."""
    if hidden:
        return [office_token(code_id), author_token(code_id, author_id)]
    return [code_token(code_id)]


def comment_document(comment: Any, context: CommentContext) -> SearchDocument:
    """A comment as a search document: its text, the replacement text of its amendment, the
    reason of its disposition and the responses to it, all of which its readers see with it
    (so they share its visibility: a hidden comment's replies are hidden with it)."""
    clause = context.clause
    parts = [comment.body or "", context.amendment_text, getattr(comment, "disposition_reason", "") or ""]
    parts += context.responses
    body = "\n\n".join(part for part in parts if part)
    return SearchDocument(
        doc_id=comment_doc_id(comment.id), kind="comment", code_id=context.code.id,
        code_title=context.code.title, body=body,
        visibility=comment_visibility(comment.code_id, comment.author_id, bool(comment.hidden)),
        chapter=context.chapter_title, clause_uid=clause.uid if clause else "",
        clause_number=clause.number if clause else "", clause_title=clause.heading if clause else "",
        draft=str(context.draft.number) if context.draft else LIVE_DRAFT,
        draft_label=context.draft.name if context.draft else "",
        category=comment.category or "", status=comment.status or "", author=context.author_name,
        created=comment.created_at, language=context.code.language or "",
    )


def comment_model() -> type | None:
    """``codedraft.feedback.models.Comment``, or None while the feedback feature has no such model."""
    try:
        from codedraft.feedback import models as feedback_models
    except ImportError:
        return None
    model = getattr(feedback_models, "Comment", None)
    return model if isinstance(model, type) else None


def reply_model() -> type | None:
    try:
        from codedraft.feedback import models as feedback_models
    except ImportError:
        return None
    model = getattr(feedback_models, "Reply", None)
    return model if isinstance(model, type) else None


def amendment_model() -> type | None:
    try:
        from codedraft.feedback import models as feedback_models
    except ImportError:
        return None
    model = getattr(feedback_models, "Amendment", None)
    return model if isinstance(model, type) else None


def comment_context(comment: Any, session: Session | None = None) -> CommentContext | None:
    """Look up what ``comment_document`` needs for one comment; None if its code is gone."""
    session = session if session is not None else db.session()
    code = session.get(Code, comment.code_id)
    if code is None:
        return None
    clause = session.get(Clause, comment.clause_id) if comment.clause_id else None
    chapter = session.get(Chapter, clause.chapter_id) if clause is not None else None
    author = session.get(User, comment.author_id)
    draft = session.get(Draft, comment.draft_id) if getattr(comment, "draft_id", None) else None
    amendment = getattr(comment, "amendment", None)
    replies = getattr(comment, "replies", None) or []
    responses = [getattr(amendment, "decision_reason", "") or "", *(reply.body or "" for reply in replies)]
    return CommentContext(
        code=code, clause=clause, chapter_title=chapter.title if chapter else "",
        author_name=author.name if author else "", draft=draft,
        amendment_text=getattr(amendment, "replacement", "") or "",
        responses=tuple(r for r in responses if r),
    )


# --- every document, for a rebuild or a check ------------------------------------------------


def count_documents() -> int:
    """How many documents ``iter_documents`` will yield (for a progress bar)."""
    session = db.session
    total = session.scalar(select(func.count(Clause.id)).where(Clause.withdrawn.is_(False))) or 0
    total += session.scalar(select(func.count(DraftClause.id))) or 0
    model = comment_model()
    if model is not None:
        total += session.scalar(select(func.count(model.id))) or 0  # type: ignore[attr-defined]
    return int(total)


def iter_documents() -> Iterator[SearchDocument]:
    """Every document the index should hold, read from the database in batches."""
    session = db.session
    codes = {code.id: code for code in session.scalars(select(Code))}
    chapters = {chapter.id: chapter for chapter in session.scalars(select(Chapter))}
    live = select(Clause).where(Clause.withdrawn.is_(False)).order_by(Clause.id)
    for clause in session.scalars(live.execution_options(yield_per=ROWS_PER_BATCH)):
        code = codes.get(clause.code_id)
        chapter = chapters.get(clause.chapter_id)
        if code is not None and chapter is not None:
            yield live_clause_document(clause, chapter, code)
    drafts = {draft.id: draft for draft in session.scalars(select(Draft))}
    rows = select(DraftClause).order_by(DraftClause.id).execution_options(yield_per=ROWS_PER_BATCH)
    for row in session.scalars(rows):
        draft = drafts.get(row.draft_id)
        code = codes.get(draft.code_id) if draft else None
        if draft is not None and code is not None:
            yield draft_clause_document(row, draft, code)
    yield from _iter_comment_documents(codes, chapters, drafts)


def _iter_comment_documents(
    codes: dict[int, Code], chapters: dict[int, Chapter], drafts: dict[int, Draft]
) -> Iterator[SearchDocument]:
    model = comment_model()
    if model is None:
        return
    session = db.session
    clauses = {clause.id: clause for clause in session.scalars(select(Clause))}
    authors = dict(session.execute(select(User.id, User.name)).all())
    amendments: dict[int, str] = {}
    responses: dict[int, list[str]] = {}
    amendment = amendment_model()
    if amendment is not None:
        rows = session.execute(
            select(amendment.comment_id, amendment.replacement, amendment.decision_reason)  # type: ignore[attr-defined]
        )
        for comment_id, replacement, reason in rows:
            amendments[comment_id] = replacement or ""
            if reason:
                responses.setdefault(comment_id, []).append(reason)
    reply = reply_model()
    if reply is not None:
        ordered = select(reply.comment_id, reply.body).order_by(reply.created_at, reply.id)  # type: ignore[attr-defined]
        for comment_id, body in session.execute(ordered):
            if body:
                responses.setdefault(comment_id, []).append(body)
    query = select(model).order_by(model.id).execution_options(yield_per=ROWS_PER_BATCH)  # type: ignore[attr-defined]
    for comment in session.scalars(query):
        code = codes.get(comment.code_id)
        if code is None:
            continue
        clause = clauses.get(comment.clause_id)
        chapter = chapters.get(clause.chapter_id) if clause else None
        context = CommentContext(
            code=code, clause=clause, chapter_title=chapter.title if chapter else "",
            author_name=authors.get(comment.author_id, ""), draft=drafts.get(comment.draft_id or 0),
            amendment_text=amendments.get(comment.id, ""), responses=tuple(responses.get(comment.id, ())),
        )
        yield comment_document(comment, context)


def rebuild_index(progress: Callable[[int, int | None], None] | None = None, app: Flask | None = None) -> int:
    """Replace the whole index with what the database holds; return how many documents.

    Searchers keep the old index until the new one is committed. Raises ``SearchIndexBusy``
    if another writer holds the index past the write timeout.
    """
    engine = search_engine(app)
    total = count_documents()
    wrapped = None
    if progress is not None:
        wrapped = lambda done, _total: progress(done, total)  # noqa: E731  (the DB count is known)
    procs = int((app or current_app).config.get("SEARCH_REBUILD_PROCS", 1))
    from codedraft.search.whoosh_backend import WhooshSearchEngine

    if procs > 1 and isinstance(engine, WhooshSearchEngine):
        return engine.rebuild(iter_documents(), progress=wrapped, procs=procs)
    return engine.rebuild(iter_documents(), progress=wrapped)


@dataclasses.dataclass(frozen=True)
class IndexCheck:
    """How the index differs from the database: ids to add, to refresh, to remove."""

    expected: int
    indexed: int
    missing: tuple[str, ...]
    stale: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def in_sync(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def check_index(app: Flask | None = None) -> IndexCheck:
    """Compare every document the database implies with what the index holds (by fingerprint)."""
    expected = {doc.doc_id: document_fingerprint(doc) for doc in iter_documents()}
    indexed = search_engine(app).fingerprints()
    return IndexCheck(
        expected=len(expected),
        indexed=len(indexed),
        missing=tuple(sorted(set(expected) - set(indexed))),
        stale=tuple(sorted(d for d, f in expected.items() if d in indexed and indexed[d] != f)),
        extra=tuple(sorted(set(indexed) - set(expected))),
    )


# --- who may see what ------------------------------------------------------------------------


def allowed_tokens(user: User | None) -> list[str]:
    """The visibility tokens ``user`` holds: ``code:<id>`` for every code they may read (per
    ``policy.code_role``), plus ``code:<id>:office`` where they administer it and
    ``code:<id>:user:<user id>`` for their own hidden comments. Anonymous users hold none."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return []
    if user.is_office:
        code_ids: Iterable[int] = db.session.scalars(select(Code.id))
    else:
        code_ids = db.session.scalars(select(Membership.code_id).where(Membership.user_id == user.id).distinct())
    tokens: list[str] = []
    for code_id in sorted(set(code_ids)):
        role = policy.code_role(user, code_id)
        if role is None:
            continue
        tokens += [code_token(code_id), author_token(code_id, user.id)]
        if role >= Role.admin:
            tokens.append(office_token(code_id))
    return tokens


def query_languages(tokens: Iterable[str], code_filter: Iterable[int] = ()) -> list[str]:
    """The languages of the codes a search reaches (those filtered to, else every code the
    tokens name), so the query's words are analysed as those codes' texts were."""
    wanted = set(code_filter)
    if not wanted:
        named = (stored_integer(parts[1]) for parts in (t.split(":") for t in tokens) if len(parts) >= 2)
        wanted = {number for number in named if number is not None}
    if not wanted:
        return []
    languages = db.session.scalars(select(Code.language).where(Code.id.in_(wanted)).distinct())
    return sorted({language or "en" for language in languages})
