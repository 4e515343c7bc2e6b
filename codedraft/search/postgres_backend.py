"""PostgreSQL full-text search behind the ``SearchEngine`` interface: the backend for CodeDraft
scaled out over several machines, where no Whoosh folder can be shared.

The index is two tables made by migrations (``5f1c2a9d7e30``, indexes ``f17b2c3d4e5a``; this
module creates nothing): ``search_document`` (stored fields, folded keys for filters,
``visibility text[]``, and two ``tsvector`` columns, each in one GIN index together with
``visibility``; btree indexes on the filter keys and on ``(kind_key, created)``) and
``search_word`` (every unstemmed word, for expanding patterns). What this module guarantees,
and how:

* The same query language and messages as ``WhooshSearchEngine``: words (AND), "phrases",
  AND/OR/NOT/ANDNOT, ``prefix*`` and ``wild?ard`` with at least three literal letters and at
  most ``MAX_WILDCARD_EXPANSIONS`` expansions, ``word~`` fuzzy words (Levenshtein distance at
  most 2, first letter kept), the ``USER_QUERY_FIELDS``; anything else is literal. User text
  only ever reaches SQL as bound parameters; tsquery text is built from lexemes PostgreSQL
  itself produced, each quoted.
* Words are split in Python with ``analysis.WORD_PATTERN`` on both sides (documents and
  queries), so "robots.txt", "II.1.2" and "copyright-related" split as they do in Whoosh.
  The stemmed column is built in Python, by the same ``analysis.index_term`` every backend
  uses, in each document's own language (PostgreSQL has no Polish stemmer, and its own
  Snowball configurations would stem differently from the embedded index), and handed to
  PostgreSQL as a tsvector literal; a query's words are made into terms in each language it
  searches. The unstemmed column is folded by PostgreSQL (unaccent, no stop words).
* ``stemmed`` holds clause number + title (weight A) and body (B) for ranking and phrases;
  ``unstemmed`` holds number + title (A), body (B), chapter (C) and author (D) for prefixes,
  wildcards, fuzzy words and the chapter/clause/author fields. A phrase is matched within one
  weight, so it never runs from a title into the body.
* Visibility is part of every WHERE clause (``visibility && tokens``, in the words' GIN index),
  so totals, facets, snippets and highlights only come from documents the searcher may see.
* Bounded work per search (docs/search.md): a page sample first; up to ``EXACT_LIMIT`` matches
  the total and facets are exact (one pass that stops after ``EXACT_LIMIT + 1``) and only those
  rows are ranked; past it both are estimated from the sample (``estimated``, "about N") and
  ``ts_rank`` runs over the matching clauses and about ``RANK_WINDOW`` newest matching comments.
* A search runs in one read-only REPEATABLE READ transaction under ``statement_timeout``;
  past it the results say ``MESSAGE_TIME_LIMIT``. Writers wait for locks at most
  ``write_timeout`` (``lock_timeout``), then raise ``SearchIndexBusy``. A rebuild replaces
  every row in one transaction: searchers see the old index until it commits.
"""

from __future__ import annotations

import dataclasses
import heapq
import html
import logging
import re
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

