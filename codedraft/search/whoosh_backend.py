"""Whoosh 2.7 behind the ``SearchEngine`` interface: the embedded default backend.

One index folder per instance (the app's instance folder). What this module guarantees, and
why (numbers measured on this project, see DESIGN.md "Search"):

* Writers from several threads or processes never see Whoosh's ``LockError``: writes are
  serialised in-process by a lock and across processes by Whoosh's file lock, waited for up
  to ``write_timeout`` seconds; past that the caller gets ``SearchIndexBusy``.
* One searcher per engine, reopened only when the index generation changed (after our own
  commits, or another process's): opening one costs ~73 ms. Searches through it are
  serialised, because Whoosh readers share file handles and are not documented thread-safe.
  We open a fresh searcher instead of calling ``Searcher.refresh()``: refresh closes the
  readers an in-flight search may still use, and in 2.7.4 it reuses nothing anyway (its
  reuse table is keyed by generation but looked up by segment id).
* User queries never raise: only whitelisted field names are recognised, wildcards need a
  literal prefix and their expansion is capped, fuzzy distance is capped, parse failures
  fall back to a literal word search, and a time limit stops runaway collection.
* Visibility is a Whoosh filter, so totals, facet counts, snippets and highlights only ever
  come from documents the searcher may see.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import itertools
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sized
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.collectors import FilterCollector
from whoosh.fields import DATETIME, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.highlight import ContextFragmenter, Formatter, highlight
from whoosh.index import LockError
from whoosh.qparser import (
    EveryPlugin,
    FieldsPlugin,
    FuzzyTermPlugin,
    MultifieldPlugin,
    QueryParser,
    RangePlugin,
    SingleQuotePlugin,
)
from whoosh.searching import Hit, Searcher
from whoosh.writing import CLEAR, IndexWriter

from codedraft.search import analysis
from codedraft.search.engine import (
    FACET_FIELDS,
    LIVE_DRAFT,
    MESSAGE_BARE_WILDCARD,
    MESSAGE_EMPTY,
    MESSAGE_SHORT_WILDCARD,
    MESSAGE_TIME_LIMIT,
    MESSAGE_TOO_MANY_EXPANSIONS,
    MESSAGE_TOO_MANY_PATTERNS,
    MESSAGE_UNPARSABLE,
    USER_QUERY_FIELDS,
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
    has_dangling_operator,
    is_balanced,
    join_messages,
    to_utc_naive,
    validate_document,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 3: body and title hold analysed_text in each code's language
META_FILE = "codedraft-search.json"
INIT_LOCK_FILE = "codedraft-init.lock"

MIN_WILDCARD_PREFIX = 3
MAX_WILDCARD_EXPANSIONS = 100
MAX_EXPANDING_PATTERNS = 6
MIN_FUZZY_CHARS = 4
MAX_FUZZY_DISTANCE = 2
MAX_LITERAL_WORDS = 64
MAX_GROUPED_HITS = 500
SEARCH_TIME_LIMIT_S = 2.0
SNIPPET_CHARS = 240
PROGRESS_EVERY = 500
FILTER_CACHE_SIZE = 32
FACET_CACHE_ENTRIES = 512  # (segment, facet field) value arrays

# Fields searched when the user names none, with their weights.
DEFAULT_FIELDS: dict[str, float] = {"body": 1.0, "clause_title": 2.0, "clause": 1.0}
# Prefix, wildcard and fuzzy terms go to the unstemmed twin of a stemmed field.
UNSTEMMED_TWIN: dict[str, str] = {"body": "body_exact", "clause_title": "title_exact"}
# Schema field behind each facet name.
FACET_SOURCE: dict[str, str] = {
    "kind": "kind",
    "draft": "draft",
    "category": "category",
    "status": "status",
    "chapter": "chapter_key",
}
# Fields holding ``analysis.analysed_text``: query words on them become terms per language.
ANALYSED_FIELDS = frozenset({"body", "clause_title"})
# Stored fields handed back in SearchHit.fields.
HIT_FIELDS: tuple[str, ...] = (
    "code_id",
    "code_title",
    "chapter",
    "clause_uid",
    "clause_number",
    "clause_title",
    "draft",
    "draft_label",
    "category",
    "status",
    "author",
    "created",
)
_WILDCARD_CHARS = re.compile(r"[*?]")
_USER_FIELD_EXPR = r"(?<![\w:])(?P<text>{}):".format("|".join(USER_QUERY_FIELDS))

# One in-process lock per index folder: file locks alone would make threads poll.
_PROCESS_WRITE_LOCKS: dict[Path, threading.Lock] = {}
_PROCESS_WRITE_LOCKS_GUARD = threading.Lock()


def _process_write_lock(path: Path) -> threading.Lock:
    with _PROCESS_WRITE_LOCKS_GUARD:
        return _PROCESS_WRITE_LOCKS.setdefault(path, threading.Lock())


def build_schema(language: str = analysis.DEFAULT_LANGUAGE) -> Schema:
    """The index layout: analysed fields for ranking and phrases (each document's terms made
    in its own language before Whoosh sees them, so their analyzer only splits words),
    unstemmed twins for prefix/wildcard/fuzzy, folded keys for filters and facets (their
    sortable columns keep the original spelling for display). The text as written is kept in
    ``stored_body`` and ``stored_title``. ``language`` is unused since schema 3 (each document
    names its own)."""
    folded = analysis.folding_analyzer()
    stemmed = analysis.word_analyzer()
    keys = analysis.key_analyzer()
    return Schema(
        doc_id=ID(stored=True, unique=True, sortable=True),
        kind=ID(stored=True, sortable=True, analyzer=keys),
        code_id=ID(stored=True),
        code_title=STORED(),
        chapter=TEXT(analyzer=folded, stored=True, multitoken_query="phrase"),
        chapter_key=ID(sortable=True, analyzer=keys),
        clause_uid=ID(stored=True),
        clause_number=ID(stored=True, analyzer=keys),
        clause=TEXT(analyzer=folded, multitoken_query="phrase"),
        clause_title=TEXT(analyzer=stemmed, multitoken_query="phrase"),
        stored_title=STORED(),
        title_exact=TEXT(analyzer=folded, phrase=False),
        draft=ID(stored=True, sortable=True, analyzer=keys),
        draft_label=STORED(),
        body=TEXT(analyzer=stemmed, multitoken_query="phrase"),
        stored_body=STORED(),
        language=ID(stored=True),
        body_exact=TEXT(analyzer=folded, phrase=False),
        category=ID(stored=True, sortable=True, analyzer=keys),
        status=ID(stored=True, sortable=True, analyzer=keys),
        author=TEXT(analyzer=folded, stored=True, multitoken_query="phrase"),
        author_key=ID(analyzer=keys),
        created=DATETIME(stored=True, sortable=True),
        visibility=KEYWORD(scorable=False),
        fingerprint=ID(sortable=True),
    )


def document_fields(doc: SearchDocument, default_language: str = analysis.DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The Whoosh fields for one document, its text analysed in its language (else
    ``default_language``). Raises ValueError for a malformed document."""
    validate_document(doc)
    language = analysis.normal_language(doc.language or default_language)
    tokens = [t.strip() for t in doc.visibility if t.strip()]
    if any(len(t.split()) != 1 for t in tokens):
        raise ValueError(f"{doc.doc_id}: visibility tokens may not contain spaces")
    fields: dict[str, Any] = {
        "doc_id": doc.doc_id,
        "kind": doc.kind,
        "code_id": str(doc.code_id),
        "code_title": doc.code_title,
        "chapter": doc.chapter,
        "chapter_key": doc.chapter.strip(),
        "clause_uid": doc.clause_uid,
        "clause_number": doc.clause_number.strip(),
        "clause": f"{doc.clause_number} {doc.clause_title}",
        "clause_title": analysis.analysed_text(doc.clause_title, language),
        "stored_title": doc.clause_title,
        "title_exact": doc.clause_title,
        "draft": (doc.draft or LIVE_DRAFT).strip(),
        "draft_label": doc.draft_label,
        "body": analysis.analysed_text(doc.body, language),
        "stored_body": doc.body,
        "language": language,
        "body_exact": doc.body,
        "category": doc.category.strip(),
        "status": doc.status.strip(),
        "author": doc.author,
        "author_key": doc.author.strip(),
        "visibility": " ".join(tokens),
        "fingerprint": document_fingerprint(doc),
    }
    if doc.created is not None:
        fields["created"] = to_utc_naive(doc.created)
    return fields


