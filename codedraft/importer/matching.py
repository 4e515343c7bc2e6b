"""Carry stable clause ids from one version of a code to the next.

Given the clauses of the version a code has now (each with its stable id) and a freshly parsed
new version, ``match_clauses`` says for every new clause which old clause it continues (so it
keeps that stable id, its comments and its history) or that it is new, and which old clauses
were dropped. The pairing is one-to-one and decided in tiers, each only among the clauses the
earlier tiers left unpaired, and always between clauses of the same kind (a glossary may continue
a section and vice versa):

1. ``number+title``: same number and same normalised title. Untitled clauses (recitals) pair on
   their number only when their texts are also alike (``TEXT_THRESHOLD``), since after a
   renumbering the same number names a different recital.
2. ``title``: the same normalised title; where a title has several candidates (two commitments
   called "Documentation") the more alike text wins.
3. ``text``: texts at least ``TEXT_THRESHOLD`` alike, the best pairs first.
4. ``title`` again: titles at least ``TITLE_THRESHOLD`` alike whose texts share at least
   ``MIN_TEXT_FOR_SIMILAR_TITLE``. Similar titles come after text on purpose: "During
   development" looks like "During deployment" but its text continues "During training".

Text similarity is difflib's ratio over the first ``TEXT_PREFIX_WORDS`` *distinctive* words of
each body: words found in more than ``COMMON_WORD_SHARE`` of all clauses (of both versions) are
left out, because "Signatories", "the" and "shall" make every pair of clauses look alike. To stay
fast the ratio is computed for a shortlist of ``SHORTLIST`` old clauses per new one, ranked by
shared words. Greedy pairing takes the best-scoring pairs first. Pure module: no I/O.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from codedraft.importer.parse import ParsedDocument

TITLE_THRESHOLD = 0.75
MIN_TEXT_FOR_SIMILAR_TITLE = 0.05
TEXT_THRESHOLD = 0.2
TEXT_PREFIX_WORDS = 300
COMMON_WORD_SHARE = 0.2
# Below this many clauses every word counts: shares of tiny documents say nothing.
MIN_COMMON_WORD_CLAUSES = 5
SHORTLIST = 5

# Kinds that may continue one another; every other kind only continues itself.
_KIND_FAMILY = {"glossary": "section"}
_WORD = re.compile(r"\w+")
_LEADING_ENUMERATOR = re.compile(r"^(?:[ivxlc]+|\d+)(?:\.\d+)*[.:)]?\s+")


class OldClause(NamedTuple):
    """A clause of the current version: ``(stable_id, kind, number, title, body)``."""

    stable_id: str
    kind: str
    number: str
    title: str
    body: str


@dataclass(frozen=True)
class ClauseMatch:
    """The old clause a new clause continues (``old_id``), or None with ``how == "new"``."""

    new_key: str
    old_id: str | None
    how: str  # "number+title" | "title" | "text" | "new"


@dataclass(frozen=True)
class MatchReport:
    """One match per new clause, in document order, and the old ids nothing continues."""

    matches: tuple[ClauseMatch, ...]
    dropped: tuple[str, ...]

    @property
    def matched(self) -> int:
        """How many new clauses continue an old one."""
        return sum(1 for match in self.matches if match.old_id is not None)

    @property
    def new(self) -> int:
        """How many new clauses continue nothing."""
        return sum(1 for match in self.matches if match.old_id is None)

    def by_how(self) -> dict[str, int]:
        """Count matches per tier, e.g. ``{"number+title": 40, "title": 9, "new": 3}``."""
        return dict(Counter(match.how for match in self.matches))

    def old_id_for(self, new_key: str) -> str | None:
        """The old id the new clause ``new_key`` continues; None if it is new or unknown."""
        for match in self.matches:
            if match.new_key == new_key:
                return match.old_id
        return None


@dataclass(frozen=True)
class _Side:
    """What matching needs to know of one clause, computed once."""

    ident: str
    family: str
    number: str
    title: str
    words: tuple[str, ...]  # distinctive words of the body prefix
    word_counts: Counter[str]


def normalise_title(title: str) -> str:
    """Lower-case, accent- and punctuation-free title without a leading "1." or "II." number."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    text = text.lower().replace("&", " and ")
    text = _LEADING_ENUMERATOR.sub("", text.strip())
    return " ".join(_WORD.findall(text))


