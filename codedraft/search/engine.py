"""The one search interface of CodeDraft, its shared types, and validation of user queries.

The app talks to ``SearchEngine`` only; which backend sits behind it (Whoosh embedded, or
PostgreSQL full-text search when scaled out) is configuration. Documents are plain
dataclasses built by the app after a database commit; nothing here imports Flask or
SQLAlchemy.

Access rules travel with the data: every document carries visibility tokens ("code:3",
"code:3:comments-public", "user:17") and every query carries the searcher's allowed tokens.
A document is visible when the two sets intersect; backends must apply this as a filter so
hits, totals, facet counts, snippets and highlights all respect it.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from codedraft.numbers import stored_integer

log = logging.getLogger(__name__)

DocumentKind = Literal["clause", "comment"]
DOCUMENT_KINDS: frozenset[str] = frozenset({"clause", "comment"})
LIVE_DRAFT = "live"

MAX_QUERY_CHARS = 500
MAX_PER_PAGE = 100
MAX_PAGE = 200
DEFAULT_PER_PAGE = 20
MAX_VISIBILITY_TOKENS = 1000

# Facets every backend reports, in display order.
FACET_FIELDS: tuple[str, ...] = ("kind", "draft", "category", "status", "chapter")

# Field names a user may type in the search box ("chapter:security"). Another name before a
# colon ("tile:foo", "title:") is dropped with MESSAGE_UNKNOWN_FIELD naming these, and its
# value searched as words; a field with nothing after the colon gets MESSAGE_EMPTY_FIELD.
USER_QUERY_FIELDS: tuple[str, ...] = (
    "chapter",
    "clause",
    "draft",
    "kind",
    "category",
    "status",
    "author",
)

def N_(message: str) -> str:
    """Marks a message for the translation catalogue; the app translates it when shown
    (``codedraft.search.views.translated``), since this module imports no Flask."""
    return message


MESSAGE_TRUNCATED = N_("Your query was too long; only its first {limit} characters were searched.")
MESSAGE_UNPARSABLE = N_("Your query could not be parsed; searched for the words literally.")
MESSAGE_EMPTY = N_("Type one or more words to search.")
MESSAGE_SHORT_WILDCARD = N_(
    "Wildcards need at least {min_chars} letters before * or ?; searched for “{word}” literally."
)
MESSAGE_BARE_WILDCARD = N_("A wildcard on its own matches everything, so it was ignored.")
MESSAGE_TOO_MANY_EXPANSIONS = N_(
    "“{pattern}” matches too many words; only the first {limit} were searched. Type more letters."
)
MESSAGE_TOO_MANY_PATTERNS = N_(
    "Only the first {limit} wildcard or fuzzy words were expanded; the rest were searched literally."
)
MESSAGE_TIME_LIMIT = N_("The search took too long; the results shown may be incomplete.")
MESSAGE_UNAVAILABLE = N_("Search is temporarily unavailable; please try again.")
MESSAGE_NO_ACCESS = N_("There is nothing you are allowed to search.")
MESSAGE_UNKNOWN_FIELD = N_(
    "“{field}:” is not a field you can search, so it was left out. The fields are: {fields}."
)
MESSAGE_EMPTY_FIELD = N_(
    "“{field}:” needs a value right after the colon (for example {field}:{example}); it was left out."
)
# Every message an engine may give, for the app to translate (``{name}`` parts are filled in).
ENGINE_MESSAGES: tuple[str, ...] = (
    MESSAGE_TRUNCATED, MESSAGE_UNPARSABLE, MESSAGE_EMPTY, MESSAGE_SHORT_WILDCARD, MESSAGE_BARE_WILDCARD,
    MESSAGE_TOO_MANY_EXPANSIONS, MESSAGE_TOO_MANY_PATTERNS, MESSAGE_TIME_LIMIT, MESSAGE_UNAVAILABLE,
    MESSAGE_NO_ACCESS, MESSAGE_UNKNOWN_FIELD, MESSAGE_EMPTY_FIELD,
)
# An example value per field, for MESSAGE_EMPTY_FIELD.
FIELD_EXAMPLES: dict[str, str] = {
    "chapter": "security", "clause": "1.2", "draft": "2", "kind": "comment", "category": "academia",
    "status": "accepted", "author": "kowalska",
}
# A name before a colon: starts with a letter; not part of a word, a "field:field:" chain or
# a URL ("https://").
_FIELD_LIKE = re.compile(r"(?<![\w:/.])(?P<name>[^\W\d_][\w-]*):(?!//)")


class SearchError(Exception):
    """Base class for errors a search backend reports to the app (never for user queries)."""


class SearchIndexBusy(SearchError):
    """Another writer held the index longer than the bounded wait; the app should retry later
    or schedule a rebuild. Raised instead of the backend's own lock error."""


