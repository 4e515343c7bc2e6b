"""Text analysis for the search index: how clause and comment text becomes index terms.

Two chains share one tokenizer and one folding step:

* ``folding_analyzer()``: words, case-folded and accent-folded, never stemmed. Prefix,
  wildcard and fuzzy queries run on fields analysed this way, because a stemmed field
  holds "evalu" and misses the prefix "evaluat".
* ``stemming_analyzer(language)``: the same words, each made into its index term for the
  code's language by ``index_term``. Snowball languages (PyStemmer) are folded BEFORE
  stemming so that "sécurité" and "securite" reach the stemmer as the same word. Polish and
  the other EU languages without a Snowball stemmer are lemmatised with simplemma's
  dictionaries (shipped in the package, nothing downloaded), on the word as written and then
  folded: those dictionaries hold the accented forms, so "zobowiązaniem" finds its lemma
  where "zobowiazaniem" would not. Stop words are kept on purpose: dropping "not" made "shall
  not apply" match "shall apply".

Every backend calls ``index_terms`` itself (documents and queries alike), so a word becomes
the same term in Whoosh, SQLite and PostgreSQL, and each document is analysed in its own
code's language. A query is analysed in each language it searches (``query_term_sets``).

Whoosh's own ``accent_map`` folds most Latin letters (ł included) but leaves ligatures
(æ, œ, ﬁ, ĳ), the dotted capital İ and ß→"s" wrong; ``fold_text`` handles those with
Unicode decomposition plus a short table of letters that do not decompose.

The analyzers are pickled into the index's schema by Whoosh, so the classes here must stay
importable under this module path (a renamed module means: rebuild the index).
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterator

import simplemma
import Stemmer
from whoosh.analysis import CompositeAnalyzer, Filter, IDTokenizer, RegexTokenizer
from whoosh.analysis.acore import Token

DEFAULT_LANGUAGE = "en"

# ISO 639-1 code -> Snowball algorithm (PyStemmer): the EU languages Snowball covers, and a few
# more a code might be written in.
SNOWBALL_LANGUAGES: dict[str, str] = {
    "cs": "czech", "da": "danish", "de": "german", "el": "greek", "en": "english", "es": "spanish",
    "et": "estonian", "fi": "finnish", "fr": "french", "ga": "irish", "hu": "hungarian", "it": "italian",
    "lt": "lithuanian", "nl": "dutch", "pt": "portuguese", "ro": "romanian", "sv": "swedish",
    "ca": "catalan", "eu": "basque", "no": "norwegian", "ru": "russian", "tr": "turkish",
}
# ISO 639-1 code -> simplemma dictionary: the EU languages Snowball lacks (Maltese has neither,
# so it is folded only).
LEMMATISED_LANGUAGES: dict[str, str] = {"pl": "pl", "bg": "bg", "hr": "hbs", "lv": "lv", "sk": "sk", "sl": "sl"}
TERM_CACHE_SIZE = 262_144

# Word characters plus combining marks, so a decomposed "é" (e + U+0301) stays one word.
_COMBINING_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
WORD_PATTERN = re.compile(rf"[\w{_COMBINING_MARKS}]+", re.UNICODE)

# Letters that carry no combining mark in Unicode, so NFKD leaves them alone.
_UNDECOMPOSABLE_LETTERS = str.maketrans(
    {
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "ø": "o",
        "ħ": "h",
        "ı": "i",
        "ŀ": "l",
        "ŧ": "t",
        "ƀ": "b",
        "ƶ": "z",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
        "ĸ": "k",
    }
)


def fold_long_text(text: str) -> str:
    """``fold_text`` for a whole body: the same result, without filling the word cache."""
    return fold_text.__wrapped__(text)  # type: ignore[attr-defined,no-any-return]


@functools.lru_cache(maxsize=65536)
def fold_text(text: str) -> str:
    """Return ``text`` case-folded with accents and ligatures removed.

    Promises: ASCII letters only lose their case; "Łódź" -> "lodz", "Straße" -> "strasse",
    "ﬁnance" -> "finance", "Æble" -> "aeble". Never raises.
    """
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return without_marks.translate(_UNDECOMPOSABLE_LETTERS)


class FoldFilter(Filter):
    """Whoosh filter applying ``fold_text`` to every token; drops tokens that fold to ""."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FoldFilter)

    def __hash__(self) -> int:
        return hash(FoldFilter)

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        for token in tokens:
            folded = fold_text(token.text)
            if folded:
                token.text = folded
                yield token


def normal_language(language: object) -> str:
    """``language`` as a lower-case ISO 639-1 code ("PL" -> "pl", "pt-BR" -> "pt"); anything
    unusable -> DEFAULT_LANGUAGE."""
    if not isinstance(language, str):
        return DEFAULT_LANGUAGE
    code = language.strip().lower().replace("_", "-").split("-")[0]
    return code if code.isascii() and code.isalpha() and 2 <= len(code) <= 3 else DEFAULT_LANGUAGE


def language_has_stemmer(language: str) -> bool:
    """True when words of ``language`` are reduced to a common form: a Snowball stemmer or a
    simplemma dictionary (e.g. "en", "fr", "pl"); other languages are folded only."""
    code = normal_language(language)
    return code in SNOWBALL_LANGUAGES or code in LEMMATISED_LANGUAGES