@dataclasses.dataclass
class Collected:
    """What one pass over the index found: the top hits, every visible match counted."""

    hits: list[Hit]
    total: int
    facets: dict[str, Counter[str]]


class MarkFormatter(Formatter):
    """Highlight formatter: HTML-escaped text, matched words wrapped in ``<mark>``."""

    between = " … "

    def _text(self, text: str) -> str:
        return html.escape(text, quote=True)

    def format_token(self, text: str, token: Any, replace: bool = False) -> str:
        return f"<mark>{html.escape(text[token.startchar : token.endchar], quote=True)}</mark>"


class TimeLimit(Exception):
    """Raised inside collection when a search passes its deadline."""


class VisibleHitsCollector(FilterCollector):
    """Keeps only allowed documents, and stops collecting after a deadline.

    Whoosh's own TimeLimitCollector cannot be used here: wrapped around a FilterCollector it
    calls the inner collector's ``collect`` directly and the filter is skipped (checked
    here: a document of another code came back). So the deadline check lives in the filter.
    """

    CHECK_EVERY = 256

    def __init__(self, child: Any, allow: bytearray, timelimit: float) -> None:
        super().__init__(child)
        self._mask = allow
        self.timelimit = timelimit
        self.timed_out = False
        self._deadline = 0.0

    def prepare(self, top_searcher: Any, q: Any, context: Any) -> None:
        super().prepare(top_searcher, q, context)
        self._deadline = time.monotonic() + self.timelimit

    def collect_matches(self) -> None:
        child = self.child
        mask = self._mask
        offset = self.offset
        for seen, sub_docnum in enumerate(child.matches()):
            if seen % self.CHECK_EVERY == 0 and time.monotonic() > self._deadline:
                self.timed_out = True
                raise TimeLimit()
            if not mask[offset + sub_docnum]:
                self.filtered_count += 1
                continue
            child.collect(sub_docnum)