def _normalise_number(number: str) -> str:
    return number.strip().rstrip(".").upper()


def text_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """difflib ratio of two word sequences; an empty text is like nothing (0.0)."""
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def title_similarity(a: str, b: str) -> float:
    """difflib ratio of two normalised titles; empty titles are never alike (0.0)."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _titles_alike(a: str, b: str) -> float:
    """Title similarity, or 0.0 as soon as cheap bounds show it is below TITLE_THRESHOLD."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < TITLE_THRESHOLD or matcher.quick_ratio() < TITLE_THRESHOLD:
        return 0.0
    return matcher.ratio()


def _shared_words(a: Counter[str], b: Counter[str]) -> float:
    """Dice coefficient of two word multisets: a cheap ranking before difflib runs."""
    total = sum(a.values()) + sum(b.values())
    if total == 0:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    shared = sum(min(count, large[word]) for word, count in small.items() if word in large)
    return 2.0 * shared / total


def _common_words(bodies: list[list[str]]) -> set[str]:
    """Words in more than COMMON_WORD_SHARE of the clauses (never for tiny documents)."""
    if len(bodies) < MIN_COMMON_WORD_CLAUSES:
        return set()
    clause_counts: Counter[str] = Counter()
    for words in bodies:
        clause_counts.update(set(words))
    limit = max(COMMON_WORD_SHARE * len(bodies), MIN_COMMON_WORD_CLAUSES)
    return {word for word, count in clause_counts.items() if count > limit}


def _prepare(rows: list[tuple[str, str, str, str, str]], common: set[str], bodies: list[list[str]]) -> list[_Side]:
    sides = []
    for (ident, kind, number, title, _), body_words in zip(rows, bodies, strict=True):
        words = tuple(word for word in body_words if word not in common)[:TEXT_PREFIX_WORDS]
        sides.append(
            _Side(
                ident,
                _KIND_FAMILY.get(kind, kind),
                _normalise_number(number),
                normalise_title(title),
                words,
                Counter(words),
            )
        )
    return sides


class _Pairing:
    """The one-to-one pairing built up tier by tier."""

    def __init__(self, new: list[_Side], old: list[_Side]) -> None:
        self.new = new
        self.old = old
        self.old_for_new: dict[int, tuple[int, str]] = {}
        self.taken_old: set[int] = set()
        self._text_cache: dict[tuple[int, int], float] = {}

    def free_new(self) -> list[int]:
        return [n for n in range(len(self.new)) if n not in self.old_for_new]

    def free_old(self) -> list[int]:
        return [o for o in range(len(self.old)) if o not in self.taken_old]

    def pair(self, n: int, o: int, how: str) -> None:
        self.old_for_new[n] = (o, how)
        self.taken_old.add(o)

    def text(self, n: int, o: int) -> float:
        """Text similarity of new clause n and old clause o (memoised)."""
        cached = self._text_cache.get((n, o))
        if cached is None:
            cached = text_similarity(self.new[n].words, self.old[o].words)
            self._text_cache[(n, o)] = cached
        return cached

    def take_best(self, candidates: Iterable[tuple[float, float, int, int]], how: str) -> None:
        """Pair greedily from the best candidate (score, tie-break, new, old) down."""
        for _, _, n, o in sorted(candidates, key=lambda c: (-c[0], -c[1], c[2], c[3])):
            if n not in self.old_for_new and o not in self.taken_old:
                self.pair(n, o, how)