@dataclasses.dataclass(frozen=True, slots=True)
class SearchDocument:
    """One searchable thing: a clause as it reads in one draft (or live), or one comment.

    ``doc_id`` is unique across the index ("clause:<uid>:live", "clause:<uid>:draft:3",
    "comment:<id>"). ``visibility`` lists the access tokens that may see it; an empty list
    means nobody can find it.
    """

    doc_id: str
    kind: DocumentKind
    code_id: int
    body: str
    visibility: Sequence[str]
    code_title: str = ""
    chapter: str = ""
    clause_uid: str = ""
    clause_number: str = ""
    clause_title: str = ""
    draft: str = LIVE_DRAFT
    draft_label: str = ""
    category: str = ""
    status: str = ""
    author: str = ""
    created: dt.datetime | None = None
    # The code's language (ISO 639-1): the body and title are analysed in it. "" means the
    # engine's default language.
    language: str = ""


FilterValue = str | Sequence[str] | None


@dataclasses.dataclass(frozen=True, slots=True)
class SearchFilters:
    """Exact-value filters chosen from facets; several values in one field mean "any of".

    ``date_from``/``date_to`` are inclusive; a ``date`` covers the whole day; naive datetimes
    are taken as UTC.
    """

    chapter: FilterValue = None
    clause_number: FilterValue = None
    draft: FilterValue = None
    kind: FilterValue = None
    category: FilterValue = None
    status: FilterValue = None
    author: FilterValue = None
    code_id: int | Sequence[int] | None = None
    date_from: dt.date | dt.datetime | None = None
    date_to: dt.date | dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SearchQuery:
    """What the searcher typed, what they may see, and how to page the answer."""

    text: str
    allowed_tokens: Sequence[str]
    filters: SearchFilters = dataclasses.field(default_factory=SearchFilters)
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    group_by_clause: bool = False
    # Languages of the codes searched: the query's words are analysed in each. Empty means
    # every language the index holds.
    languages: Sequence[str] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class SearchHit:
    """One visible document that matched.

    ``fields`` holds the stored document fields except body and visibility (``created`` as
    a naive UTC datetime, ``code_id`` as int). ``snippet`` is HTML: text is escaped and the
    only markup is ``<mark>`` around matched words.
    """

    doc_id: str
    kind: str
    fields: Mapping[str, object]
    score: float
    snippet: str