class _ParseNotes:
    """Messages and counters gathered while one user query is parsed."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.expanding_patterns: set[str] = set()


class RestrictedQueryParser(QueryParser):
    """Whoosh's parser limited to what CodeDraft users may ask for.

    Only ``USER_QUERY_FIELDS`` are recognised as field names; ranges, ``*:*`` and single-quote
    syntax are off; ``word~`` fuzzy terms are on. Prefix/wildcard/fuzzy terms are redirected to
    unstemmed fields, and wildcards without ``MIN_WILDCARD_PREFIX`` literal letters are
    searched literally (``a*`` took 22.5 s on a large index).
    """

    def __init__(self, schema: Schema, notes: _ParseNotes) -> None:
        super().__init__(None, schema)
        self.add_plugin(MultifieldPlugin(list(DEFAULT_FIELDS), fieldboosts=dict(DEFAULT_FIELDS)))
        for plugin_class in (FieldsPlugin, RangePlugin, EveryPlugin, SingleQuotePlugin):
            self.remove_plugin_class(plugin_class)
        self.add_plugin(FieldsPlugin(expr=_USER_FIELD_EXPR, remove_unknown=True))
        self.add_plugin(FuzzyTermPlugin())
        self.notes = notes

    def term_query(
        self,
        fieldname: str,
        text: str,
        termclass: type,
        boost: float = 1.0,
        tokenize: bool = True,
        removestops: bool = True,
    ) -> wq.Query | None:
        if isinstance(termclass, type) and issubclass(termclass, (wq.Wildcard, wq.Prefix)):
            pattern = text + "*" if issubclass(termclass, wq.Prefix) else text
            literal = _WILDCARD_CHARS.split(pattern, maxsplit=1)[0]
            words = _WILDCARD_CHARS.sub(" ", pattern).strip()
            if not words:
                self.notes.messages.append(MESSAGE_BARE_WILDCARD)
                return None
            if len(analysis.fold_text(literal)) < MIN_WILDCARD_PREFIX:
                self.notes.messages.append(MESSAGE_SHORT_WILDCARD.format(min_chars=MIN_WILDCARD_PREFIX, word=words))
                return super().term_query(fieldname, words, wq.Term, boost, True, removestops)
            self.notes.expanding_patterns.add(analysis.fold_text(pattern))
            fieldname = UNSTEMMED_TWIN.get(fieldname, fieldname)
        elif isinstance(termclass, type) and issubclass(termclass, wq.FuzzyTerm):
            if len(text) < MIN_FUZZY_CHARS:
                return super().term_query(fieldname, text, wq.Term, boost, True, removestops)
            self.notes.expanding_patterns.add(analysis.fold_text(text) + "~")
            fieldname = UNSTEMMED_TWIN.get(fieldname, fieldname)
        return super().term_query(fieldname, text, termclass, boost, tokenize, removestops)


def _is_null(q: wq.Query) -> bool:
    return isinstance(q, type(wq.NullQuery))


def _has_error(q: wq.Query) -> bool:
    """True when Whoosh marked some part of the parsed query as an error."""
    return any(getattr(part, "error", None) for part in _all_parts(q))


def _all_parts(q: wq.Query) -> Iterator[wq.Query]:
    yield q
    if not q.is_leaf():
        for child in q.children():
            yield from _all_parts(child)


class WhooshSearchEngine(SearchEngine):
    """The ``SearchEngine`` stored in one Whoosh folder.

    ``path`` is created if missing. ``language`` (ISO 639-1) picks the stemmer; an index made
    with another language or schema version is replaced by an empty one and
    ``needs_rebuild`` is set, so the app can call ``rebuild`` from the database.
    ``write_timeout`` bounds how long a writer waits for another writer.
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
        self.language = language
        self.write_timeout = write_timeout
        self.search_time_limit = search_time_limit
        self.needs_rebuild = False
        self._schema = build_schema(language)
        self._languages_cache: tuple[object, tuple[str, ...]] | None = None
        self._write_lock = _process_write_lock(self.path)
        self._searcher_lock = threading.RLock()
        self._searcher: Searcher | None = None
        self._filter_cache: dict[wq.Query, bytearray] = {}
        self._facet_cache: dict[tuple[object, str], list[str]] = {}
        self._closed = False
        self.path.mkdir(parents=True, exist_ok=True)
        self._ix = self._open_or_create()

    # --- opening ---------------------------------------------------------------------------

    def _expected_meta(self) -> dict[str, object]:
        return {"schema_version": SCHEMA_VERSION, "language": self.language}

    def _open_or_create(self) -> whoosh_index.Index:
        """Open the index in ``self.path``, or create it when absent or incompatible.

        Holds a file lock so two processes starting at once do not both create it.
        """
        with _file_lock(self.path / INIT_LOCK_FILE):
            meta_path = self.path / META_FILE
            if whoosh_index.exists_in(str(self.path)):
                if _read_meta(meta_path) == self._expected_meta():
                    try:
                        return whoosh_index.open_dir(str(self.path), schema=self._schema)
                    except Exception:
                        log.exception("search index in %s unreadable; recreating it", self.path)
                else:
                    log.warning("search index in %s was built differently; recreating", self.path)
                self.needs_rebuild = True
            ix = whoosh_index.create_in(str(self.path), self._schema)
            _write_meta(meta_path, self._expected_meta())
            return ix

    # --- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writer(self, *, clear: bool = False, procs: int = 1) -> Iterator[IndexWriter]:
        """A writer held under both locks; committed on success, cancelled on error.

        Raises SearchIndexBusy when the locks are not free within ``write_timeout``.
        """
        self._ensure_open()
        deadline = time.monotonic() + self.write_timeout
        if not self._write_lock.acquire(timeout=self.write_timeout):
            raise SearchIndexBusy(f"search index {self.path} busy (threads)")
        try:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                # Several processes (a full rebuild only) each write a segment, kept unmerged.
                parallel = {"procs": procs, "multisegment": True, "batchsize": 256} if procs > 1 else {}
                writer = self._ix.writer(timeout=remaining, delay=0.02, **parallel)
            except LockError as exc:
                raise SearchIndexBusy(f"search index {self.path} busy (processes)") from exc
            try:
                yield writer
            except BaseException:
                writer.cancel()
                raise
            if clear:
                writer.commit(mergetype=CLEAR)
            else:
                writer.commit()
        finally:
            self._write_lock.release()
        self._refresh_searcher()

    def index(self, docs: Iterable[SearchDocument]) -> int:
        # Last version wins when a batch names the same document twice.
        prepared = {fields["doc_id"]: fields for fields in (document_fields(d, self.language) for d in docs)}
        if not prepared:
            return 0
        with self._writer() as writer:
            # Whoosh's update_document opens a reader per document (279 s for 20,000 here);
            # one searcher finds every older version first.
            with writer.searcher() as searcher:
                for doc_id in prepared:
                    for docnum in searcher.document_numbers(doc_id=doc_id):
                        writer.delete_document(docnum)
            for fields in prepared.values():
                writer.add_document(**fields)
        return len(prepared)

    def delete(self, doc_ids: Iterable[str]) -> None:
        wanted = [d for d in dict.fromkeys(doc_ids) if isinstance(d, str) and d]
        if not wanted:
            return
        with self._writer() as writer:
            for doc_id in wanted:
                writer.delete_by_term("doc_id", doc_id)

    def rebuild(
        self, docs: Iterable[SearchDocument], progress: ProgressCallback | None = None, *, procs: int = 1
    ) -> int:
        """See ``SearchEngine.rebuild``; ``procs`` > 1 analyses documents in that many worker
        processes (Whoosh's MpWriter), leaving one segment per worker."""
        total = len(docs) if isinstance(docs, Sized) else None
        done = 0
        if progress:
            progress(0, total)
        with self._writer(clear=True, procs=max(1, int(procs))) as writer:
            for doc in docs:
                writer.add_document(**document_fields(doc, self.language))
                done += 1
                if progress and done % PROGRESS_EVERY == 0:
                    progress(done, total)
        self.needs_rebuild = False
        if progress:
            progress(done, total)
        return done

    # --- reading ---------------------------------------------------------------------------

    def _refresh_searcher(self) -> None:
        """Swap in a new searcher when the index generation moved (any process's commit)."""
        with self._searcher_lock:
            if self._closed:
                return
            current = self._searcher
            if current is not None and current.up_to_date():
                return
            self._searcher = self._ix.searcher()
            self._filter_cache.clear()
            if current is not None:
                current.close()

    @contextlib.contextmanager
    def _using_searcher(self) -> Iterator[Searcher]:
        with self._searcher_lock:
            self._ensure_open()
            self._refresh_searcher()
            assert self._searcher is not None
            yield self._searcher

    def count(self) -> int:
        with self._using_searcher() as searcher:
            return int(searcher.doc_count())

    def doc_ids(self) -> set[str]:
        with self._using_searcher() as searcher:
            reader = searcher.reader()
            column = reader.column_reader("doc_id")
            return {column[docnum] for docnum in reader.all_doc_ids()}

    def fingerprints(self) -> dict[str, str]:
        with self._using_searcher() as searcher:
            reader = searcher.reader()
            ids = reader.column_reader("doc_id")
            prints = reader.column_reader("fingerprint")
            return {ids[docnum]: prints[docnum] for docnum in reader.all_doc_ids()}

    def close(self) -> None:
        with self._searcher_lock:
            self._closed = True
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
            self._ix.close()

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("search engine is closed")

    # --- searching -------------------------------------------------------------------------

    def _run(self, prepared: PreparedQuery, page: int, per_page: int) -> SearchResults:
        query, allowed, messages, filters = prepared.query, prepared.allowed, prepared.messages, prepared.filters
        filter_q = wq.And([_visibility_query(allowed), *self._filter_queries(filters)])
        with self._using_searcher() as searcher:
            user_q = self._user_query(prepared.text, searcher, messages)
            if user_q is not None:
                user_q = _in_languages(user_q, self._query_languages(query, searcher))
            if user_q is None:
                if not has_any_filter(filters):
                    messages.append(MESSAGE_EMPTY)
                    return empty_results(page, per_page, join_messages(messages))
                user_q = wq.Every()
            if query.group_by_clause:
                return self._grouped(searcher, user_q, filter_q, page, per_page, messages)
            return self._paged(searcher, user_q, filter_q, page, per_page, messages)

    def _user_query(self, text: str, searcher: Searcher, messages: list[str]) -> wq.Query | None:
        """Parse what the user typed into a bounded Whoosh query, or None if it has no words.

        Falls back to a literal search of the words when the syntax is broken.
        """
        if not text:
            return None
        notes = _ParseNotes()
        parser = RestrictedQueryParser(self._schema, notes)
        parsed: wq.Query | None
        if is_balanced(text) and not has_dangling_operator(text):
            try:
                parsed = parser.parse(text)
            except Exception:
                log.info("query parse failed for %r", text, exc_info=True)
                parsed = None
        else:
            parsed = None
        if parsed is not None and not _has_error(parsed):
            parsed = parsed.normalize()
        if parsed is None or _has_error(parsed) or _is_null(parsed):
            literal = self._literal_query(text, parser)
            if literal is None:
                messages.extend(notes.messages)
                return None
            if parsed is None or _has_error(parsed) or not notes.messages:
                messages.append(MESSAGE_UNPARSABLE)
            messages.extend(notes.messages)
            return literal
        messages.extend(notes.messages)
        return self._cap_expansions(parsed, searcher, messages)

    def _query_languages(self, query: SearchQuery, searcher: Searcher) -> list[str]:
        """The languages a query is analysed in: those it names, else every language the
        index holds (cached per searcher), else the engine's default."""
        named = getattr(query, "languages", ()) or ()
        if isinstance(named, str):
            named = (named,)
        wanted = list(dict.fromkeys(analysis.normal_language(code) for code in named))
        if wanted:
            return wanted
        cached = self._languages_cache
        if cached is None or cached[0] is not searcher:
            held = searcher.reader().lexicon("language")
            codes = tuple(b.decode("utf-8") if isinstance(b, bytes) else str(b) for b in held)
            cached = (searcher, codes or (analysis.normal_language(self.language),))
            self._languages_cache = cached
        return list(cached[1])

    def _literal_query(self, text: str, parser: RestrictedQueryParser) -> wq.Query | None:
        """Every word of ``text`` (at most MAX_LITERAL_WORDS), all required, in the default
        fields; syntax characters are just separators here."""
        words = [m.group(0) for m in analysis.WORD_PATTERN.finditer(text)][:MAX_LITERAL_WORDS]
        per_word: list[wq.Query] = []
        for word in words:
            alternatives = [
                q
                for field, boost in DEFAULT_FIELDS.items()
                if (q := parser.term_query(field, word, wq.Term, boost=boost)) is not None
            ]
            if alternatives:
                per_word.append(wq.Or(alternatives))
        return wq.And(per_word).normalize() if per_word else None

    def _cap_expansions(self, q: wq.Query, searcher: Searcher, messages: list[str]) -> wq.Query:
        """Bound the cost of wildcard, prefix and fuzzy parts against the current index."""
        reader = searcher.reader()
        budget = {"patterns": MAX_EXPANDING_PATTERNS}

        def rewrite(part: wq.Query) -> wq.Query:
            if isinstance(part, wq.FuzzyTerm):
                part.maxdist = min(max(int(part.maxdist), 1), MAX_FUZZY_DISTANCE)
                part.prefixlength = max(int(part.prefixlength), 1)
                return part
            if isinstance(part, (wq.Prefix, wq.Wildcard)):
                return self._capped_pattern(part, reader, budget, messages)
            if part.is_leaf():
                return part
            return part.apply(rewrite)

        return rewrite(q)

    def _capped_pattern(self, part: wq.Query, reader: Any, budget: dict[str, int], messages: list[str]) -> wq.Query:
        pattern = part.text + ("*" if isinstance(part, wq.Prefix) else "")
        if budget["patterns"] <= 0:
            messages.append(MESSAGE_TOO_MANY_PATTERNS.format(limit=MAX_EXPANDING_PATTERNS))
            return wq.NullQuery
        budget["patterns"] -= 1
        expansions = list(itertools.islice(part._btexts(reader), MAX_WILDCARD_EXPANSIONS + 1))
        if len(expansions) <= MAX_WILDCARD_EXPANSIONS:
            return part
        messages.append(MESSAGE_TOO_MANY_EXPANSIONS.format(pattern=pattern, limit=MAX_WILDCARD_EXPANSIONS))
        fieldname = part.fieldname
        terms = [wq.Term(fieldname, b.decode("utf-8")) for b in expansions[:MAX_WILDCARD_EXPANSIONS]]
        return wq.Or(terms, boost=part.boost)

    def _filter_queries(self, filters: SearchFilters) -> list[wq.Query]:
        """One query per filled filter field: any of its values (folded like the index)."""
        keyed = {
            "chapter_key": filters.chapter,
            "clause_number": filters.clause_number,
            "draft": filters.draft,
            "kind": filters.kind,
            "category": filters.category,
            "status": filters.status,
            "author_key": filters.author,
        }
        queries: list[wq.Query] = []
        for fieldname, raw in keyed.items():
            values = filter_values(raw)
            if values:
                queries.append(wq.Or([wq.Term(fieldname, analysis.fold_key(v)) for v in values]))
        wanted_codes = code_ids(filters.code_id)
        if wanted_codes:
            queries.append(wq.Or([wq.Term("code_id", str(c)) for c in wanted_codes]))
        start, end = day_bounds(filters.date_from, filters.date_to)
        if start is not None or end is not None:
            queries.append(wq.DateRange("created", start, end))
        return queries

    def _collect(
        self, searcher: Searcher, user_q: wq.Query, filter_q: wq.Query, limit: int, messages: list[str]
    ) -> Collected:
        """Count every visible match (total and facets), then score for the top ``limit``.

        Counting walks the matchers' ids without scoring, and reads facet values from arrays
        cached per segment: Whoosh's own facet collection spent several Python calls per
        document and facet, which dominated queries matching tens of thousands of comments.
        Scoring then sees only visible documents, and Whoosh's block-quality skipping stays
        on. Stops (with a message) after the time limit.
        """
        allowed = self._allowed_docs(searcher, filter_q)
        deadline = time.monotonic() + self.search_time_limit
        counts: dict[str, Counter[str]] = {name: Counter() for name in FACET_FIELDS}
        total = 0
        visible_by_leaf: list[list[int]] = []
        try:
            for leaf, offset in searcher.leaf_searchers():
                matched = _matching_docs(user_q, leaf, searcher.boolean_context(), deadline)
                visible = [docnum for docnum in matched if allowed[offset + docnum]]
                visible_by_leaf.append(visible)
                total += len(visible)
                if visible:
                    for name in FACET_FIELDS:
                        values = self._facet_values(leaf.reader(), FACET_SOURCE[name])
                        counts[name].update(map(values.__getitem__, visible))
        except TimeLimit:
            messages.append(MESSAGE_TIME_LIMIT)
            return Collected(hits=[], total=total, facets=counts)
        hits: list[Hit] = []
        if total:
            collector = VisibleHitsCollector(searcher.collector(limit=limit), allowed, self.search_time_limit)
            try:
                searcher.search_with_collector(user_q, collector)
            except TimeLimit:
                messages.append(MESSAGE_TIME_LIMIT)
            hits = collector.results()[:]  # not list(): its length hint recounts every match
        return Collected(hits=hits, total=total, facets=counts)

    def _facet_values(self, reader: Any, fieldname: str) -> list[str]:
        """One facet field's value for every document of one segment, cached by segment id
        (segments never change; new ones appear, merged ones disappear)."""
        segment = reader.segment() if hasattr(reader, "segment") else None
        key = (segment.segment_id() if segment is not None else id(reader), fieldname)
        values = self._facet_cache.get(key)
        if values is None:
            column = reader.column_reader(fieldname, translate=True)
            values = [v if isinstance(v, str) else "" for v in column]
            if len(self._facet_cache) >= FACET_CACHE_ENTRIES:
                self._facet_cache.pop(next(iter(self._facet_cache)))
            self._facet_cache[key] = values
        return values

    def _allowed_docs(self, searcher: Searcher, filter_q: wq.Query) -> bytearray:
        """A mask over document numbers (1 = passes visibility and filters), cached per
        searcher because the same searcher (same tokens) asks again and again. A bytearray,
        not Whoosh's BitSet: its membership test is a Python call, 60 ms per 50,000 hits."""
        cached = self._filter_cache.get(filter_q)
        if cached is None:
            cached = bytearray(searcher.doc_count_all())
            for docnum in searcher.docs_for_query(filter_q):
                cached[docnum] = 1
            if len(self._filter_cache) >= FILTER_CACHE_SIZE:
                self._filter_cache.pop(next(iter(self._filter_cache)))
            self._filter_cache[filter_q] = cached
        return cached

    def _paged(
        self,
        searcher: Searcher,
        user_q: wq.Query,
        filter_q: wq.Query,
        page: int,
        per_page: int,
        messages: list[str],
    ) -> SearchResults:
        collected = self._collect(searcher, user_q, filter_q, page * per_page, messages)
        offset = (page - 1) * per_page
        marks = self._highlight_words(user_q, searcher)
        hits = tuple(self._hit(h, marks) for h in collected.hits[offset : offset + per_page])
        return SearchResults(
            total=collected.total,
            hits=hits,
            facets=facet_counts(collected.facets, analysis.fold_key),
            message=join_messages(messages),
            page=page,
            per_page=per_page,
        )

    def _grouped(
        self,
        searcher: Searcher,
        user_q: wq.Query,
        filter_q: wq.Query,
        page: int,
        per_page: int,
        messages: list[str],
    ) -> SearchResults:
        """Group the best MAX_GROUPED_HITS hits by clause; page over groups, not hits."""
        collected = self._collect(searcher, user_q, filter_q, MAX_GROUPED_HITS, messages)
        by_clause: dict[str, list[Hit]] = {}
        for hit in collected.hits:
            key = hit.get("clause_uid") or hit["doc_id"]
            by_clause.setdefault(key, []).append(hit)
        ordered = sorted(by_clause.values(), key=lambda hs: -max(h.score or 0.0 for h in hs))
        offset = (page - 1) * per_page
        marks = self._highlight_words(user_q, searcher)
        groups = tuple(self._group(hs, marks) for hs in ordered[offset : offset + per_page])
        return SearchResults(
            total=collected.total,
            hits=tuple(h for g in groups for h in g.hits),
            facets=facet_counts(collected.facets, analysis.fold_key),
            message=join_messages(messages),
            groups=groups,
            total_groups=len(ordered),
            page=page,
            per_page=per_page,
        )

    def _group(self, hits: list[Hit], marks: _Marks) -> ClauseGroup:
        search_hits = sorted((self._hit(h, marks) for h in hits), key=draft_order)
        first = search_hits[0].fields
        return ClauseGroup(
            clause_uid=str(first.get("clause_uid") or ""),
            clause_number=str(first.get("clause_number") or ""),
            clause_title=str(first.get("clause_title") or ""),
            best_score=max(h.score for h in search_hits),
            hits=tuple(search_hits),
        )

    def _hit(self, hit: Hit, marks: _Marks) -> SearchHit:
        stored = hit.fields()
        fields: dict[str, object] = {name: stored.get(name, "") for name in HIT_FIELDS}
        fields["clause_title"] = stored.get("stored_title", "")
        fields["code_id"] = int(stored.get("code_id") or 0)
        fields["created"] = stored.get("created")
        return SearchHit(
            doc_id=stored["doc_id"],
            kind=stored.get("kind", ""),
            fields=fields,
            score=float(hit.score or 0.0),
            snippet=self._snippet(stored.get("stored_body", ""), marks, stored.get("language") or self.language),
        )

    def _highlight_words(self, user_q: wq.Query, searcher: Searcher) -> _Marks:
        """What to mark in bodies: the query's body terms, plus its prefix, wildcard and fuzzy
        words expanded against the index (made into terms per hit, in the hit's language), so
        the highlighter marks every form of them. Only words in a visible hit's text get marked."""
        terms_found: set[str] = set()
        words: set[str] = set()
        try:
            terms = user_q.existing_terms(searcher.reader(), phrases=True, expand=True)
        except Exception:  # highlighting is a nicety; never fail a search over it
            log.info("could not expand highlight terms", exc_info=True)
            return _Marks(frozenset(), frozenset())
        for fieldname, btext in terms:
            text = btext.decode("utf-8") if isinstance(btext, bytes) else str(btext)
            if fieldname == "body":
                terms_found.add(text)
            elif fieldname == "body_exact":
                words.add(text)
        return _Marks(frozenset(terms_found), frozenset(words))

    def _snippet(self, body: str, marks: _Marks, language: str) -> str:
        """Escaped fragments of ``body`` around the marked words, or its escaped opening."""
        words = marks.terms | {analysis.index_term(w, language) for w in marks.words}
        if words:
            marked = highlight(
                body,
                frozenset(words),
                analysis.stemming_analyzer(language),
                ContextFragmenter(maxchars=SNIPPET_CHARS, surround=60),
                MarkFormatter(),
                top=2,
            )
            if marked:
                return str(marked)
        opening = body[:SNIPPET_CHARS]
        return html.escape(opening, quote=True) + ("…" if len(body) > SNIPPET_CHARS else "")