import psycopg.errors
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from codedraft.config import database_url
from codedraft.search import analysis
from codedraft.search.engine import (
    BINARY_OPERATORS,
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
from codedraft.search.whoosh_backend import (
    MAX_EXPANDING_PATTERNS,
    MAX_FUZZY_DISTANCE,
    MAX_GROUPED_HITS,
    MAX_LITERAL_WORDS,
    MAX_WILDCARD_EXPANSIONS,
    MIN_FUZZY_CHARS,
    MIN_WILDCARD_PREFIX,
    PROGRESS_EVERY,
    SEARCH_TIME_LIMIT_S,
    SNIPPET_CHARS,
)

log = logging.getLogger(__name__)

# Languages the migration made a stemming configuration for. Since the stemmed column is built
# in Python these only name the rows an older version wrote ("codedraft_en"), to rebuild them.
STEMMED_LANGUAGES = frozenset(
    {"da", "de", "en", "es", "fi", "fr", "hu", "it", "nl", "no", "pt", "ro", "ru", "sv", "tr"}
)
UNSTEMMED_CONFIG = "codedraft_simple"
SNIPPET_SURROUND = 60
SNIPPET_FRAGMENTS = 2
WRITE_BATCH = 500
LEXEME_CACHE_SIZE = 200_000
# PostgreSQL keeps positions 1..16383 and at most 256 of them per lexeme; longer lexemes
# than this are refused, and no real word is this long.
MAX_POSITION = 16383
MAX_POSITIONS_PER_TERM = 256
MAX_TERM_CHARS = 500
LANGUAGES_TTL_S = 60.0
# Parentheses nested deeper than this are not parsed: the query's words are searched literally.
MAX_NESTING = 20
# Up to this many matches are counted exactly (total and facets from one pass that stops after
# EXACT_LIMIT + 1). Past it both come from a sample of the table's pages, and ts_rank runs over
# the matching clauses and about RANK_WINDOW of the newest matching comments only: EXPLAIN
# (ANALYZE, BUFFERS) at 100,000 comments showed counting, faceting and ranking every match
# reading each match's heap row (14,671 rows and 10,752 pages for "inte*": 450 ms).
EXACT_LIMIT = 1000
RANK_WINDOW = 1000
FIRST_SAMPLE_PERCENT = 3.0
# ... or a larger share, so that the sample holds at least this many rows.
MIN_SAMPLE_ROWS = 3000
POOL_SIZE = 5
# The words' GIN indexes (migration f17b2c3d4e5a), each together with visibility.
GIN_INDEXES = ("ix_search_document_stemmed_visibility", "ix_search_document_unstemmed_visibility")
# ts_rank weights for D, C, B, A: a title word counts twice a body word, as in Whoosh.
RANK_WEIGHTS = "{0.1, 0.2, 0.5, 1.0}"
# Default fields: title and number (A) and body (B); field queries pick one weight.
DEFAULT_WEIGHTS = ("A", "B")
TEXT_FIELD_WEIGHT = {"clause": "A", "chapter": "C", "author": "D"}
KEY_FIELD_COLUMN = {"kind": "kind_key", "draft": "draft_key", "category": "category_key", "status": "status_key"}
FILTER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("chapter", "chapter_key"),
    ("clause_number", "clause_number_key"),
    ("draft", "draft_key"),
    ("kind", "kind_key"),
    ("category", "category_key"),
    ("status", "status_key"),
    ("author", "author_key"),
)
FACET_COLUMNS = ", ".join(FACET_FIELDS)
# Positions in a sampled row: the facet columns, then kind_key, created and whether it matches.
_SAMPLE_KIND, _SAMPLE_CREATED, _SAMPLE_HIT = len(FACET_FIELDS), len(FACET_FIELDS) + 1, len(FACET_FIELDS) + 2
HIT_COLUMNS: tuple[str, ...] = (
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
STORED_COLUMNS: tuple[str, ...] = (
    "doc_id", "kind", "kind_key", "code_id", "code_title", "chapter", "chapter_key", "clause_uid",
    "clause_number", "clause_number_key", "clause_title", "draft", "draft_key", "draft_label", "category",
    "category_key", "status", "status_key", "author", "author_key", "created", "body", "visibility",
    "fingerprint", "language",
)

_WILDCARD_CHARS = re.compile(r"[*?]")
_FIELD_PREFIX = re.compile(r"(?<![\w:])(?P<field>{}):".format("|".join(USER_QUERY_FIELDS)))
_FUZZY = re.compile(r"^(?P<word>.*\w)~(?P<distance>\d*)(?:/\d*)?$")
_WORD_END = re.compile(r"[\s()\"]")
# One character of a word as ``analysis.WORD_PATTERN`` cuts words.
_WORD_CHAR = analysis.WORD_PATTERN.pattern.removesuffix("+")

_UPSERT = sa.text(
    "INSERT INTO search_document ({columns}, stemmed, unstemmed) VALUES ({values},"
    " CAST(:stemmed AS tsvector),"
    " setweight(to_tsvector('{plain}', :heading_words), 'A') || setweight(to_tsvector('{plain}', :chapter_words), 'C')"
    " || setweight(to_tsvector('{plain}', :author_words), 'D') || setweight(to_tsvector('{plain}', :body_words), 'B'))"
    " ON CONFLICT (doc_id) DO UPDATE SET {updates}, seq = excluded.seq, stemmed = excluded.stemmed,"
    " unstemmed = excluded.unstemmed".format(
        columns=", ".join(STORED_COLUMNS),
        values=", ".join(f"CAST(:{c} AS text[])" if c == "visibility" else f"CAST(:{c} AS text)" if c == "language"
                        else f":{c}" for c in STORED_COLUMNS),
        plain=UNSTEMMED_CONFIG,
        updates=", ".join(f"{c} = excluded.{c}" for c in STORED_COLUMNS if c != "doc_id"),
    )
)
# Ordered, so two writers adding overlapping words lock them in the same order (no deadlock).
_ADD_WORDS = sa.text(
    "INSERT INTO search_word (word) SELECT DISTINCT w FROM search_document AS d,"
    " unnest(tsvector_to_array(ts_filter(d.unstemmed, '{a,b}'))) AS w"
    " WHERE d.doc_id = ANY(CAST(:ids AS text[])) ORDER BY w ON CONFLICT DO NOTHING"
)
_ALL_WORDS = sa.text(
    "INSERT INTO search_word (word) SELECT DISTINCT w FROM search_document AS d,"
    " unnest(tsvector_to_array(ts_filter(d.unstemmed, '{a,b}'))) AS w ORDER BY w"
)
_LEXEMES = sa.text(
    "SELECT w,"
    f" ARRAY(SELECT t.lexeme FROM unnest(to_tsvector('{UNSTEMMED_CONFIG}', w)) AS t ORDER BY t.positions[1])"
    " FROM unnest(CAST(:words AS text[])) AS w"
)
# The distinct languages, one index probe each (DISTINCT read all 100,000 rows: 120 ms).
_HELD_LANGUAGES = sa.text(
    "WITH RECURSIVE held(language) AS ("
    " (SELECT language FROM search_document ORDER BY language LIMIT 1) UNION ALL"
    " SELECT (SELECT d.language FROM search_document AS d WHERE d.language > held.language"
    " ORDER BY d.language LIMIT 1) FROM held WHERE held.language IS NOT NULL)"
    " SELECT language FROM held WHERE language IS NOT NULL"
)
_EXPAND = sa.text(
    "SELECT word FROM search_word WHERE word LIKE :pattern ESCAPE '\\' ORDER BY word LIMIT :limit"
)
_EXPAND_FUZZY = sa.text(
    "SELECT word FROM search_word WHERE word LIKE :first ESCAPE '\\'"
    " AND length(word) BETWEEN :shortest AND :longest"
    " AND levenshtein_less_equal(word, :word, :distance) <= :distance ORDER BY word LIMIT :limit"
)


def stemming_config(language: str) -> str:
    """The text search configuration the migration made for ``language`` (ISO 639-1), else
    the folding one. Only rows written before the stemmed column was built in Python name one."""
    return f"codedraft_{language}" if language in STEMMED_LANGUAGES else UNSTEMMED_CONFIG


def stemmed_vector(heading: str, body: str, language: str) -> str:
    """A tsvector literal of ``heading`` (weight A) then ``body`` (weight B) as
    ``analysis.index_terms`` in ``language``, one position per word as PostgreSQL numbers them."""
    positions: dict[str, list[str]] = {}
    at = 0
    for text, weight in ((heading, "A"), (body, "B")):
        for term in analysis.index_terms(text, language):
            at += 1
            held = positions.setdefault(term, [])
            if len(held) < MAX_POSITIONS_PER_TERM and len(term) <= MAX_TERM_CHARS:
                held.append(f"{min(at, MAX_POSITION)}{weight}")
    entries = []
    for term, marks in positions.items():
        if marks:
            entries.append(_quoted(_pg_text(term)) + ":" + ",".join(dict.fromkeys(marks)))
    return " ".join(entries)


def query_words(text: str) -> list[str]:
    """Words as both documents and queries are split (NFC, so PostgreSQL sees composed letters)."""
    return analysis.WORD_PATTERN.findall(unicodedata.normalize("NFC", text))


def _pg_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; nothing else is changed."""
    return value.replace("\x00", "\ufffd")


def document_row(doc: SearchDocument, language: str) -> dict[str, Any]:
    """The ``search_document`` parameters for one document, analysed in its language (else
    ``language``). Raises ValueError for a malformed one."""
    validate_document(doc)
    # A document that names no language is analysed in the engine's: marked "*<code>", so an
    # engine with another default knows those rows need rebuilding.
    if doc.language:
        stored_language = analysis.normal_language(doc.language)
    else:
        stored_language = f"*{analysis.normal_language(language)}"
    language = stored_language.lstrip("*")
    tokens = [t.strip() for t in doc.visibility if t.strip()]
    if any(len(t.split()) != 1 for t in tokens):
        raise ValueError(f"{doc.doc_id}: visibility tokens may not contain spaces")
    draft = (doc.draft or LIVE_DRAFT).strip()
    stored: dict[str, Any] = {
        "doc_id": doc.doc_id, "kind": doc.kind, "code_id": doc.code_id, "code_title": doc.code_title,
        "chapter": doc.chapter, "clause_uid": doc.clause_uid, "clause_number": doc.clause_number.strip(),
        "clause_title": doc.clause_title, "draft": draft, "draft_label": doc.draft_label,
        "category": doc.category.strip(), "status": doc.status.strip(), "author": doc.author, "body": doc.body,
    }
    row = {name: _pg_text(value) if isinstance(value, str) else value for name, value in stored.items()}
    for name in ("kind", "chapter", "clause_number", "draft", "category", "status", "author"):
        row[f"{name}_key"] = _pg_text(analysis.fold_key(stored[name]))
    row.update(
        created=to_utc_naive(doc.created) if doc.created is not None else None,
        visibility=[_pg_text(t) for t in tokens],
        fingerprint=document_fingerprint(doc),
        language=stored_language,
        heading_words=_pg_text(" ".join(query_words(f"{doc.clause_number} {doc.clause_title}"))),
        stemmed=stemmed_vector(f"{doc.clause_number} {doc.clause_title}", doc.body, language),
        body_words=_pg_text(" ".join(query_words(doc.body))),
        chapter_words=_pg_text(" ".join(query_words(doc.chapter))),
        author_words=_pg_text(" ".join(query_words(doc.author))),
    )
    return row


# --- the parsed query: a small tree, compiled to SQL with bound parameters ------------------


@dataclasses.dataclass(frozen=True)
class Text:
    """Words that must appear in order (one word: anywhere). ``field`` None means the default
    fields on the stemmed column; "clause", "chapter" or "author" the unstemmed column."""

    words: tuple[str, ...]
    field: str | None = None


@dataclasses.dataclass(frozen=True)
class Pattern:
    """``prefix*`` or a wildcard, already checked for enough literal letters."""

    pattern: str
    field: str | None = None


@dataclasses.dataclass(frozen=True)
class Fuzzy:
    word: str
    distance: int
    field: str | None = None


@dataclasses.dataclass(frozen=True)
class Key:
    """An exact (folded) value of kind, draft, category or status."""

    column: str
    value: str


@dataclasses.dataclass(frozen=True)
class Match:
    """A resolved leaf: ``column @@ tsquery``; ``marks`` says what it highlights in bodies."""

    column: str
    tsquery: str
    stems: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class Nothing:
    """A pattern that expands to no word: matches no document."""


@dataclasses.dataclass(frozen=True)
class Every:
    """Browsing with filters only: every visible document."""


@dataclasses.dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Not:
    child: Node


Leaf = Text | Pattern | Fuzzy | Key | Match | Nothing | Every
Node = Leaf | And | Or | Not


# "a OR b OR c" is one Or of three, and "NOT NOT a" is a: a chain of operators stays one level
# deep (120 NOTs became SQL nested past SQLite's parser stack).
def _all_of(children: Iterable[Node | None]) -> Node | None:
    kept = tuple(n for c in children if c is not None for n in (c.children if isinstance(c, And) else (c,)))
    return kept[0] if len(kept) == 1 else (And(kept) if kept else None)


def _any_of(children: Iterable[Node | None]) -> Node | None:
    kept = tuple(n for c in children if c is not None for n in (c.children if isinstance(c, Or) else (c,)))
    return kept[0] if len(kept) == 1 else (Or(kept) if kept else None)


def _negated(child: Node | None) -> Node | None:
    if isinstance(child, Not):
        return child.child
    return Not(child) if child is not None else None


class _Unparsable(Exception):
    """The query's syntax is broken: search its words literally."""


class QueryParser:
    """The user's query (after ``clean_query_text``) as a tree of unresolved leaves.

    Precedence as in Whoosh: NOT binds tightest, then AND/ANDNOT/ANDMAYBE, then OR, then the
    implicit AND between neighbours ("a b OR c" is a AND (b OR c)). Only ``USER_QUERY_FIELDS``
    are field names; operators are upper-case words. ``messages`` collects what the user
    should be told (short or bare wildcards).
    """

    def __init__(self, text: str) -> None:
        self.messages: list[str] = []
        self._tokens = list(self._tokenize(text))
        self._at = 0
        self._depth = 0

    # -- tokens: ("(",), (")",), ("op", word), ("phrase" | "word", text, field)

    def _tokenize(self, text: str) -> Iterator[tuple[str, ...]]:
        at, end = 0, len(text)
        while at < end:
            char = text[at]
            if char.isspace():
                at += 1
                continue
            if char in "()":
                yield (char,)
                at += 1
                continue
            field = ""
            prefix = _FIELD_PREFIX.match(text, at)
            if prefix and prefix.end() < end and not text[prefix.end()].isspace() and text[prefix.end()] not in "()":
                field, at = prefix.group("field"), prefix.end()
            if text[at] == '"':
                close = text.find('"', at + 1)
                if close < 0:
                    raise _Unparsable()
                yield ("phrase", text[at + 1 : close], field)
                at = close + 1
                continue
            stop = _WORD_END.search(text, at)
            word_end = stop.start() if stop else end
            word = text[at:word_end]
            at = word_end
            if not field and (word in BINARY_OPERATORS or word == "NOT"):
                yield ("op", word)
            else:
                yield ("word", word, field)

    def _peek(self) -> tuple[str, ...] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _is_op(self, *names: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "op" and token[1] in names

    def parse(self) -> Node | None:
        """The whole query; raises ``_Unparsable`` for what cannot be read as intended."""
        node = self._sequence()
        if self._peek() is not None:
            raise _Unparsable()
        return node

    def _sequence(self) -> Node | None:
        items: list[Node | None] = []
        while (token := self._peek()) is not None and token[0] != ")":
            items.append(self._either())
        return _all_of(items)

    def _either(self) -> Node | None:
        node = self._both()
        while self._is_op("OR"):
            self._at += 1
            node = _any_of([node, self._both()])
        return node

    def _both(self) -> Node | None:
        node = self._unary()
        while self._is_op("AND", "ANDNOT", "ANDMAYBE"):
            operator = self._peek()[1]  # type: ignore[index]
            self._at += 1
            right = self._unary()
            if operator == "AND":
                node = _all_of([node, right])
            elif operator == "ANDNOT":
                node = _all_of([node, _negated(right)])
            # ANDMAYBE: the right side only adds to the score in Whoosh; it never narrows.
        return node

    def _unary(self) -> Node | None:
        if self._is_op("NOT"):
            self._at += 1
            return _negated(self._unary())
        return self._atom()

    def _atom(self) -> Node | None:
        token = self._peek()
        if token is None:
            raise _Unparsable()
        self._at += 1
        if token[0] == "(":
            # Each level is five frames of this parser: 200 levels ran out of Python's stack.
            self._depth += 1
            if self._depth > MAX_NESTING:
                raise _Unparsable()
            node = self._sequence()
            if self._peek() != (")",):
                raise _Unparsable()
            self._at += 1
            self._depth -= 1
            return node
        if token[0] == ")":
            raise _Unparsable()
        if token[0] == "op":  # an operator where a word belongs is a word
            return self.leaf(token[1], None)
        if token[0] == "phrase":
            return self._field_leaf(token[2], token[1], phrase=True)
        return self._field_leaf(token[2], token[1], phrase=False) if token[2] else self.leaf(token[1], None)

    def _field_leaf(self, field: str, value: str, *, phrase: bool) -> Node | None:
        if field in KEY_FIELD_COLUMN:
            key = analysis.fold_key(value)
            return Key(KEY_FIELD_COLUMN[field], key) if key else None
        if phrase or not field:
            return _text(query_words(value), field or None)
        return self.leaf(value, field)

    def leaf(self, word: str, field: str | None) -> Node | None:
        """One unquoted word: a pattern, a fuzzy word, or words (several make a phrase)."""
        if _WILDCARD_CHARS.search(word):
            return self._pattern(word, field)
        fuzzy = _FUZZY.match(word)
        if fuzzy:
            distance = int(fuzzy.group("distance") or 1)
            base = fuzzy.group("word")
            if len(base) >= MIN_FUZZY_CHARS and len(query_words(base)) == 1:
                return Fuzzy(base, min(max(distance, 1), MAX_FUZZY_DISTANCE), field)
            return _text(query_words(base), field)
        return _text(query_words(word), field)

    def _pattern(self, pattern: str, field: str | None) -> Node | None:
        literal = _WILDCARD_CHARS.split(pattern, maxsplit=1)[0]
        words = _WILDCARD_CHARS.sub(" ", pattern).strip()
        if not words:
            self.messages.append(MESSAGE_BARE_WILDCARD)
            return None
        if len(analysis.fold_text(literal)) < MIN_WILDCARD_PREFIX:
            self.messages.append(MESSAGE_SHORT_WILDCARD.format(min_chars=MIN_WILDCARD_PREFIX, word=words))
            return _text(query_words(words), field)
        return Pattern(pattern, field)


def _text(words: Sequence[str], field: str | None) -> Text | None:
    return Text(tuple(words), field) if words else None


def literal_query(text: str) -> Node | None:
    """Every word of ``text`` (at most MAX_LITERAL_WORDS), all required, in the default fields."""
    return _all_of(Text((word,)) for word in query_words(text)[:MAX_LITERAL_WORDS])


def parse_user_query(text: str, messages: list[str]) -> Node | None:
    """What the user typed as an unresolved tree, or None when it has no words; broken syntax
    falls back to a literal search of the words (with ``MESSAGE_UNPARSABLE``)."""
    if not text:
        return None
    parser: QueryParser | None = None
    parsed: Node | None = None
    refused = not is_balanced(text) or has_dangling_operator(text)
    if not refused:
        try:
            parser = QueryParser(text)
            parsed = parser.parse()
        except _Unparsable:
            refused = True
    notes = parser.messages if parser is not None else []
    if refused or parsed is None:
        literal = literal_query(text)
        if literal is None:
            messages.extend(notes)
            return None
        if refused or not notes:
            messages.append(MESSAGE_UNPARSABLE)
        messages.extend(notes)
        return literal
    messages.extend(notes)
    return parsed


def _quoted(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _phrase(lexemes: Sequence[str], weights: Sequence[str], *, prefix_last: bool = False) -> str:
    """A tsquery matching ``lexemes`` in a row within one weight (one of ``weights``).

    One lexeme needs no row, so its weights are joined ('risk':AB); "" means any weight.
    """
    groups = ["".join(weights)] if len(lexemes) == 1 else list(weights)
    phrases = []
    for weight in groups:
        parts = [_quoted(lexeme) for lexeme in lexemes]
        marks = [f":{weight}" if weight else "" for _ in lexemes]
        if prefix_last:
            marks[-1] = f":*{weight}"
        phrases.append(" <-> ".join(p + m for p, m in zip(parts, marks, strict=True)))
    return " | ".join(f"({p})" for p in phrases) if len(phrases) > 1 else phrases[0]


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclasses.dataclass
class Lexemes:
    """What PostgreSQL makes of one word: its folded (unstemmed) forms."""

    unstemmed: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class _Sample:
    """The matching rows of a page sample, the factor that scales its counts to the whole
    table, and so the estimated number of matches."""

    hits: list[Any]
    factor: float
    matches: int


@dataclasses.dataclass
class Compiled:
    """A resolved query as SQL: the condition, its parameters, the rank and the marks."""

    condition: str
    params: dict[str, Any]
    rank_stemmed: list[str]
    rank_unstemmed: list[str]
    stems: set[str]
    words: set[str]
    prefixes: set[str]
    languages: tuple[str, ...] = ()
    # ``condition`` is ``visible AND matching``: the visibility test and the rest (words, filters).
    visible: str = ""
    matching: str = ""

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


class PostgresSearchEngine(SearchEngine):
    """The ``SearchEngine`` stored in PostgreSQL tables, shared by every process on every machine.

    ``url`` is a SQLAlchemy URL (``postgresql://`` means psycopg 3); the engine keeps its own
    small connection pool and never uses the app's session. ``language`` (ISO 639-1) picks the
    stemmer; ``needs_rebuild`` is true when the index was built with another one. The tables
    come from the migration; nothing is created here.
    """

    def __init__(
        self,
        url: str,
        language: str = analysis.DEFAULT_LANGUAGE,
        *,
        write_timeout: float = 30.0,
        search_time_limit: float = SEARCH_TIME_LIMIT_S,
    ) -> None:
        self.url = url
        self.language = analysis.normal_language(language)
        self.config = self.language
        self.write_timeout = write_timeout
        self.search_time_limit = search_time_limit
        self._engine: Engine = sa.create_engine(
            database_url(url), pool_size=POOL_SIZE, max_overflow=POOL_SIZE, pool_pre_ping=True,
            connect_args={"connect_timeout": 5},
        )
        self._lexeme_cache: dict[str, Lexemes] = {}
        self._lexeme_lock = threading.Lock()
        self._needs_rebuild: bool | None = None
        self._languages: tuple[float, tuple[str, ...]] | None = None
        self._closed = False

    @property
    def safe_url(self) -> str:
        """The database URL without its password, for messages."""
        return self._engine.url.render_as_string(hide_password=True)

    def is_installed(self) -> bool | None:
        """Whether the database holds the search tables; None when it cannot be asked."""
        try:
            with self._engine.connect() as connection:
                return connection.execute(sa.text("SELECT to_regclass('search_document') IS NOT NULL")).scalar()
        except sa.exc.SQLAlchemyError:
            log.warning("could not ask PostgreSQL whether the search tables exist", exc_info=True)
            return None

    @property
    def needs_rebuild(self) -> bool:
        """True when some document was indexed by PostgreSQL's own stemming (an older version:
        its ``language`` names a configuration) rather than by ``analysis``.

        Asked once (lazily, so constructing the engine does no I/O); False if the database
        cannot be asked, which is logged.
        """
        if self._needs_rebuild is None:
            try:
                with self._engine.connect() as connection:
                    found = connection.execute(
                        sa.text(
                            "SELECT EXISTS (SELECT 1 FROM search_document WHERE language LIKE 'codedraft%'"
                            " OR (language LIKE '*%' AND language <> :defaulted))"
                        ),
                        {"defaulted": f"*{self.language}"},
                    ).scalar()
                self._needs_rebuild = bool(found)
            except sa.exc.SQLAlchemyError:
                log.exception("could not check the PostgreSQL search index")
                return False
        return self._needs_rebuild

    # --- writing ---------------------------------------------------------------------------

    def _writing(self) -> Any:
        """A transaction whose lock waits end after ``write_timeout`` (as SearchIndexBusy)."""
        self._ensure_open()
        return _WriteTransaction(self._engine, self.write_timeout)

    def index(self, docs: Iterable[SearchDocument]) -> int:
        # Last version wins when a batch names the same document twice; sorted so concurrent
        # writers lock rows in the same order.
        prepared = {row["doc_id"]: row for row in (document_row(d, self.config) for d in docs)}
        if not prepared:
            return 0
        rows = [prepared[doc_id] for doc_id in sorted(prepared)]
        with self._writing() as connection:
            for start in range(0, len(rows), WRITE_BATCH):
                connection.execute(_UPSERT, rows[start : start + WRITE_BATCH])
            connection.execute(_ADD_WORDS, {"ids": sorted(prepared)})
        self._languages = None  # a new language may have come in
        return len(rows)

    def delete(self, doc_ids: Iterable[str]) -> None:
        wanted = sorted({d for d in doc_ids if isinstance(d, str) and d})
        if not wanted:
            return
        with self._writing() as connection:
            connection.execute(
                sa.text("DELETE FROM search_document WHERE doc_id = ANY(CAST(:ids AS text[]))"), {"ids": wanted}
            )

    def rebuild(self, docs: Iterable[SearchDocument], progress: ProgressCallback | None = None) -> int:
        total = len(docs) if isinstance(docs, Sized) else None
        done = 0
        if progress:
            progress(0, total)
        with self._writing() as connection:
            # Writers wait (then get SearchIndexBusy); readers keep the old rows until commit.
            connection.execute(sa.text("LOCK TABLE search_document, search_word IN SHARE ROW EXCLUSIVE MODE"))
            connection.execute(sa.text("DELETE FROM search_document"))
            connection.execute(sa.text("DELETE FROM search_word"))
            batch: dict[str, dict[str, Any]] = {}
            for doc in docs:
                row = document_row(doc, self.config)
                batch[row["doc_id"]] = row
                done += 1
                if len(batch) >= WRITE_BATCH:
                    connection.execute(_UPSERT, list(batch.values()))
                    batch = {}
                if progress and done % PROGRESS_EVERY == 0:
                    progress(done, total)
            if batch:
                connection.execute(_UPSERT, list(batch.values()))
            connection.execute(_ALL_WORDS)
            # Fresh statistics for the planner (it saw the old rows) and for scaling samples.
            connection.execute(sa.text("ANALYZE search_document"))
            _flush_pending_words(connection)
        self._needs_rebuild = False
        self._languages = None
        if progress:
            progress(done, total)
        return done

    # --- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._read_scalar("SELECT count(*) FROM search_document"))

    def doc_ids(self) -> set[str]:
        self._ensure_open()
        with self._engine.connect() as connection:
            return set(connection.execute(sa.text("SELECT doc_id FROM search_document")).scalars())

    def fingerprints(self) -> dict[str, str]:
        self._ensure_open()
        with self._engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT doc_id, fingerprint FROM search_document"))
            return {doc_id: fingerprint for doc_id, fingerprint in rows}

    def close(self) -> None:
        self._closed = True
        self._engine.dispose()

    def _read_scalar(self, sql: str) -> Any:
        self._ensure_open()
        with self._engine.connect() as connection:
            return connection.execute(sa.text(sql)).scalar()

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("search engine is closed")

    # --- searching -------------------------------------------------------------------------

    def _run(self, prepared: PreparedQuery, page: int, per_page: int) -> SearchResults:
        query, allowed, messages, filters = prepared.query, prepared.allowed, prepared.messages, prepared.filters
        parsed = parse_user_query(prepared.text, messages)
        browsing = has_any_filter(filters)
        if parsed is None and not browsing:
            messages.append(MESSAGE_EMPTY)
            return empty_results(page, per_page, join_messages(messages))
        self._ensure_open()
        with self._engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with connection.begin():
                connection.execute(
                    sa.text("SELECT set_config('statement_timeout', :ms, true)"),
                    {"ms": str(max(1, int(self.search_time_limit * 1000)))},
                )
                try:
                    languages = self._query_languages(connection, query)
                    resolved = self._resolve(
                        connection, parsed, messages, {"patterns": MAX_EXPANDING_PATTERNS}, languages
                    )
                    if resolved is None and not browsing:  # only words PostgreSQL makes nothing of
                        messages.append(MESSAGE_EMPTY)
                        return empty_results(page, per_page, join_messages(messages))
                    compiled = self._compile(resolved if resolved is not None else Every(), allowed, filters)
                    compiled.languages = tuple(languages)
                    return self._answer(connection, compiled, query.group_by_clause, page, per_page, messages)
                except sa.exc.OperationalError as error:
                    if not isinstance(error.orig, psycopg.errors.QueryCanceled):
                        raise
                    messages.append(MESSAGE_TIME_LIMIT)
                    return empty_results(page, per_page, join_messages(messages))

    # -- resolving leaves against the index: lexemes and expansions

    def _query_languages(self, connection: Connection, query: SearchQuery) -> list[str]:
        """The languages a query is analysed in: those it names, else every language the
        index holds (asked at most every LANGUAGES_TTL_S), else the engine's default."""
        named = getattr(query, "languages", ()) or ()
        if isinstance(named, str):
            named = (named,)
        wanted = list(dict.fromkeys(analysis.normal_language(code) for code in named))
        if wanted:
            return wanted
        cached = self._languages
        now = time.monotonic()
        if cached is None or now - cached[0] > LANGUAGES_TTL_S:
            held = [code for code in connection.execute(_HELD_LANGUAGES).scalars() if not code.startswith("codedraft")]
            codes = {str(code).lstrip("*") for code in held}
            cached = (now, tuple(sorted(codes)) or (self.language,))
            self._languages = cached
        return list(cached[1])

    def _lexemes(self, connection: Connection, words: Iterable[str]) -> dict[str, Lexemes]:
        """Stems and folded forms of ``words`` as PostgreSQL makes them, cached per engine."""
        wanted = set(words)
        with self._lexeme_lock:
            found = {w: self._lexeme_cache[w] for w in wanted if w in self._lexeme_cache}
        missing = sorted(wanted - set(found))
        if missing:
            # Words come from WORD_PATTERN, which never matches NUL: each comes back as sent.
            rows = connection.execute(_LEXEMES, {"words": missing})
            fresh = {word: Lexemes(tuple(plain)) for word, plain in rows}
            with self._lexeme_lock:
                if len(self._lexeme_cache) + len(fresh) > LEXEME_CACHE_SIZE:
                    self._lexeme_cache.clear()
                self._lexeme_cache.update(fresh)
            found.update(fresh)
        return found

    def _resolve(
        self, connection: Connection, node: Node | None, messages: list[str], budget: dict[str, int],
        languages: list[str],
    ) -> Node | None:
        """Turn words, patterns and fuzzy words into ``Match`` leaves, expanding against the index."""
        if node is None:
            return None
        words = {w for leaf in _leaves(node) if isinstance(leaf, Text) for w in leaf.words}
        words |= {leaf.word for leaf in _leaves(node) if isinstance(leaf, Fuzzy)}
        words |= {w for leaf in _leaves(node) if isinstance(leaf, Pattern) for w in query_words(leaf.pattern)}
        lexemes = self._lexemes(connection, words)

        def resolve(part: Node) -> Node | None:
            if isinstance(part, Text):
                return _text_match(part, lexemes, languages)
            if isinstance(part, Pattern | Fuzzy):
                if budget["patterns"] <= 0:
                    messages.append(MESSAGE_TOO_MANY_PATTERNS.format(limit=MAX_EXPANDING_PATTERNS))
                    source = part.pattern if isinstance(part, Pattern) else part.word
                    return _text_match(Text(tuple(query_words(source)), part.field), lexemes, languages)
                budget["patterns"] -= 1
                if isinstance(part, Pattern):
                    return self._pattern_match(connection, part, lexemes, messages)
                return self._fuzzy_match(connection, part, lexemes, messages, languages)
            if isinstance(part, And):
                return _all_of(resolve(c) for c in part.children)
            if isinstance(part, Or):
                return _any_of(resolve(c) for c in part.children)
            if isinstance(part, Not):
                return _negated(resolve(part.child))
            return part

        return resolve(node)

    def _pattern_match(
        self, connection: Connection, part: Pattern, lexemes: Mapping[str, Lexemes], messages: list[str]
    ) -> Node | None:
        """``prefix*`` natively (':*') when it expands to at most MAX_WILDCARD_EXPANSIONS words,
        else (and for other wildcards) the first expansions in alphabetical order."""
        weights = _field_weights(part.field)
        is_prefix = part.pattern.endswith("*") and not _WILDCARD_CHARS.search(part.pattern[:-1])
        like = "".join(_like_part(piece, lexemes) for piece in re.split(r"([*?])", part.pattern))
        expansions = connection.execute(
            _EXPAND, {"pattern": like, "limit": MAX_WILDCARD_EXPANSIONS + 1}
        ).scalars().all()
        folded_prefix = like[:-1].replace("\\", "") if is_prefix else ""
        if is_prefix and len(expansions) <= MAX_WILDCARD_EXPANSIONS and folded_prefix:
            return Match("unstemmed", _phrase([folded_prefix], weights, prefix_last=True),
                         prefixes=frozenset({folded_prefix}) if part.field is None else frozenset())
        if len(expansions) > MAX_WILDCARD_EXPANSIONS:
            messages.append(MESSAGE_TOO_MANY_EXPANSIONS.format(pattern=part.pattern, limit=MAX_WILDCARD_EXPANSIONS))
        return _any_word(expansions[:MAX_WILDCARD_EXPANSIONS], weights, part.field)

    def _fuzzy_match(
        self, connection: Connection, part: Fuzzy, lexemes: Mapping[str, Lexemes], messages: list[str],
        languages: list[str],
    ) -> Node | None:
        """Words of the index within ``distance`` edits that share the first letter."""
        plain = lexemes[part.word].unstemmed
        if len(plain) != 1:
            return _text_match(Text((part.word,), part.field), lexemes, languages)
        word = plain[0]
        expansions = connection.execute(
            _EXPAND_FUZZY,
            {"first": _like_escaped(word[0]) + "%", "word": word, "distance": part.distance,
             "shortest": len(word) - part.distance, "longest": len(word) + part.distance,
             "limit": MAX_WILDCARD_EXPANSIONS + 1},
        ).scalars().all()
        if len(expansions) > MAX_WILDCARD_EXPANSIONS:
            messages.append(MESSAGE_TOO_MANY_EXPANSIONS.format(pattern=f"{part.word}~", limit=MAX_WILDCARD_EXPANSIONS))
        return _any_word(expansions[:MAX_WILDCARD_EXPANSIONS], _field_weights(part.field), part.field)

    # -- SQL

    def _compile(self, node: Node, allowed: frozenset[str], filters: SearchFilters) -> Compiled:
        compiled = Compiled("", {}, [], [], set(), set(), set())
        compiled.visible = f"visibility && CAST({compiled.bind(sorted(_pg_text(t) for t in allowed))} AS text[])"
        conditions = _filter_conditions(filters, compiled)
        conditions.append(_condition(node, compiled, positive=True))
        compiled.matching = " AND ".join(conditions)
        compiled.condition = f"{compiled.visible} AND {compiled.matching}"
        return compiled

    def _answer(
        self, connection: Connection, compiled: Compiled, grouped: bool, page: int, per_page: int,
        messages: list[str],
    ) -> SearchResults:
        limit = MAX_GROUPED_HITS if grouped else page * per_page
        # A sample first: a query it shows to be far past EXACT_LIMIT is estimated from it alone.
        # Otherwise one pass that stops after EXACT_LIMIT + 1 matches gives the exact total and
        # facets, or (past the limit) a floor under the estimate.
        sample = self._sample(connection, compiled)
        first: Sequence[Any] = ()
        if sample.matches <= 2 * EXACT_LIMIT:
            first = connection.execute(sa.text(
                f"SELECT {FACET_COLUMNS}, doc_id FROM search_document WHERE {compiled.condition}"
                f" LIMIT {EXACT_LIMIT + 1}"), compiled.params).all()
        estimated = not first or len(first) > EXACT_LIMIT
        if estimated:
            total, facets, since = self._estimate(sample, first, limit)
            rows = self._top(connection, compiled, limit, since=since) if total else []
        else:
            total, facets = len(first), facet_counts(_tally(first), analysis.fold_key)
            # Every match is known: rank just those rows, found by key. Running the condition
            # again rechecked each candidate ("the activities": 6,179 rows read for 580).
            rows = self._top(connection, compiled, limit, among=[row.doc_id for row in first]) if total else []
        if not grouped:
            rows = rows[(page - 1) * per_page : page * per_page]
        marker = self._marker(connection, compiled, [row.body for row in rows])
        hits = [_hit(row, marker) for row in rows]
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

    def _sample(self, connection: Connection, compiled: Compiled) -> _Sample:
        """The matches among a repeatable sample of FIRST_SAMPLE_PERCENT of the table's pages
        (or more, to hold MIN_SAMPLE_ROWS rows): the condition runs on each sampled row, and no
        row outside the sample is read."""
        documents = self._document_count(connection)
        # A small table is sampled whole: a few of its pages would say little.
        percent = min(100.0, max(FIRST_SAMPLE_PERCENT, 100.0 * MIN_SAMPLE_ROWS / max(documents, 1)))
        rows = connection.execute(sa.text(
            f"SELECT {FACET_COLUMNS}, kind_key, created, {compiled.condition} AS hit FROM search_document"
            f" TABLESAMPLE SYSTEM ({percent:.4f}) REPEATABLE (17)"), compiled.params).all()
        factor = 1.0 if percent >= 100.0 else documents / len(rows) if rows else 0.0
        hits = [row for row in rows if row[_SAMPLE_HIT]]
        return _Sample(hits, factor, round(len(hits) * factor))

    def _estimate(
        self, sample: _Sample, first: Sequence[Any], limit: int
    ) -> tuple[int, dict[str, dict[str, int]], Any]:
        """Total and facets of a query past EXACT_LIMIT, scaled from ``sample``, and the
        ``created`` from which about RANK_WINDOW of the newest matching comments are ranked
        (None: rank every one).

        The total is at least the matches already read (``first``); a facet value counts at
        least as often as among those, so no value seen there is left out of the facets."""
        scaled = {name: {key: round(count * sample.factor) for key, count in counts.items()}
                  for name, counts in _tally(sample.hits).items()}
        seen = _tally(first)
        raw = {name: {key: max(scaled[name].get(key, 0), seen[name].get(key, 0))
                      for key in scaled[name].keys() | seen[name].keys()} for name in FACET_FIELDS}
        total = max(len(first), sample.matches)
        # The newest sampled matching comments stand for the newest matching comments at large:
        # the window is the sampled share of it, counted back from the newest.
        reach = max(1, round(max(RANK_WINDOW, limit * 4) / sample.factor)) if sample.factor else 0
        kind, created = _SAMPLE_KIND, _SAMPLE_CREATED
        newest = heapq.nlargest(reach, (row[created] for row in sample.hits
                                        if row[kind] == "comment" and row[created] is not None))
        since = newest[-1] if reach and len(newest) >= reach else None
        return total, facet_counts(raw, analysis.fold_key), since

    def _document_count(self, connection: Connection) -> int:
        """Documents in the table, from PostgreSQL's statistics when it has them (exact enough
        to scale a sample; count(*) would read the table)."""
        estimate = connection.execute(sa.text(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'search_document'::regclass")).scalar()
        if estimate is None or estimate <= 0:
            estimate = connection.execute(sa.text("SELECT count(*) FROM search_document")).scalar()
        return int(estimate or 0)

    def _top(
        self, connection: Connection, compiled: Compiled, limit: int, since: Any = None,
        among: Sequence[str] | None = None,
    ) -> list[Any]:
        """The best ``limit`` matches by rank; ``among`` (doc ids) when every match is known
        already. With ``since`` only the matching clauses and the
        matching comments created since then are ranked: the two are found through the btree
        on (kind_key, created), so the rows read stay about RANK_WINDOW however common the
        words (PostgreSQL may still AND in the words' GIN index when that is cheaper)."""
        rank = _rank_sql(compiled)
        condition = compiled.condition
        if among is not None:
            condition = f"doc_id = ANY(CAST({compiled.bind(list(among))} AS text[]))"
        if since is not None:
            # The window comes from the btree on (kind_key, created) and visibility is checked
            # on its rows: as an index condition PostgreSQL read the whole visibility posting list
            # from the words' GIN index (101,284 rows, 16-55 ms for "inte*", "measur*") only to
            # AND it with a window of a few thousand rows. "IS TRUE" is the same test for a
            # non-null array, but no index can answer it.
            condition = (f"({compiled.visible}) IS TRUE AND {compiled.matching} AND (kind_key = 'clause'"
                         f" OR (kind_key = 'comment' AND created >= {compiled.bind(since)}))")
        sql = (f"SELECT doc_id, kind, body, {', '.join(HIT_COLUMNS)}, {rank} AS score FROM search_document"
               f" WHERE {condition} ORDER BY score DESC, seq LIMIT {compiled.bind(limit)}")
        return list(connection.execute(sa.text(sql), compiled.params))

    def _marker(self, connection: Connection, compiled: Compiled, bodies: Sequence[str]) -> _Marker:
        wanted = compiled.stems or compiled.words or compiled.prefixes
        words = {w for body in bodies for w in query_words(body)} if wanted and bodies else set()
        return _Marker(self._lexemes(connection, words), compiled)


def _flush_pending_words(connection: Connection) -> None:
    """Move the rows a rebuild left in the GIN indexes' pending lists into the indexes proper.

    GIN's fast update queues new rows in a pending list of up to 4 MB that every scan of the
    index reads whole: after a rebuild of 100,000 comments the unstemmed index had 454 pending
    pages, half of a prefix's 4 ms index scan, and the planner, costing that list, chose the
    window's btree over the words' index. Done in a savepoint: without the right to do it (it
    needs the index's owner) the rebuild still commits, and autovacuum empties the lists later."""
    for index in GIN_INDEXES:
        try:
            with connection.begin_nested():
                connection.execute(sa.text("SELECT gin_clean_pending_list(CAST(:index AS regclass))"), {"index": index})
        except sa.exc.DBAPIError:
            log.warning("could not flush the pending list of %s; autovacuum will", index, exc_info=True)


class _WriteTransaction:
    """``with`` block: a connection in a transaction with ``lock_timeout`` set; a lock wait
    past it becomes SearchIndexBusy."""

    def __init__(self, engine: Engine, timeout: float) -> None:
        self._engine = engine
        self._timeout_ms = str(max(1, int(timeout * 1000)))
        self._connection: Connection | None = None
        self._transaction: Any = None

    def __enter__(self) -> Connection:
        self._connection = self._engine.connect()
        self._transaction = self._connection.begin()
        self._connection.execute(sa.text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": self._timeout_ms})
        return self._connection

    def __exit__(self, kind: Any, error: BaseException | None, _traceback: Any) -> None:
        assert self._connection is not None
        try:
            if error is None:
                self._transaction.commit()
            else:
                self._transaction.rollback()
        finally:
            self._connection.close()
        if isinstance(error, sa.exc.OperationalError) and isinstance(error.orig, psycopg.errors.LockNotAvailable):
            raise SearchIndexBusy("the PostgreSQL search index is busy (lock wait timed out)") from error


# --- leaves to tsqueries ---------------------------------------------------------------------


def _leaves(node: Node) -> Iterator[Node]:
    if isinstance(node, And | Or):
        for child in node.children:
            yield from _leaves(child)
    elif isinstance(node, Not):
        yield from _leaves(node.child)
    else:
        yield node


def _field_weights(field: str | None) -> tuple[str, ...]:
    return (TEXT_FIELD_WEIGHT[field],) if field else DEFAULT_WEIGHTS


def _text_match(part: Text, lexemes: Mapping[str, Lexemes], languages: list[str]) -> Match | None:
    """Default fields: the words' terms in the stemmed column, in any of ``languages``; a named
    field: folded words in its weight."""
    if part.field is None:
        sets = analysis.query_term_sets(list(part.words), languages)
        if not sets:
            return None
        phrases = [_phrase(terms, DEFAULT_WEIGHTS if len(terms) > 1 else ("",)) for terms in sets]
        tsquery = phrases[0] if len(phrases) == 1 else " | ".join(f"({p})" for p in phrases)
        return Match("stemmed", tsquery, stems=frozenset(t for terms in sets for t in terms))
    plain = [p for w in part.words for p in lexemes[w].unstemmed]
    return Match("unstemmed", _phrase(plain, _field_weights(part.field))) if plain else None


def _any_word(words: Sequence[str], weights: Sequence[str], field: str | None) -> Match | Nothing:
    if not words:
        return Nothing()
    tsquery = " | ".join(_phrase([w], weights) for w in words)
    return Match("unstemmed", tsquery, words=frozenset(words) if field is None else frozenset())


def _like_part(piece: str, lexemes: Mapping[str, Lexemes]) -> str:
    """One piece of a wildcard pattern as LIKE text: * and ? become % and _, words are folded."""
    if piece == "*":
        return "%"
    if piece == "?":
        return "_"
    return "".join(_like_escaped("".join(lexemes[w].unstemmed)) for w in query_words(piece))


def _condition(node: Node, compiled: Compiled, *, positive: bool) -> str:
    """SQL for ``node``; positive leaves also feed the rank and the highlighting."""
    if isinstance(node, And | Or):
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(_condition(c, compiled, positive=positive) for c in node.children) + ")"
    if isinstance(node, Not):
        return f"NOT {_condition(node.child, compiled, positive=not positive)}"
    if isinstance(node, Match):
        if positive:
            (compiled.rank_stemmed if node.column == "stemmed" else compiled.rank_unstemmed).append(node.tsquery)
            compiled.stems |= node.stems
            compiled.words |= node.words
            compiled.prefixes |= node.prefixes
        return f"{node.column} @@ CAST({compiled.bind(node.tsquery)} AS tsquery)"
    if isinstance(node, Key):
        return f"{node.column} = {compiled.bind(_pg_text(node.value))}"
    if isinstance(node, Every):
        return "TRUE"
    return "FALSE"  # Nothing (a leaf left unresolved cannot reach here)


def _filter_conditions(filters: SearchFilters, compiled: Compiled) -> list[str]:
    """One condition per filled filter field: any of its values (folded like the index)."""
    conditions = []
    for name, column in FILTER_COLUMNS:
        values = filter_values(getattr(filters, name))
        if values:
            keys = sorted({_pg_text(analysis.fold_key(v)) for v in values})
            conditions.append(f"{column} = ANY(CAST({compiled.bind(keys)} AS text[]))")
    wanted_codes = code_ids(filters.code_id)
    if wanted_codes:
        conditions.append(f"code_id = ANY(CAST({compiled.bind(list(wanted_codes))} AS integer[]))")
    start, end = day_bounds(filters.date_from, filters.date_to)
    if start is not None:
        conditions.append(f"created >= {compiled.bind(start)}")
    if end is not None:
        conditions.append(f"created <= {compiled.bind(end)}")
    return conditions


def _rank_sql(compiled: Compiled) -> str:
    parts = []
    for column, queries in (("stemmed", compiled.rank_stemmed), ("unstemmed", compiled.rank_unstemmed)):
        if queries:
            tsquery = " | ".join(f"({q})" for q in queries)
            parts.append(
                f"ts_rank(CAST('{RANK_WEIGHTS}' AS float4[]), {column}, CAST({compiled.bind(tsquery)} AS tsquery), 1)"
            )
    return " + ".join(parts) if parts else "0.0"


# --- hits and snippets -----------------------------------------------------------------------


class WordMarker:
    """Which words of a body a snippet marks, each distinct word decided once by ``_decide``.

    A page's bodies repeat their words (a page of long clauses holds about 19,000, 90 ms for
    "inte*" asked one by one): ``among`` takes a body's words as a set and decides only those
    not seen before, the rest is set arithmetic in C."""

    def __init__(self) -> None:
        self._marked: set[str] = set()
        self._unmarked: set[str] = set()

    def __call__(self, word: str) -> bool:
        return bool(self.among({word}))

    def among(self, words: set[str]) -> set[str]:
        """The words of ``words`` to mark."""
        for word in words - self._marked - self._unmarked:
            (self._marked if self._decide(word) else self._unmarked).add(word)
        return words & self._marked

    def _decide(self, word: str) -> bool:
        raise NotImplementedError


class _Marker(WordMarker):
    """Decides which words of a body to mark: same stem as a query word, or one of the
    words a pattern expanded to, or starting with a prefix typed."""

    def __init__(self, lexemes: Mapping[str, Lexemes], compiled: Compiled) -> None:
        super().__init__()
        self._lexemes = lexemes
        self._stems = compiled.stems
        self._languages = compiled.languages
        self._words = compiled.words
        self._prefixes = tuple(compiled.prefixes)

    def _decide(self, word: str) -> bool:
        found = self._lexemes.get(unicodedata.normalize("NFC", word))
        if found is None:
            return False
        if self._stems and any(analysis.index_term(word, code) in self._stems for code in self._languages):
            return True
        if self._words.intersection(found.unstemmed):
            return True
        return any(plain.startswith(self._prefixes) for plain in found.unstemmed) if self._prefixes else False


def snippet(body: str, marked: WordMarker) -> str:
    """Escaped fragments of ``body`` around the words ``marked`` accepts, matched words in
    ``<mark>``; or the escaped opening when nothing is marked."""
    # Each distinct word asked once, then only those found again (by one regex, in C): a page
    # of long clauses holds about 19,000 words, and a Python step per word was most of a
    # search's time outside the database.
    wanted = marked.among(set(analysis.WORD_PATTERN.findall(body)))
    spans = [m.span() for m in _whole_words(wanted).finditer(body)] if wanted else []
    if not spans:
        opening = body[:SNIPPET_CHARS]
        return html.escape(opening, quote=True) + ("…" if len(body) > SNIPPET_CHARS else "")
    fragments = _fragments(body, spans)
    best = sorted(sorted(fragments, key=lambda f: -len(f[2]))[:SNIPPET_FRAGMENTS], key=lambda f: f[0])
    return " … ".join(_marked_text(body, start, end, marks) for start, end, marks in best)


def _whole_words(words: set[str]) -> re.Pattern[str]:
    """Matches exactly the ``WORD_PATTERN`` words in ``words`` (longest first, never a part of
    a longer word)."""
    either = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!{_WORD_CHAR})(?:{either})(?!{_WORD_CHAR})")


def _fragments(body: str, spans: list[tuple[int, int]]) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Windows of at most SNIPPET_CHARS around runs of marked words, cut at spaces."""
    fragments = []
    at = 0
    while at < len(spans):
        start = max(0, spans[at][0] - SNIPPET_SURROUND)
        limit = start + SNIPPET_CHARS
        last = at
        while last + 1 < len(spans) and spans[last + 1][1] <= limit:
            last += 1
        end = min(len(body), spans[last][1] + SNIPPET_SURROUND, limit)
        if start > 0:
            space = body.find(" ", start, spans[at][0])
            start = space + 1 if space >= 0 else spans[at][0]
        if end < len(body):
            space = body.rfind(" ", spans[last][1], end)
            end = space if space >= 0 else spans[last][1]
        fragments.append((start, end, spans[at : last + 1]))
        at = last + 1
    return fragments


def _marked_text(body: str, start: int, end: int, marks: list[tuple[int, int]]) -> str:
    pieces = []
    at = start
    for mark_start, mark_end in marks:
        pieces.append(html.escape(body[at:mark_start], quote=True))
        pieces.append(f"<mark>{html.escape(body[mark_start:mark_end], quote=True)}</mark>")
        at = mark_end
    pieces.append(html.escape(body[at:end], quote=True))
    return "".join(pieces)


def _tally(rows: Sequence[Any]) -> dict[str, dict[str, int]]:
    """Facet name -> {value: rows}, from rows whose first columns are ``FACET_COLUMNS``.

    Column by column through Counter: reading the rows one by one and field by field took
    34 ms for the 2,400 sampled matches of "the"."""
    raw: dict[str, dict[str, int]] = {name: {} for name in FACET_FIELDS}
    for name, values in zip(FACET_FIELDS, zip(*rows, strict=False), strict=False):
        counts = raw[name]
        for value, count in Counter(values).items():
            key = str(value or "").strip()
            counts[key] = counts.get(key, 0) + count
    return raw


def _hit(row: Any, marker: _Marker) -> SearchHit:
    fields: dict[str, object] = {name: getattr(row, name) for name in HIT_COLUMNS}
    fields["code_id"] = int(row.code_id)
    return SearchHit(doc_id=row.doc_id, kind=row.kind, fields=fields, score=float(row.score),
                     snippet=snippet(row.body, marker))


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


__all__ = ["PostgresSearchEngine", "QueryParser", "WordMarker", "parse_user_query", "stemming_config", "snippet"]