@dataclasses.dataclass(frozen=True, slots=True)
class ClauseGroup:
    """Hits for one clause across drafts (and its comments), best match first."""

    clause_uid: str
    clause_number: str
    clause_title: str
    best_score: float
    hits: tuple[SearchHit, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class SearchResults:
    """The answer to one ``SearchQuery``: never raised, at worst empty with a ``message``."""

    total: int
    hits: tuple[SearchHit, ...]
    facets: Mapping[str, Mapping[str, int]]
    message: str | None = None
    groups: tuple[ClauseGroup, ...] = ()
    total_groups: int = 0
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    # True when ``total`` and the facet counts are estimated from a sample (a backend may do
    # so past several thousand matches); the page then says "about".
    estimated: bool = False


ProgressCallback = Callable[[int, int | None], None]


@dataclasses.dataclass
class PreparedQuery:
    """A user's query once checked by :meth:`SearchEngine.search`: the query as asked, the access
    tokens it may see, its cleaned text, the messages so far (backends may add) and its filters."""

    query: SearchQuery
    allowed: frozenset[str]
    text: str
    messages: list[str]
    filters: SearchFilters


class SearchEngine(abc.ABC):
    """The interface the app uses; one instance per process, shared by its threads."""

    @abc.abstractmethod
    def index(self, docs: Iterable[SearchDocument]) -> int:
        """Add or replace ``docs`` (matched by ``doc_id``) in one commit; return how many.

        Raises ValueError for a malformed document (a programming error, not user input)
        and ``SearchIndexBusy`` when another writer holds the index past the bounded wait.
        """

    @abc.abstractmethod
    def delete(self, doc_ids: Iterable[str]) -> None:
        """Remove the given documents in one commit; unknown ids are ignored.

        Raises ``SearchIndexBusy`` like ``index``.
        """

    def search(self, query: SearchQuery) -> SearchResults:
        """Run a user's query. Never raises: bad syntax, huge input or a backend fault come
        back as results (possibly empty) with a ``message``. What every backend does first is
        done here once: paging clamped, access tokens checked, the text cleaned and its field
        names checked; the backend runs the :class:`PreparedQuery`."""
        page, per_page = clamp_paging(getattr(query, "page", 1), getattr(query, "per_page", 0))
        try:
            allowed = clean_allowed_tokens(query.allowed_tokens)
            if not allowed:
                return empty_results(page, per_page, MESSAGE_NO_ACCESS)
            cleaned = clean_query_text(query.text)
            fielded = check_fields(cleaned.text)
            filters = query.filters if isinstance(query.filters, SearchFilters) else SearchFilters()
            prepared = PreparedQuery(query, allowed, fielded.text, [*cleaned.messages, *fielded.messages], filters)
            return self._run(prepared, page, per_page)
        except Exception:
            log.exception("search failed for %r", getattr(query, "text", None))
            return empty_results(page, per_page, MESSAGE_UNAVAILABLE)

    @abc.abstractmethod
    def _run(self, prepared: PreparedQuery, page: int, per_page: int) -> SearchResults:
        """The backend's part of :meth:`search`; may raise (reported as "unavailable")."""

    @abc.abstractmethod
    def rebuild(self, docs: Iterable[SearchDocument], progress: ProgressCallback | None = None) -> int:
        """Replace the whole index with ``docs`` atomically (searchers see the old index until
        the new one is committed); return how many were indexed. ``progress(done, total)``
        is called now and then (``total`` is None when ``docs`` has no length)."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of documents currently searchable."""

    @abc.abstractmethod
    def doc_ids(self) -> set[str]:
        """Every ``doc_id`` in the index, to compare with the database."""

    @abc.abstractmethod
    def fingerprints(self) -> dict[str, str]:
        """``doc_id`` -> ``document_fingerprint`` of the version indexed, to find stale ones."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release files and searchers; the instance is unusable afterwards."""


# --- validation: pure functions shared by every backend -------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class CleanQueryText:
    """The user's query text made safe to parse, with messages to show if it was altered."""

    text: str
    messages: tuple[str, ...]


def clean_query_text(raw: object, limit: int = MAX_QUERY_CHARS) -> CleanQueryText:
    """Normalise what a user typed: NFC, control characters turned into spaces, whitespace
    collapsed, cut at ``limit`` characters (at a word boundary when one is near).

    Never raises; anything that is not a string counts as an empty query.
    """
    if not isinstance(raw, str):
        return CleanQueryText("", ())
    messages: list[str] = []
    text = unicodedata.normalize("NFC", raw)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > limit:
        cut = text[:limit]
        space = cut.rfind(" ")
        if space > limit * 0.8:
            cut = cut[:space]
        text = cut
        messages.append(MESSAGE_TRUNCATED.format(limit=limit))
    return CleanQueryText(text, tuple(messages))


def check_fields(text: str) -> CleanQueryText:
    """``text`` without the field prefixes that would search nothing the user meant: unknown
    names ("tile:foo" -> "foo") and known fields with no value ("chapter:" -> ""), each with a
    message. Prefixes inside quotes are text, and left alone. Never raises."""
    messages: list[str] = []
    pieces: list[str] = []
    at = 0
    for match in _FIELD_LIKE.finditer(text):
        if text.count('"', 0, match.start()) % 2:  # inside a quoted phrase
            continue
        name = match.group("name")
        following = text[match.end() : match.end() + 1]
        if name in USER_QUERY_FIELDS:
            if following and not following.isspace() and following != ")":
                continue
            example = FIELD_EXAMPLES.get(name, "word")
            messages.append(MESSAGE_EMPTY_FIELD.format(field=name, example=example))
        else:
            messages.append(MESSAGE_UNKNOWN_FIELD.format(field=name, fields=", ".join(USER_QUERY_FIELDS)))
        pieces.append(text[at : match.start()])
        pieces.append(" ")
        at = match.end()
    if not messages:
        return CleanQueryText(text, ())
    pieces.append(text[at:])
    return CleanQueryText(" ".join("".join(pieces).split()), tuple(dict.fromkeys(messages)))


def clamp_paging(page: object, per_page: object) -> tuple[int, int]:
    """Page numbers from a request, forced into 1..MAX_PAGE and 1..MAX_PER_PAGE."""
    page_number = page if isinstance(page, int) and not isinstance(page, bool) else 1
    size = per_page if isinstance(per_page, int) and not isinstance(per_page, bool) else 0
    page_number = min(max(page_number, 1), MAX_PAGE)
    size = DEFAULT_PER_PAGE if size <= 0 else min(size, MAX_PER_PAGE)
    return page_number, size


def clean_allowed_tokens(tokens: object) -> frozenset[str]:
    """The searcher's access tokens as a set of non-empty strings (at most
    MAX_VISIBILITY_TOKENS); a bare string is one token, anything malformed means none."""
    if isinstance(tokens, str):
        tokens = [tokens]
    if not isinstance(tokens, Iterable):
        return frozenset()
    clean = {t.strip() for t in tokens if isinstance(t, str) and t.strip()}
    if len(clean) > MAX_VISIBILITY_TOKENS:
        clean = set(sorted(clean)[:MAX_VISIBILITY_TOKENS])
    return frozenset(clean)


def filter_values(value: FilterValue) -> tuple[str, ...]:
    """A filter field's values as a tuple of non-empty strings ("" and None mean no filter)."""
    if value is None:
        return ()
    if isinstance(value, str):
        values: Iterable[object] = (value,)
    else:
        values = value
    return tuple(v.strip() for v in values if isinstance(v, str) and v.strip())


def day_bounds(
    date_from: dt.date | dt.datetime | None, date_to: dt.date | dt.datetime | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Inclusive naive-UTC bounds for a date filter: a ``date`` covers its whole day; anything
    that is not a date or datetime sets no bound."""
    start = _as_utc_naive(date_from, end_of_day=False)
    end = _as_utc_naive(date_to, end_of_day=True)
    return start, end


def _as_utc_naive(value: dt.date | dt.datetime | None, *, end_of_day: bool) -> dt.datetime | None:
    if not isinstance(value, dt.date):  # None, or not a date at all (a string from a caller): no bound
        return None
    if isinstance(value, dt.datetime):
        return to_utc_naive(value)
    moment = dt.time.max if end_of_day else dt.time.min
    return dt.datetime.combine(value, moment)


def to_utc_naive(moment: dt.datetime) -> dt.datetime:
    """Aware datetimes converted to UTC and made naive; naive ones are taken as UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def validate_document(doc: SearchDocument) -> None:
    """Check a document before it is written.

    Raises ValueError (with the doc_id) when doc_id is empty, kind is unknown, code_id is
    not an int, body is not text, or visibility is not a list of strings.
    """
    if not isinstance(doc, SearchDocument):
        raise ValueError(f"not a SearchDocument: {type(doc).__name__}")
    if not isinstance(doc.doc_id, str) or not doc.doc_id.strip():
        raise ValueError("document without doc_id")
    if doc.kind not in DOCUMENT_KINDS:
        raise ValueError(f"{doc.doc_id}: unknown kind {doc.kind!r}")
    if not isinstance(doc.code_id, int) or isinstance(doc.code_id, bool):
        raise ValueError(f"{doc.doc_id}: code_id must be an int")
    if not isinstance(doc.body, str):
        raise ValueError(f"{doc.doc_id}: body must be text")
    if isinstance(doc.visibility, str) or not all(isinstance(t, str) for t in doc.visibility):
        raise ValueError(f"{doc.doc_id}: visibility must be a list of token strings")
    if doc.created is not None and not isinstance(doc.created, dt.datetime):
        raise ValueError(f"{doc.doc_id}: created must be a datetime")
    if not isinstance(doc.language, str):
        raise ValueError(f"{doc.doc_id}: language must be text")


def document_fingerprint(doc: SearchDocument) -> str:
    """A short digest of everything in ``doc`` that the index holds: two documents with the
    same fingerprint are indexed identically, so comparing fingerprints finds stale entries."""
    canonical = [
        doc.doc_id, doc.kind, doc.code_id, doc.body, sorted(t.strip() for t in doc.visibility),
        doc.code_title, doc.chapter, doc.clause_uid, doc.clause_number, doc.clause_title, doc.draft,
        doc.draft_label, doc.category, doc.status, doc.author,
        to_utc_naive(doc.created).isoformat() if doc.created else None, doc.language,
    ]
    encoded = json.dumps(canonical, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.blake2b(encoded, digest_size=12).hexdigest()


def join_messages(messages: Iterable[str]) -> str | None:
    """Messages for the user, de-duplicated in order, as one sentence string (or None)."""
    unique = list(dict.fromkeys(m for m in messages if m))
    return " ".join(unique) if unique else None


# --- helpers every backend shares: query syntax checks, filters, grouping, facets ----------------

BINARY_OPERATORS: frozenset[str] = frozenset({"AND", "OR", "ANDNOT", "ANDMAYBE"})
_QUOTED = re.compile(r'"[^"]*"')


def has_dangling_operator(text: str) -> bool:
    """True for operators with nothing to join ("AND OR NOT", "x AND", "OR x"): a parser
    would quietly search such words as text, which is not what the user meant."""
    words = _QUOTED.sub(" q ", text).split()
    operators = BINARY_OPERATORS | {"NOT"}
    if not words:
        return False
    if words[0] in BINARY_OPERATORS or words[-1] in operators:
        return True
    return any(a in operators and b in BINARY_OPERATORS for a, b in zip(words, words[1:], strict=False))


def is_balanced(text: str) -> bool:
    """Quotes paired and parentheses nested: otherwise a parser guesses, and guesses oddly."""
    if text.count('"') % 2:
        return False
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def code_ids(value: object) -> tuple[int, ...]:
    """The ``code_id`` filter as a tuple of ints (bools and other junk dropped)."""
    if isinstance(value, bool):
        return ()
    if isinstance(value, int):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, str):
        return tuple(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return ()


def has_any_filter(filters: SearchFilters) -> bool:
    """True when some filter field narrows the search (then an empty query browses)."""
    return any(
        [
            filter_values(filters.chapter),
            filter_values(filters.clause_number),
            filter_values(filters.draft),
            filter_values(filters.kind),
            filter_values(filters.category),
            filter_values(filters.status),
            filter_values(filters.author),
            code_ids(filters.code_id),
            filters.date_from,
            filters.date_to,
        ]
    )


def facet_counts(raw: Mapping[str, Mapping[str, int]], fold: Callable[[str], str]) -> dict[str, dict[str, int]]:
    """Facet name -> {value: count}, empty values dropped, biggest first.

    Spellings that ``fold`` to the same key ("Risk" / "RISK") filter the same documents, so
    they are one facet value, shown in its most frequent spelling.
    """
    facets: dict[str, dict[str, int]] = {}
    for name in FACET_FIELDS:
        counts: Mapping[str, int] = raw.get(name, {})
        merged: dict[str, tuple[str, int, int]] = {}
        for key, value in counts.items():
            if key in (None, "", b""):
                continue
            shown, count = str(key), int(value)
            folded = fold(shown)
            best, best_count, total = merged.get(folded, (shown, 0, 0))
            if count > best_count:
                best, best_count = shown, count
            merged[folded] = (best, best_count, total + count)
        pairs = [(shown, total) for shown, _best, total in merged.values()]
        facets[name] = dict(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))
    return facets


def draft_order(hit: SearchHit) -> tuple[int, int, float]:
    """Order of hits inside a clause group: clauses first (live, then newest draft), then
    comments by score."""
    if hit.kind != "clause":
        return (1, 0, -hit.score)
    draft = str(hit.fields.get("draft") or "")
    if draft == LIVE_DRAFT:
        return (0, -(10**9), -hit.score)
    number = stored_integer(draft) or 0
    return (0, -number, -hit.score)


def empty_results(page: int, per_page: int, message: str | None) -> SearchResults:
    """No hits, every facet empty, and why (``message``)."""
    return SearchResults(
        total=0,
        hits=(),
        facets={name: {} for name in FACET_FIELDS},
        message=message,
        page=page,
        per_page=per_page,
    )
