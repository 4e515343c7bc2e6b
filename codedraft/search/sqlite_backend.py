"""SQLite FTS5 behind the ``SearchEngine`` interface: an embedded index in one file, with the
same query language, messages, access rules, highlights and facets as the other backends.

Why it exists: on the search bench Whoosh could not answer within 50 ms at 100,000 comments
(p95 ~470 ms, phrases ~1.4 s, a rebuild ~300 s); FTS5 is in Python's standard library, is
maintained with SQLite, and does the matching, phrase checks and BM25 ranking in C (numbers
in docs/dependencies.md). What this module guarantees, and how:

* Terms are made in Python by ``analysis`` (each document in its code's language, each query
  in the languages it searches), exactly as for Whoosh and PostgreSQL: the ``s_*`` columns
  hold ``analysis.analysed_text``, the ``p_*`` columns folded words (prefixes, wildcards,
  fuzzy words and the chapter/clause/author fields). FTS5's own tokenizer only splits them
  again on the spaces we put in (``tokenchars '_'`` keeps every word character inside a term).
* The query is parsed by the PostgreSQL backend's parser (the same tree, the same fallbacks);
  user text reaches SQLite only as bound parameters, and MATCH expressions only as quoted terms.
* Visibility is checked for every match before it is counted, ranked or shown.
* WAL mode: searches read a snapshot while a writer writes; a rebuild replaces every row in
  one transaction, so searchers see the old index until it commits. Writers wait at most
  ``write_timeout`` for another writer (any process), then get ``SearchIndexBusy``.
* A search stops after ``search_time_limit`` (SQLite's progress handler) and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import heapq
import json
import logging
import re
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Sized
from pathlib import Path
from typing import Any

from codedraft.search import analysis
from codedraft.search.engine import (
    FACET_FIELDS,
    LIVE_DRAFT,
    MESSAGE_EMPTY,
    MESSAGE_TIME_LIMIT,
    MESSAGE_TOO_MANY_EXPANSIONS,
    MESSAGE_TOO_MANY_PATTERNS,
    ClauseGroup,
    PreparedQuery,
    ProgressCallback,
    SearchDocument,
    SearchEngine,
    SearchFilters,
    SearchHit,
    SearchIndexBusy,
    SearchQuery,
    SearchResults,
    code_ids,
    day_bounds,
    document_fingerprint,
    draft_order,
    empty_results,
    facet_counts,
    filter_values,
    has_any_filter,
    join_messages,
    to_utc_naive,
    validate_document,
)
from codedraft.search.postgres_backend import (
    And,
    Every,
    Fuzzy,
    Key,
    Not,
    Nothing,
    Or,
    Pattern,
    Text,
    WordMarker,
    _all_of,
    _any_of,
    _negated,
    parse_user_query,
    query_words,
    snippet,
)
from codedraft.search.whoosh_backend import (
    MAX_EXPANDING_PATTERNS,
    MAX_GROUPED_HITS,
    MAX_WILDCARD_EXPANSIONS,
    PROGRESS_EVERY,
    SEARCH_TIME_LIMIT_S,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4  # 3: bodies apart, so scans of docs stay small; 4: the words table
DATABASE_FILE = "search.sqlite3"
WRITE_BATCH = 1000
# Columns of the FTS table: analysed (s_) for words and phrases, folded (p_) for patterns and
# the named text fields. BM25 weights follow Whoosh's field boosts (a title word counts twice).
# ``k_kind`` holds the document's kind as one word, so FTS5 itself can rank clauses apart from
# comments (weight 0: it never changes a score).
FTS_COLUMNS = ("s_heading", "s_body", "p_heading", "p_chapter", "p_author", "p_body", "k_kind")
BM25_WEIGHTS = "2.0, 1.0, 2.0, 0.5, 0.5, 1.0, 0.0"
# The score, negated BM25 (higher is better), called as a function rather than through the
# ``rank`` column: ``ORDER BY rank`` sorts every match in FTS5's own sorter first, and "systemic
# risk" ranked in 40 ms that way against 15 ms through bm25() in a plain ORDER BY.
SCORE_SQL = f"-bm25(fts, {BM25_WEIGHTS})"
DEFAULT_COLUMNS = "{s_heading s_body}"
PLAIN_DEFAULT_COLUMNS = ("p_heading", "p_body")
FIELD_COLUMN = {"clause": "p_heading", "chapter": "p_chapter", "author": "p_author"}
KEY_COLUMNS = {"kind_key", "draft_key", "category_key", "status_key"}
FILTER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("chapter", "chapter_key"),
    ("clause_number", "clause_number_key"),
    ("draft", "draft_key"),
    ("kind", "kind_key"),
    ("category", "category_key"),
    ("status", "status_key"),
    ("author", "author_key"),
)
HIT_COLUMNS: tuple[str, ...] = (
    "code_id", "code_title", "chapter", "clause_uid", "clause_number", "clause_title", "draft", "draft_label",
    "category", "status", "author", "created",
)
STORED_COLUMNS: tuple[str, ...] = (
    "doc_id", "kind", "kind_key", "code_id", "code_title", "chapter", "chapter_key", "clause_uid", "clause_number",
    "clause_number_key", "clause_title", "draft", "draft_key", "draft_label", "category", "category_key", "status",
    "status_key", "author", "author_key", "created", "language", "fingerprint", "visibility",
)
PROGRESS_STEPS = 2000  # SQLite VM instructions between two time-limit checks
# Up to this many matches are checked one by one (visibility, facets): exact totals. Past it
# the total and the facets are estimated from a sample, and only the best-ranked matches are
# checked for visibility: counting 100,000 matches of "the" one by one took 740 ms; walking
# them all in SQLite alone (count(*)) 10-20 ms.
EXACT_LIMIT = 1000
# The FTS table's prefix index (``prefix = '3'``): a longer ``prefix*`` merges postings.
FTS_PREFIX_INDEX = 3
# The sample: matches in this many ranges of ids, together first this share of all ids,
# widened fourfold until they hold MIN_SAMPLE matches.
SAMPLE_WINDOWS = 8
FIRST_SAMPLE_SHARE = 0.03
MIN_SAMPLE = 400
# Past EXACT_LIMIT matches, FTS5 ranks every matching clause but only about RANK_WINDOW of the
# newest matching comments: BM25 costs about 4 µs a match (240 ms for the 100,000 matches of
# "the"), and among that many near-equal scores the newest comments are the useful ones to
# show first.
RANK_WINDOW = 1000

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY,
    {", ".join(f"{c} {'INTEGER' if c == 'code_id' else 'TEXT'}" for c in STORED_COLUMNS)}
);
CREATE UNIQUE INDEX IF NOT EXISTS docs_doc_id ON docs (doc_id);
CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    {", ".join(FTS_COLUMNS)}, tokenize = "unicode61 remove_diacritics 0 tokenchars '_'", prefix = '{FTS_PREFIX_INDEX}'
);
CREATE TABLE IF NOT EXISTS words (word TEXT PRIMARY KEY) WITHOUT ROWID;
"""