# --- small helpers ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Marks:
    """Highlighting: ``terms`` as indexed in ``body``, and unstemmed ``words`` that patterns
    expanded to (made into each hit's terms when its snippet is cut)."""

    terms: frozenset[str]
    words: frozenset[str]


def _in_languages(q: wq.Query, languages: list[str]) -> wq.Query:
    """``q`` with every term and phrase on an analysed field made of index terms: once per
    language (any of them may match), since documents of each code hold their own language's
    terms. Other fields are left as parsed."""
    if isinstance(q, wq.Term) and q.fieldname in ANALYSED_FIELDS:
        sets = analysis.query_term_sets([str(q.text)], languages)
        alternatives = [wq.Term(q.fieldname, terms[0], boost=q.boost) for terms in sets]
        return _one_of(alternatives, q.boost)
    if isinstance(q, wq.Phrase) and q.fieldname in ANALYSED_FIELDS:
        sets = analysis.query_term_sets([str(w) for w in q.words], languages)
        alternatives = [wq.Phrase(q.fieldname, list(terms), slop=q.slop, boost=q.boost) for terms in sets]
        return _one_of(alternatives, q.boost)
    if q.is_leaf():
        return q
    return q.apply(lambda child: _in_languages(child, languages))


def _one_of(alternatives: list[wq.Query], boost: float) -> wq.Query:
    if not alternatives:
        return wq.NullQuery
    return alternatives[0] if len(alternatives) == 1 else wq.Or(alternatives, boost=boost)