def _pair_by_number_and_title(pairing: _Pairing) -> None:
    """Tier 1: same kind, number and normalised title (untitled ones also need alike text)."""
    by_signature: dict[tuple[str, str, str], list[int]] = {}
    for o in pairing.free_old():
        side = pairing.old[o]
        by_signature.setdefault((side.family, side.number, side.title), []).append(o)
    for n in pairing.free_new():
        side = pairing.new[n]
        if not side.number and not side.title:
            continue
        for o in by_signature.get((side.family, side.number, side.title), []):
            if o in pairing.taken_old:
                continue
            if not side.title and pairing.text(n, o) < TEXT_THRESHOLD:
                continue
            pairing.pair(n, o, "number+title")
            break


def _pair_by_title(pairing: _Pairing, *, exact: bool) -> None:
    """Tiers 2 and 4: equal titles (``exact``), or alike titles over texts sharing something."""
    free_old = pairing.free_old()
    candidates: list[tuple[float, float, int, int]] = []
    for n in pairing.free_new():
        new = pairing.new[n]
        for o in free_old:
            old = pairing.old[o]
            if old.family != new.family:
                continue
            if exact:
                if new.title and new.title == old.title:
                    candidates.append((1.0, pairing.text(n, o), n, o))
                continue
            score = _titles_alike(new.title, old.title)
            if score >= TITLE_THRESHOLD and pairing.text(n, o) >= MIN_TEXT_FOR_SIMILAR_TITLE:
                candidates.append((score, pairing.text(n, o), n, o))
    pairing.take_best(candidates, "title")


def _pair_by_text(pairing: _Pairing) -> None:
    """Tier 3: alike texts of the same kind, scoring only a shortlist per new clause."""
    free_old = pairing.free_old()
    candidates: list[tuple[float, float, int, int]] = []
    for n in pairing.free_new():
        new = pairing.new[n]
        ranked = sorted(
            (
                (_shared_words(new.word_counts, pairing.old[o].word_counts), o)
                for o in free_old
                if pairing.old[o].family == new.family
            ),
            key=lambda row: (-row[0], row[1]),
        )
        for shared, o in ranked[:SHORTLIST]:
            if shared < TEXT_THRESHOLD:  # Dice of word sets bounds the ratio from above
                break
            score = pairing.text(n, o)
            if score >= TEXT_THRESHOLD:
                title = title_similarity(new.title, pairing.old[o].title)
                candidates.append((score, title, n, o))
    pairing.take_best(candidates, "text")


def match_clauses(old: Sequence[OldClause | tuple[str, str, str, str, str]], new: ParsedDocument) -> MatchReport:
    """Pair each clause of ``new`` with the old clause it continues, one-to-one.

    ``old`` holds ``(stable_id, kind, number, title, body)`` tuples (or ``OldClause``).
    Raises ValueError if two old clauses share a stable id. Tiers are described in the module
    docstring; the result lists new clauses in document order and dropped ids in ``old`` order.
    """
    old_rows = [(c[0], c[1], c[2], c[3], c[4]) for c in old]
    ids = [row[0] for row in old_rows]
    if len(set(ids)) != len(ids):
        raise ValueError("old clauses must have unique stable ids")
    new_clauses = list(new.clauses())
    new_rows = [(c.key, c.kind, c.number, c.title, c.body) for c in new_clauses]
    old_bodies = [_WORD.findall(row[4].lower()) for row in old_rows]
    new_bodies = [_WORD.findall(row[4].lower()) for row in new_rows]
    common = _common_words(old_bodies + new_bodies)
    pairing = _Pairing(
        _prepare(new_rows, common, new_bodies),
        _prepare(old_rows, common, old_bodies),
    )
    _pair_by_number_and_title(pairing)
    _pair_by_title(pairing, exact=True)
    _pair_by_text(pairing)
    _pair_by_title(pairing, exact=False)
    matches = []
    for n, clause in enumerate(new_clauses):
        paired = pairing.old_for_new.get(n)
        if paired is None:
            matches.append(ClauseMatch(clause.key, None, "new"))
        else:
            matches.append(ClauseMatch(clause.key, ids[paired[0]], paired[1]))
    dropped = tuple(ids[o] for o in pairing.free_old())
    return MatchReport(tuple(matches), dropped)