_GLOB_SPECIAL = re.compile(r"([\[\]])")
_WILDCARDS = re.compile(r"[*?]")


class _TimeLimit(Exception):
    """A search passed its deadline (SQLite interrupted it)."""


def _fts_term(term: str) -> str:
    """One term as an FTS5 string (quotes doubled): never read as syntax."""
    return '"' + term.replace('"', '""') + '"'


def _fts_phrase(terms: Iterable[str]) -> str:
    return " + ".join(_fts_term(t) for t in terms)


def _plain_words(text: str) -> list[str]:
    """Folded words of ``text`` (word characters only, so FTS5 splits them back the same).
    The whole text is folded at once: a call per word cost half of a rebuild."""
    return analysis.WORD_PATTERN.findall(analysis.fold_long_text(text))


def document_row(doc: SearchDocument, default_language: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The stored columns and the FTS columns of one document. Raises ValueError for a malformed one."""
    validate_document(doc)
    tokens = [t.strip() for t in doc.visibility if t.strip()]
    if any(len(t.split()) != 1 for t in tokens):
        raise ValueError(f"{doc.doc_id}: visibility tokens may not contain spaces")
    language = analysis.normal_language(doc.language or default_language)
    heading = f"{doc.clause_number} {doc.clause_title}"
    stored: dict[str, Any] = {
        "doc_id": doc.doc_id, "kind": doc.kind, "code_id": doc.code_id, "code_title": doc.code_title,
        "chapter": doc.chapter, "clause_uid": doc.clause_uid, "clause_number": doc.clause_number.strip(),
        "clause_title": doc.clause_title, "draft": (doc.draft or LIVE_DRAFT).strip(), "draft_label": doc.draft_label,
        "category": doc.category.strip(), "status": doc.status.strip(), "author": doc.author, "body": doc.body,
    }
    for name in ("kind", "chapter", "clause_number", "draft", "category", "status", "author"):
        stored[f"{name}_key"] = analysis.fold_key(stored[name])
    stored.update(
        created=to_utc_naive(doc.created).isoformat(sep=" ") if doc.created is not None else None,
        language=language, fingerprint=document_fingerprint(doc), visibility=" ".join(tokens),
    )
    text = (
        analysis.analysed_text(heading, language),
        analysis.analysed_text(doc.body, language),
        " ".join(_plain_words(heading)),
        " ".join(_plain_words(doc.chapter)),
        " ".join(_plain_words(doc.author)),
        " ".join(_plain_words(doc.body)),
        doc.kind,
    )
    return stored, text


@dataclasses.dataclass(frozen=True)
class _Fts:
    """A resolved text leaf: an FTS5 expression, and what it highlights in bodies."""

    expression: str
    terms: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()
    # FTS5's own ``prefix *`` past its 3-letter prefix index: each statement merges the
    # postings of every word with that prefix before it can seek to a rowid.
    merges_prefix: bool = False


@dataclasses.dataclass
class _Compiled:
    """The query as SQL: an optional MATCH expression, extra conditions and their parameters."""

    match: str | None
    conditions: list[str]
    params: dict[str, Any]
    terms: set[str]
    words: set[str]
    prefixes: set[str]
    merges_prefix: bool = False


class SqliteSearchEngine(SearchEngine):
    """The ``SearchEngine`` in one SQLite file in ``path`` (created if missing).

    ``language`` is the default for documents that name none; an index of another schema
    version or default language is emptied and ``needs_rebuild`` set, so the app rebuilds it
    from the database.
    """

    def __init__(
        self,
        path: Path | str,
        language: str = analysis.DEFAULT_LANGUAGE,
        *,
        write_timeout: float = 30.0,
        search_time_limit: float = SEARCH_TIME_LIMIT_S,
    ) -> None:
        self.path = Path(path).resolve()
        self.language = analysis.normal_language(language)
        self.write_timeout = write_timeout
        self.search_time_limit = search_time_limit
        self.needs_rebuild = False
        self._local = threading.local()
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._all_connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._write_lock = threading.Lock()
        self._languages: tuple[int, tuple[str, ...]] | None = None
        self._closed = False
        self.path.mkdir(parents=True, exist_ok=True)
        self._prepare()

    # --- connections -----------------------------------------------------------------------

    @property
    def database(self) -> Path:
        return self.path / DATABASE_FILE

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared between threads)."""
        if self._closed:
            raise RuntimeError("search engine is closed")
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.database, timeout=self.write_timeout, isolation_level=None,
                                         check_same_thread=False)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute(f"PRAGMA busy_timeout = {max(1, int(self.write_timeout * 1000))}")
            self._local.connection = connection
            with self._guard:
                self._all_connections.append(connection)
        return connection

    def _prepare(self) -> None:
        """Create the tables, or start afresh when the file was built differently."""
        connection = self._connection()
        expected = json.dumps({"schema_version": SCHEMA_VERSION, "language": self.language})
        with self._writing() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
            found = db.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()
            if found is not None and found[0] != expected:
                log.warning("search index %s was built differently; emptying it", self.database)
                self._clear(db)
                self.needs_rebuild = True
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('layout', ?)", (expected,))
            # ORDER BY rank then ranks inside FTS5 with these weights.
            db.execute("INSERT INTO fts (fts, rank) VALUES ('rank', ?)", (f"bm25({BM25_WEIGHTS})",))
        del connection

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: the write lock is taken at once, waited for
        up to ``write_timeout``); committed on success, rolled back on error."""
        connection = self._connection()
        if not self._write_lock.acquire(timeout=self.write_timeout):
            raise SearchIndexBusy(f"search index {self.database} busy (threads)")
        try:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise SearchIndexBusy(f"search index {self.database} busy (processes)") from error
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            self._write_lock.release()

    # --- writing ---------------------------------------------------------------------------

    def _clear(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM fts")
        db.execute("DELETE FROM docs")
        db.execute("DELETE FROM bodies")
        db.execute("DELETE FROM words")

    def _remove(self, db: sqlite3.Connection, doc_ids: Iterable[str]) -> None:
        for doc_id in doc_ids:
            row = db.execute("SELECT id FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM fts WHERE rowid = ?", (row[0],))
                db.execute("DELETE FROM docs WHERE id = ?", (row[0],))
                db.execute("DELETE FROM bodies WHERE id = ?", (row[0],))

    def _insert(self, db: sqlite3.Connection, rows: list[tuple[dict[str, Any], tuple[str, ...]]]) -> None:
        if not rows:
            return
        first = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM docs").fetchone()[0])
        columns = ", ".join(STORED_COLUMNS)
        marks = ", ".join("?" * (len(STORED_COLUMNS) + 1))
        db.executemany(f"INSERT INTO docs (id, {columns}) VALUES ({marks})",
                       [(first + n, *(stored[c] for c in STORED_COLUMNS)) for n, (stored, _text) in enumerate(rows)])
        words = {w for _stored, text in rows for column in text[2:6] for w in column.split()}
        db.executemany("INSERT OR IGNORE INTO words (word) VALUES (?)", [(w,) for w in sorted(words)])
        db.executemany("INSERT INTO bodies (id, body) VALUES (?, ?)",
                       [(first + n, stored["body"]) for n, (stored, _text) in enumerate(rows)])
        fts_marks = ", ".join("?" * (len(FTS_COLUMNS) + 1))
        db.executemany(f"INSERT INTO fts (rowid, {', '.join(FTS_COLUMNS)}) VALUES ({fts_marks})",
                       [(first + n, *text) for n, (_stored, text) in enumerate(rows)])

    def index(self, docs: Iterable[SearchDocument]) -> int:
        prepared = {row[0]["doc_id"]: row for row in (document_row(d, self.language) for d in docs)}
        if not prepared:
            return 0
        with self._writing() as db:
            self._remove(db, sorted(prepared))
            self._insert(db, [prepared[doc_id] for doc_id in sorted(prepared)])
        return len(prepared)

    def delete(self, doc_ids: Iterable[str]) -> None:
        wanted = sorted({d for d in doc_ids if isinstance(d, str) and d})
        if wanted:
            with self._writing() as db:
                self._remove(db, wanted)

    def rebuild(self, docs: Iterable[SearchDocument], progress: ProgressCallback | None = None) -> int:
        total = len(docs) if isinstance(docs, Sized) else None
        done = 0
        if progress:
            progress(0, total)
        with self._writing() as db:
            self._clear(db)
            batch: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
            for doc in docs:
                row = document_row(doc, self.language)
                if row[0]["doc_id"] not in batch and self._known(db, row[0]["doc_id"]):  # named twice
                    self._remove(db, [row[0]["doc_id"]])
                batch[row[0]["doc_id"]] = row
                done += 1
                if len(batch) >= WRITE_BATCH:
                    self._insert(db, list(batch.values()))
                    batch = {}
                if progress and done % PROGRESS_EVERY == 0:
                    progress(done, total)
            self._insert(db, list(batch.values()))
            db.execute("INSERT INTO fts (fts) VALUES ('optimize')")
        self.needs_rebuild = False
        self._languages = None
        if progress:
            progress(done, total)
        return done

    @staticmethod
    def _known(db: sqlite3.Connection, doc_id: str) -> bool:
        return db.execute("SELECT 1 FROM docs WHERE doc_id = ?", (doc_id,)).fetchone() is not None

    # --- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM docs").fetchone()[0])

    def doc_ids(self) -> set[str]:
        return {row[0] for row in self._connection().execute("SELECT doc_id FROM docs")}

    def fingerprints(self) -> dict[str, str]:
        return dict(self._connection().execute("SELECT doc_id, fingerprint FROM docs").fetchall())

    def close(self) -> None:
        self._closed = True
        with self._guard:
            for connection in self._all_connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._all_connections.clear()

    # --- searching -------------------------------------------------------------------------

    def _run(self, prepared: PreparedQuery, page: int, per_page: int) -> SearchResults:
        query, allowed, messages, filters = prepared.query, prepared.allowed, prepared.messages, prepared.filters
        parsed = parse_user_query(prepared.text, messages)
        browsing = has_any_filter(filters)
        if parsed is None and not browsing:
            messages.append(MESSAGE_EMPTY)
            return empty_results(page, per_page, join_messages(messages))
        connection = self._connection()
        deadline = time.monotonic() + self.search_time_limit

        def past_deadline() -> int:
            return 1 if time.monotonic() > deadline else 0

        connection.set_progress_handler(past_deadline, PROGRESS_STEPS)
        try:
            connection.execute("BEGIN")  # one snapshot for every statement of this search
            try:
                languages = self._query_languages(connection, query)
                resolved = self._resolve(connection, parsed, messages, languages)
                if resolved is None and not browsing:
                    messages.append(MESSAGE_EMPTY)
                    return empty_results(page, per_page, join_messages(messages))
                compiled = _compile(resolved if resolved is not None else Every(), filters)
                return self._answer(connection, compiled, allowed, query.group_by_clause, page, per_page,
                                    messages)
            finally:
                connection.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if "interrupted" not in str(error):
                raise
            messages.append(MESSAGE_TIME_LIMIT)
            return empty_results(page, per_page, join_messages(messages))
        finally:
            connection.set_progress_handler(None, 0)

    def _query_languages(self, connection: sqlite3.Connection, query: SearchQuery) -> list[str]:
        named = getattr(query, "languages", ()) or ()
        if isinstance(named, str):
            named = (named,)
        wanted = list(dict.fromkeys(analysis.normal_language(code) for code in named))
        if wanted:
            return wanted
        version = int(connection.execute("PRAGMA data_version").fetchone()[0])
        cached = self._languages
        if cached is None or cached[0] != version:
            held = [row[0] for row in connection.execute("SELECT DISTINCT language FROM docs")]
            cached = (version, tuple(sorted(held)) or (self.language,))
            self._languages = cached
        return list(cached[1])

    # -- resolving leaves: terms per language, pattern and fuzzy expansions

    def _resolve(
        self, connection: sqlite3.Connection, node: Any, messages: list[str], languages: list[str]
    ) -> Any:
        budget = {"patterns": MAX_EXPANDING_PATTERNS}

        def resolve(part: Any) -> Any:
            if isinstance(part, Text):
                return _text_leaf(part, languages)
            if isinstance(part, Pattern | Fuzzy):
                source = part.pattern if isinstance(part, Pattern) else part.word
                if budget["patterns"] <= 0:
                    messages.append(MESSAGE_TOO_MANY_PATTERNS.format(limit=MAX_EXPANDING_PATTERNS))
                    return _text_leaf(Text(tuple(query_words(_WILDCARDS.sub(" ", source))), part.field), languages)
                budget["patterns"] -= 1
                if isinstance(part, Pattern):
                    return self._pattern_leaf(connection, part, messages)
                return self._fuzzy_leaf(connection, part, messages)
            if isinstance(part, And):
                return _all_of(resolve(c) for c in part.children)
            if isinstance(part, Or):
                return _any_of(resolve(c) for c in part.children)
            if isinstance(part, Not):
                return _negated(resolve(part.child))
            return part

        return resolve(node) if node is not None else None

    def _terms_between(self, connection: sqlite3.Connection, start: str, columns: tuple[str, ...],
                       glob: str | None, limit: int) -> list[str]:
        """Folded words of the index beginning with ``start`` (and matching ``glob``), from
        the ``words`` table: FTS5's own vocabulary table read every word's postings (90 ms
        for the words of one letter). Like PostgreSQL's search_word, it holds the words of
        every text field; a word of another field expands to nothing in ``columns``."""
        del columns
        sql = "SELECT word FROM words WHERE word >= ? AND word < ?"
        params: list[Any] = [start, start + "\U0010ffff"]
        if glob is not None:
            sql += " AND word GLOB ?"
            params.append(glob)
        sql += " ORDER BY word LIMIT ?"
        params.append(limit)
        return [row[0] for row in connection.execute(sql, params)]

    def _pattern_leaf(self, connection: sqlite3.Connection, part: Pattern, messages: list[str]) -> Any:
        columns = (FIELD_COLUMN[part.field],) if part.field else PLAIN_DEFAULT_COLUMNS
        pieces = re.split(r"([*?])", part.pattern)
        folded = ["".join(_plain_words(p)) if p not in ("*", "?") else p for p in pieces]
        literal = folded[0]
        is_prefix = len(folded) == 3 and folded[1] == "*" and not folded[2]
        glob = None if is_prefix else "".join(_GLOB_SPECIAL.sub(r"[\1]", p) if p not in ("*", "?") else p
                                               for p in folded)
        expansions = self._terms_between(connection, literal, columns, glob, MAX_WILDCARD_EXPANSIONS + 1)
        scope = "{" + " ".join(columns) + "}"
        if is_prefix and len(expansions) <= MAX_WILDCARD_EXPANSIONS and literal:
            return _Fts(f"{scope} : ({_fts_term(literal)} *)",
                        prefixes=frozenset({literal}) if part.field is None else frozenset(),
                        merges_prefix=len(literal) > FTS_PREFIX_INDEX)
        if len(expansions) > MAX_WILDCARD_EXPANSIONS:
            messages.append(MESSAGE_TOO_MANY_EXPANSIONS.format(pattern=part.pattern, limit=MAX_WILDCARD_EXPANSIONS))
        return _any_word(expansions[:MAX_WILDCARD_EXPANSIONS], scope, part.field)

    def _fuzzy_leaf(self, connection: sqlite3.Connection, part: Fuzzy, messages: list[str]) -> Any:
        columns = (FIELD_COLUMN[part.field],) if part.field else PLAIN_DEFAULT_COLUMNS
        plain = _plain_words(part.word)
        if len(plain) != 1:
            return _text_leaf(Text(tuple(query_words(part.word)), part.field), [self.language])
        word = plain[0]
        candidates = self._terms_between(connection, word[0], columns, None, 1_000_000)
        near = [c for c in candidates
                if abs(len(c) - len(word)) <= part.distance and _within(c, word, part.distance)]
        if len(near) > MAX_WILDCARD_EXPANSIONS:
            messages.append(MESSAGE_TOO_MANY_EXPANSIONS.format(pattern=f"{part.word}~", limit=MAX_WILDCARD_EXPANSIONS))
        scope = "{" + " ".join(columns) + "}"
        return _any_word(near[:MAX_WILDCARD_EXPANSIONS], scope, part.field)

    # -- answering

    def _answer(
        self, connection: sqlite3.Connection, compiled: _Compiled, allowed: frozenset[str], grouped: bool,
        page: int, per_page: int, messages: list[str],
    ) -> SearchResults:
        limit = MAX_GROUPED_HITS if grouped else page * per_page
        total, facets, top, estimated = self._scan(connection, compiled, allowed, limit)
        ranked = [doc for _score, doc in sorted(top, key=lambda pair: (-pair[0], pair[1]))]
        if not grouped:
            ranked = ranked[(page - 1) * per_page : page * per_page]
        scores = dict((doc, score) for score, doc in top)
        hits = self._hits(connection, ranked, scores, compiled)
        if not grouped:
            return SearchResults(total=total, hits=tuple(hits), facets=facets, message=join_messages(messages),
                                 page=page, per_page=per_page, estimated=estimated)
        by_clause: dict[str, list[SearchHit]] = {}
        for hit in hits:
            by_clause.setdefault(str(hit.fields.get("clause_uid") or hit.doc_id), []).append(hit)
        ordered = sorted(by_clause.values(), key=lambda hs: -max(h.score for h in hs))
        groups = tuple(_group(hs) for hs in ordered[(page - 1) * per_page : page * per_page])
        return SearchResults(
            total=total, hits=tuple(h for g in groups for h in g.hits), facets=facets,
            message=join_messages(messages), groups=groups, total_groups=len(ordered), page=page, per_page=per_page,
            estimated=estimated,
        )

    def _scan(
        self, connection: sqlite3.Connection, compiled: _Compiled, allowed: frozenset[str], limit: int
    ) -> tuple[int, dict[str, dict[str, int]], list[tuple[float, int]], bool]:
        """Total, facets and the best ``limit`` visible matches (score, id); True when the
        total and facets are estimates (more than EXACT_LIMIT matches)."""
        params = dict(compiled.params)
        conditions = " AND ".join(f"({c})" for c in compiled.conditions) or "1"
        if compiled.match is None:
            rowid, source, score = "d.id", "docs AS d WHERE 1", "0.0"
            first = f"SELECT 1 FROM docs AS d WHERE {conditions}"
        else:
            params["match"] = compiled.match
            rowid, score = "fts.rowid", SCORE_SQL
            source = "fts JOIN docs AS d ON d.id = fts.rowid WHERE fts MATCH :match"
            first = "SELECT 1 FROM fts WHERE fts MATCH :match"
        # Counting stops after EXACT_LIMIT + 1: more than that is estimated, not counted.
        some = int(connection.execute(f"SELECT count(*) FROM ({first} LIMIT {EXACT_LIMIT + 1})", params).fetchone()[0])
        if some > EXACT_LIMIT:
            return self._estimate(connection, rowid, source, conditions, params, allowed, limit,
                                  ranked=compiled.match is not None, one_pass=compiled.merges_prefix)
        total, counts, top = self._every_match(connection, f"{source} AND {conditions}", score, params, allowed, limit)
        return total, facet_counts(counts, analysis.fold_key), top, False

    def _estimate(
        self, connection: sqlite3.Connection, rowid: str, source: str, conditions: str, params: dict[str, Any],
        allowed: frozenset[str], limit: int, *, ranked: bool, one_pass: bool = False,
    ) -> tuple[int, dict[str, dict[str, int]], list[tuple[float, int]], bool]:
        """Total and facets from the matches in SAMPLE_WINDOWS ranges of ids spread over the
        index (filters and visibility applied), widened until they hold MIN_SAMPLE matches;
        FTS5 seeks to each range, so no statement walks every match. With ``one_pass`` (a
        prefix FTS5 merges anew in every statement) the ranges are read in one statement."""
        lowest, highest = connection.execute("SELECT (SELECT min(id) FROM docs), (SELECT max(id) FROM docs)").fetchone()
        span = highest - lowest + 1
        share = FIRST_SAMPLE_SHARE
        while True:
            width = max(1, int(span * share / SAMPLE_WINDOWS))
            starts = [lowest + span * window // SAMPLE_WINDOWS for window in range(SAMPLE_WINDOWS)]
            ranges = [f"{rowid} BETWEEN {start} AND {start + width - 1}" for start in starts]
            sql = (f"SELECT d.visibility, ({conditions}), d.kind, d.draft, d.category, d.status, d.chapter"
                   f" FROM {source} AND ")
            sample: list[Any] = []
            if one_pass:
                # One walk over the matches' ids ("measur*": 49 -> 11 ms); for a plain word
                # or phrase eight seeks are cheaper than one walk ("the": 3 against 24 ms).
                sample += connection.execute(sql + "(" + " OR ".join(ranges) + ")", params).fetchall()
            else:
                for window in ranges:
                    sample += connection.execute(sql + window, params).fetchall()
            covered = min(1.0, width * SAMPLE_WINDOWS / span)
            if len(sample) >= MIN_SAMPLE or covered >= 1.0:
                break
            share *= 4
        counts: dict[str, Counter[str]] = {name: Counter() for name in FACET_FIELDS}
        seen = 0
        for visibility, passes, *values in sample:
            if passes and _visible(visibility, allowed):
                seen += 1
                for name, value in zip(FACET_FIELDS, values, strict=True):
                    counts[name][value] += 1
        scaled = {name: {k: max(1, round(v / covered)) for k, v in c.items()} for name, c in counts.items()}
        if not seen:
            return 0, facet_counts(scaled, analysis.fold_key), [], True
        matches = max(len(sample) / covered, 1.0)
        if ranked:
            top = self._best_ranked(connection, source, conditions, params, allowed, limit, matches, seen / len(sample))
        else:
            top = self._newest(connection, f"{source} AND {conditions}", params, allowed, limit)
        return max(round(seen / covered), len(top)), facet_counts(scaled, analysis.fold_key), top, True

    def _best_ranked(
        self, connection: sqlite3.Connection, source: str, conditions: str, params: dict[str, Any],
        allowed: frozenset[str], limit: int, matches: float, share: float,
    ) -> list[tuple[float, int]]:
        """Every matching clause ranked, and the newest matching comments: enough of them
        (by ``share``) for about RANK_WINDOW to pass the filters and be visible."""
        oldest, newest = connection.execute("SELECT (SELECT min(id) FROM docs), (SELECT max(id) FROM docs)").fetchone()
        wanted = max(RANK_WINDOW, limit * 4) / max(share, 0.01)
        start = newest - int((newest - oldest + 1) * min(1.0, wanted / matches))
        found: list[tuple[float, int]] = []
        clause_params = {**params, "clauses": f"({params['match']}) AND k_kind : clause"}
        for sql, values in (
            (f"{source.replace(':match', ':clauses')} AND {conditions}", clause_params),
            (f"{source} AND fts.rowid >= {start} AND {conditions}", params),
        ):
            rows = connection.execute(
                f"SELECT d.id, {SCORE_SQL} AS score, d.visibility FROM {sql} "
                f"ORDER BY score DESC LIMIT {limit * 2 + 20}",
                values)
            found += [(score, doc) for doc, score, visibility in rows if _visible(visibility, allowed)]
        best: dict[int, float] = {}
        for score, doc in found:
            best[doc] = max(score, best.get(doc, score))
        return sorted(((score, doc) for doc, score in best.items()), key=lambda p: (-p[0], p[1]))[:limit]

    @staticmethod
    def _newest(connection: sqlite3.Connection, source: str, params: dict[str, Any], allowed: frozenset[str],
                limit: int) -> list[tuple[float, int]]:
        """Browsing by filters only: the newest visible documents."""
        wanted = limit * 2 + 20
        while True:
            rows = connection.execute(f"SELECT d.id, d.visibility FROM {source} ORDER BY d.id DESC LIMIT {wanted}",
                                      params).fetchall()
            best = [(0.0, doc) for doc, visibility in rows if _visible(visibility, allowed)]
            if len(best) >= limit or len(rows) < wanted:
                return best[:limit]
            wanted *= 4

    @staticmethod
    def _every_match(
        connection: sqlite3.Connection, source: str, score: str, params: dict[str, Any], allowed: frozenset[str],
        limit: int,
    ) -> tuple[int, dict[str, Counter[str]], list[tuple[float, int]]]:
        sql = f"SELECT d.id, {score}, d.visibility, d.kind, d.draft, d.category, d.status, d.chapter FROM {source}"
        counts: dict[str, Counter[str]] = {name: Counter() for name in FACET_FIELDS}
        kinds, drafts, categories, statuses, chapters = (counts[name] for name in FACET_FIELDS)
        top: list[tuple[float, int]] = []
        total = 0
        for doc, rank, visibility, kind, draft, category, status, chapter in connection.execute(sql, params):
            if not _visible(visibility, allowed):
                continue
            total += 1
            kinds[kind] += 1
            drafts[draft] += 1
            categories[category] += 1
            statuses[status] += 1
            chapters[chapter] += 1
            if len(top) < limit:
                heapq.heappush(top, (rank, -doc))
            elif rank > top[0][0]:
                heapq.heapreplace(top, (rank, -doc))
        return total, counts, [(rank, -doc) for rank, doc in top]

    def _hits(self, connection: sqlite3.Connection, ranked: list[int], scores: dict[int, float],
              compiled: _Compiled) -> list[SearchHit]:
        if not ranked:
            return []
        rows = connection.execute(
            f"SELECT d.id, d.doc_id, d.kind, b.body, d.language, {', '.join('d.' + c for c in HIT_COLUMNS)}"
            f" FROM docs AS d JOIN bodies AS b ON b.id = d.id WHERE d.id IN ({', '.join('?' * len(ranked))})", ranked
        ).fetchall()
        by_id = {row[0]: row for row in rows}
        hits = []
        markers: dict[str, _Marker] = {}  # one per language: the page's bodies share their words
        for doc in ranked:
            row = by_id.get(doc)
            if row is None:
                continue
            fields: dict[str, object] = dict(zip(HIT_COLUMNS, row[5:], strict=True))
            fields["code_id"] = int(fields["code_id"] or 0)
            created = fields.get("created")
            fields["created"] = dt.datetime.fromisoformat(str(created)) if created else None
            language = row[4] or self.language
            marker = markers.get(language) or markers.setdefault(language, _Marker(compiled, language))
            hits.append(SearchHit(doc_id=row[1], kind=row[2], fields=fields, score=float(scores.get(doc, 0.0)),
                                  snippet=snippet(row[3] or "", marker)))
        return hits


def _visible(visibility: str, allowed: frozenset[str]) -> bool:
    return visibility in allowed or not allowed.isdisjoint(visibility.split())


# --- leaves to FTS5 expressions -----------------------------------------------------------------


def _text_leaf(part: Text, languages: list[str]) -> Any:
    """Default fields: the words' terms in the analysed columns (any language); a named field:
    its folded words in a row in its column."""
    if part.field is None:
        sets = analysis.query_term_sets(list(part.words), languages)
        if not sets:
            return None
        phrases = " OR ".join(f"({_fts_phrase(terms)})" for terms in sets)
        return _Fts(f"{DEFAULT_COLUMNS} : ({phrases})", terms=frozenset(t for terms in sets for t in terms))
    plain = [w for word in part.words for w in _plain_words(word)]
    if not plain:
        return None
    return _Fts(f"{FIELD_COLUMN[part.field]} : ({_fts_phrase(plain)})")


def _any_word(words: list[str], scope: str, field: str | None) -> Any:
    if not words:
        return Nothing()
    either = " OR ".join(_fts_term(w) for w in words)
    return _Fts(f"{scope} : ({either})", words=frozenset(words) if field is None else frozenset())


def _within(a: str, b: str, limit: int) -> bool:
    """Levenshtein distance of ``a`` and ``b`` is at most ``limit`` (rows abandoned early)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        if min(current) > limit:
            return False
        previous = current
    return previous[-1] <= limit


