"""Text analysis for the search index: how clause and comment text becomes index terms.

Two chains share one tokenizer and one folding step:

* ``folding_analyzer()``: words, case-folded and accent-folded, never stemmed. Prefix,
  wildcard and fuzzy queries run on fields analysed this way, because a stemmed field
  holds "evalu" and misses the prefix "evaluat".
* ``stemming_analyzer(language)``: the same words, then stemmed for the code's language.
  Folding runs BEFORE stemming so that "sécurité" and "securite" reach the stemmer as the
  same word. Stop words are kept on purpose: dropping "not" made "shall not apply" match
  "shall apply".

Whoosh's own ``accent_map`` folds most Latin letters (ł included) but leaves ligatures
(æ, œ, ﬁ, ĳ), the dotted capital İ and ß→"s" wrong; ``fold_text`` handles those with
Unicode decomposition plus a short table of letters that do not decompose.

The analyzers are pickled into the index's schema by Whoosh, so the classes here must stay
importable under this module path (a renamed module means: rebuild the index).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator

from whoosh.analysis import CompositeAnalyzer, Filter, IDTokenizer, RegexTokenizer, StemFilter
from whoosh.analysis.acore import Token
from whoosh.lang import has_stemmer

DEFAULT_LANGUAGE = "en"

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


def language_has_stemmer(language: str) -> bool:
    """True when Whoosh ships a Snowball stemmer for this ISO 639-1 code (e.g. "en", "fr")."""
    try:
        return bool(has_stemmer(language))
    except Exception:  # has_stemmer raises for unknown codes in some versions
        return False


def folding_analyzer() -> CompositeAnalyzer:
    """Words -> folded terms, unstemmed (for prefix, wildcard and fuzzy queries)."""
    return RegexTokenizer(expression=WORD_PATTERN) | FoldFilter()


def stemming_analyzer(language: str = DEFAULT_LANGUAGE) -> CompositeAnalyzer:
    """Words -> folded terms -> stems for ``language``; stop words kept.

    A language without a Whoosh stemmer (e.g. "pl") gets the folding analyzer unchanged:
    still accent-insensitive, just not stemmed.
    """
    chain = folding_analyzer()
    if language_has_stemmer(language):
        return chain | StemFilter(lang=language)
    return chain


def key_analyzer() -> CompositeAnalyzer:
    """A whole value as one folded term: for keys and names used in filters and facets."""
    return IDTokenizer() | FoldFilter()


def fold_key(value: str) -> str:
    """The single term ``key_analyzer`` makes of ``value`` (stripped and folded)."""
    return fold_text(value.strip())