@functools.lru_cache(maxsize=64)
def _stemmer(algorithm: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(algorithm)


_stemmer_guard = threading.Lock()
# simplemma's memory-frugal dictionaries (a front-coded stream read on demand): the Polish one
# took 422 MB of RSS as a dict against 69 MB this way, with the same lemmas; a lookup costs a
# few µs more, and index_term caches every word anyway.
LOW_MEMORY_DICTIONARIES = True
# Reading a dictionary takes seconds: one thread reads it while the others wait for it, rather
# than each reading its own copy (simplemma's cache fills only once the read is done).
_dictionary_guard = threading.Lock()
_read_dictionaries: set[str] = set()


def _lemma(word: str, dictionary: str) -> str:
    if dictionary not in _read_dictionaries:
        _read_dictionary(dictionary)
    return str(simplemma.lemmatize(word, lang=dictionary, low_memory=LOW_MEMORY_DICTIONARIES))


def _read_dictionary(dictionary: str) -> None:
    with _dictionary_guard:
        if dictionary not in _read_dictionaries:
            simplemma.lemmatize("a", lang=dictionary, low_memory=LOW_MEMORY_DICTIONARIES)
            _read_dictionaries.add(dictionary)


def prepare_language(language: str) -> bool:
    """Load what analysing ``language`` needs (a simplemma dictionary: seconds; a Snowball
    stemmer: a millisecond), so that the first search or write in it does not wait for that.
    Returns True when ``language`` has a dictionary that was read (now or before). Raises
    whatever reading the dictionary raises."""
    code = normal_language(language)
    if code in LEMMATISED_LANGUAGES:
        _read_dictionary(LEMMATISED_LANGUAGES[code])
        return True
    algorithm = SNOWBALL_LANGUAGES.get(code)
    if algorithm is not None:
        with _stemmer_guard:
            _stemmer(algorithm)
    return False


def dictionary_is_read(language: str) -> bool:
    """Whether this process holds the simplemma dictionary of ``language`` (False for a
    language that has none)."""
    return LEMMATISED_LANGUAGES.get(normal_language(language)) in _read_dictionaries


@functools.lru_cache(maxsize=TERM_CACHE_SIZE)
def index_term(word: str, language: str) -> str:
    """The index term of one word (as ``WORD_PATTERN`` cut it) in ``language``: folded and
    stemmed, or lemmatised and folded; "" when nothing is left. Never raises.

    The result is made of word characters only, so a space-joined list of terms splits back
    into the same terms (positions stay one per word, phrases keep working).
    """
    code = normal_language(language)
    if code in LEMMATISED_LANGUAGES:
        try:
            lemma = _lemma(word.casefold(), LEMMATISED_LANGUAGES[code])
        except Exception:  # a dictionary that cannot be read: folded, unlemmatised
            lemma = word
        return "".join(WORD_PATTERN.findall(fold_text(lemma))) or fold_text(word)
    folded = fold_text(word)
    algorithm = SNOWBALL_LANGUAGES.get(code)
    if algorithm is None or not folded:
        return folded
    with _stemmer_guard:  # a PyStemmer object is not safe to share between threads
        return str(_stemmer(algorithm).stemWord(folded))


def index_terms(text: str, language: str) -> list[str]:
    """Every word of ``text`` as its index term in ``language``, in order."""
    terms = (index_term(word, language) for word in WORD_PATTERN.findall(text))
    return [term for term in terms if term]


def analysed_text(text: str, language: str) -> str:
    """``index_terms`` joined by spaces: what a backend indexes for ``text`` in its stemmed
    field (re-splitting it with ``WORD_PATTERN`` gives the same terms back)."""
    return " ".join(index_terms(text, language))


def query_term_sets(words: list[str], languages: list[str]) -> list[tuple[str, ...]]:
    """``words`` as terms once per language, duplicates dropped: a phrase matches a document
    of any of ``languages`` when one of these term sequences matches in a row."""
    seen: dict[tuple[str, ...], None] = {}
    for language in languages or [DEFAULT_LANGUAGE]:
        terms = tuple(index_term(word, language) for word in words)
        if all(terms):
            seen.setdefault(terms, None)
    return list(seen)


class LanguageFilter(Filter):
    """Whoosh filter: each token becomes its ``index_term`` in one language (the highlighter
    uses it to find the words of a stored body that match the query's terms)."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = normal_language(language)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LanguageFilter) and other.language == self.language

    def __hash__(self) -> int:
        return hash((LanguageFilter, self.language))

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        for token in tokens:
            term = index_term(token.text, self.language)
            if term:
                token.text = term
                yield token


def folding_analyzer() -> CompositeAnalyzer:
    """Words -> folded terms, unstemmed (for prefix, wildcard and fuzzy queries)."""
    return RegexTokenizer(expression=WORD_PATTERN) | FoldFilter()


@functools.lru_cache(maxsize=64)
def stemming_analyzer(language: str = DEFAULT_LANGUAGE) -> CompositeAnalyzer:
    """Words -> their ``index_term`` in ``language``; stop words kept. A language with neither
    stemmer nor dictionary is folded only: still accent-insensitive, just not stemmed."""
    return RegexTokenizer(expression=WORD_PATTERN) | LanguageFilter(language)


def word_analyzer() -> CompositeAnalyzer:
    """Words as typed (neither folded nor stemmed): for fields that hold ``analysed_text``
    already, and for queries on them, whose words the backend turns into terms per language."""
    return RegexTokenizer(expression=WORD_PATTERN)


def key_analyzer() -> CompositeAnalyzer:
    """A whole value as one folded term: for keys and names used in filters and facets."""
    return IDTokenizer() | FoldFilter()


def fold_key(value: str) -> str:
    """The single term ``key_analyzer`` makes of ``value`` (stripped and folded)."""
    return fold_text(value.strip())