def _compile(node: Any, filters: SearchFilters) -> _Compiled:
    compiled = _Compiled(None, [], {}, set(), set(), set())
    match, condition = _split(node, compiled)
    compiled.match = match
    if condition is not None:
        compiled.conditions.append(condition)
    _filter_conditions(filters, compiled)
    return compiled


def _split(node: Any, compiled: _Compiled, positive: bool = True) -> tuple[str | None, str | None]:
    """``node`` as (an FTS5 expression, an SQL condition on ``d``), either possibly None:
    text leaves go to FTS5 where its syntax can say it, the rest become SQL."""
    if isinstance(node, _Fts):
        compiled.merges_prefix |= node.merges_prefix
        if positive:
            compiled.terms |= node.terms
            compiled.words |= node.words
            compiled.prefixes |= node.prefixes
        return node.expression, None
    if isinstance(node, Key):
        return None, _bind(compiled, f"d.{node.column} = ?", [node.value])
    if isinstance(node, Every):
        return None, "1"
    if isinstance(node, Nothing):
        return None, "0"
    if isinstance(node, And):
        matches: list[str] = []
        negated: list[str] = []
        conditions: list[str] = []
        for child in node.children:
            if isinstance(child, Not) and _pure_fts(child.child):
                negated.append(_fts_only(child.child, compiled, positive=not positive))
                continue
            match, condition = _split(child, compiled, positive)
            if match is not None:
                matches.append(match)
            if condition is not None:
                conditions.append(condition)
        if matches:
            expression = " AND ".join(f"({m})" for m in matches)
            expression += "".join(f" NOT ({n})" for n in negated)
        else:
            expression = None
            conditions += [_bind(compiled, "d.id NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)", [n])
                           for n in negated]
        return expression, " AND ".join(f"({c})" for c in conditions) if conditions else None
    if isinstance(node, Or) and _pure_fts(node):
        return " OR ".join(f"({_fts_only(c, compiled, positive)})" for c in node.children), None
    if isinstance(node, Or):
        return None, " OR ".join(f"({_as_condition(c, compiled, positive)})" for c in node.children)
    if isinstance(node, Not):
        return None, f"NOT ({_as_condition(node.child, compiled, not positive)})"
    return None, "0"