def _matching_docs(q: wq.Query, leaf: Any, context: Any, deadline: float) -> set[int]:
    """Segment-local numbers of the documents ``q`` matches, unscored.

    Set algebra over each term's posting ids: Whoosh's union and intersection matchers step
    through documents one Python call at a time (1.7 s for "risk" over three fields on
    100,000 documents; 50 ms this way). Phrases and other leaves use their own matcher.
    Raises TimeLimit past ``deadline``.
    """
    if time.monotonic() > deadline:
        raise TimeLimit()
    # Exact types only: subclasses (Ordered, minmatch Or...) add conditions set algebra lacks.
    if type(q) is wq.Every:
        return set(leaf.reader().all_doc_ids())
    if _is_null(q):
        return set()
    if type(q) in (wq.Or, wq.DisjunctionMax) and not getattr(q, "minmatch", 0):
        found: set[int] = set()
        for child in q.children():
            found |= _matching_docs(child, leaf, context, deadline)
        return found
    if type(q) is wq.And:
        positives = [c for c in q.children() if not isinstance(c, wq.Not)]
        negatives = [c.query for c in q.children() if isinstance(c, wq.Not)]
        if not positives:
            return set()
        found = set(_matching_docs(positives[0], leaf, context, deadline))
        for child in positives[1:]:
            if not found:
                break
            found &= _matching_docs(child, leaf, context, deadline)
        for child in negatives:
            found -= _matching_docs(child, leaf, context, deadline)
        return found
    if type(q) is wq.AndNot:
        return set(_matching_docs(q.a, leaf, context, deadline)) - _matching_docs(q.b, leaf, context, deadline)
    if type(q) is wq.AndMaybe:
        return _matching_docs(q.a, leaf, context, deadline)
    if type(q) is wq.Require:
        return set(_matching_docs(q.a, leaf, context, deadline)) & _matching_docs(q.b, leaf, context, deadline)
    matcher = q.matcher(leaf, context)
    return set(matcher.all_ids())


def _visibility_query(allowed: frozenset[str]) -> wq.Query:
    return wq.Or([wq.Term("visibility", token) for token in sorted(allowed)])


def _read_meta(meta_path: Path) -> dict[str, object] | None:
    try:
        loaded = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _write_meta(meta_path: Path, meta: dict[str, object]) -> None:
    partial = meta_path.with_suffix(".tmp")
    partial.write_text(json.dumps(meta), encoding="utf-8")
    partial.replace(meta_path)


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock across processes (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: Whoosh's own lock still guards writes
        yield
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


__all__ = [
    "WhooshSearchEngine",
    "RestrictedQueryParser",
    "MarkFormatter",
    "build_schema",
    "document_fields",
    "DEFAULT_FIELDS",
    "MIN_WILDCARD_PREFIX",
    "MAX_WILDCARD_EXPANSIONS",
]