def _as_condition(node: Any, compiled: _Compiled, positive: bool) -> str:
    match, condition = _split(node, compiled, positive)
    parts = []
    if condition is not None:
        parts.append(condition)
    if match is not None:
        parts.append(_bind(compiled, "d.id IN (SELECT rowid FROM fts WHERE fts MATCH ?)", [match]))
    return " AND ".join(f"({p})" for p in parts) if parts else "1"


def _pure_fts(node: Any) -> bool:
    """True when FTS5's syntax can express ``node`` alone (text leaves under AND/OR, NOT only
    after something)."""
    if isinstance(node, _Fts):
        return True
    if isinstance(node, Or):
        return all(_pure_fts(c) for c in node.children)
    if isinstance(node, And):
        positives = [c for c in node.children if not isinstance(c, Not)]
        negatives = [c.child for c in node.children if isinstance(c, Not)]
        return bool(positives) and all(_pure_fts(c) for c in positives + negatives)
    return False


def _fts_only(node: Any, compiled: _Compiled, positive: bool) -> str:
    match, condition = _split(node, compiled, positive)
    assert match is not None and condition is None
    return match


def _bind(compiled: _Compiled, sql: str, values: list[Any]) -> str:
    """``sql`` with each ``?`` replaced by a named parameter holding the next of ``values``."""
    pieces = sql.split("?")
    assert len(pieces) == len(values) + 1
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        name = f"p{len(compiled.params)}"
        compiled.params[name] = value
        out.append(f":{name}{piece}")
    return "".join(out)


def _filter_conditions(filters: SearchFilters, compiled: _Compiled) -> None:
    for name, column in FILTER_COLUMNS:
        values = filter_values(getattr(filters, name))
        if values:
            keys = sorted({analysis.fold_key(v) for v in values})
            compiled.conditions.append(_bind(compiled, f"d.{column} IN ({', '.join('?' * len(keys))})", keys))
    wanted_codes = code_ids(filters.code_id)
    if wanted_codes:
        compiled.conditions.append(
            _bind(compiled, f"d.code_id IN ({', '.join('?' * len(wanted_codes))})", list(wanted_codes)))
    start, end = day_bounds(filters.date_from, filters.date_to)
    if start is not None:
        compiled.conditions.append(_bind(compiled, "d.created >= ?", [start.isoformat(sep=" ")]))
    if end is not None:
        compiled.conditions.append(_bind(compiled, "d.created <= ?", [end.isoformat(sep=" ")]))


class _Marker(WordMarker):
    """Which words of a body to mark: same term as a query word in the hit's language, one of
    the words a pattern expanded to, or starting with a typed prefix."""

    def __init__(self, compiled: _Compiled, language: str) -> None:
        super().__init__()
        self._terms = compiled.terms
        self._words = compiled.words
        self._prefixes = tuple(compiled.prefixes)
        self._language = language

    def _decide(self, word: str) -> bool:
        if self._terms and analysis.index_term(word, self._language) in self._terms:
            return True
        if not (self._words or self._prefixes):
            return False
        plain = analysis.fold_text(word)
        return plain in self._words or (bool(self._prefixes) and plain.startswith(self._prefixes))


def _group(hits: list[SearchHit]) -> ClauseGroup:
    ordered = sorted(hits, key=draft_order)
    first = ordered[0].fields
    return ClauseGroup(
        clause_uid=str(first.get("clause_uid") or ""),
        clause_number=str(first.get("clause_number") or ""),
        clause_title=str(first.get("clause_title") or ""),
        best_score=max(h.score for h in ordered),
        hits=tuple(ordered),
    )


__all__ = ["SqliteSearchEngine", "document_row"]
