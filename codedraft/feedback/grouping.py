"""Campaign groups: near-identical comments (copies of one text with small edits). Pure: no Flask,
no database.

Comments are compared only with others on the same clause (a campaign copies one comment on one
clause). Two comments are linked when their normalised texts are at least ``threshold`` similar
(``fuzz.ratio``: 100 × (1 - normalised Indel distance)); a group is a connected set of links with
at least two comments. Comparing whole texts pair by pair costs O(n² × length): first every pair
of *openings* (the first 120 characters) is scored at once with rapidfuzz's C++ ``cdist``, and
only pairs whose openings are at least 70 similar are compared in full (3.5 times faster on the
bench round, same groups).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Campaign copies with a changed name, a sentence added or words swapped score 88-99; distinct
#: comments on the same clause, even on the same point, stay below 70 (bench/feedback_rounds_bench.py).
DEFAULT_THRESHOLD = 85.0
OPENING = 120
OPENING_THRESHOLD = 70.0
_SPACE = re.compile(r"\s+")
_MARKUP = re.compile(r"[*_`>#\[\]()]")


@dataclass(frozen=True)
class Submission:
    """What grouping needs of a comment."""

    id: int
    clause_id: int
    text: str


def normalise(text: str) -> str:
    """Case, Markdown marks and runs of white space do not make two comments different."""
    return _SPACE.sub(" ", _MARKUP.sub(" ", text.lower())).strip()


def find_groups(submissions: Iterable[Submission], threshold: float = DEFAULT_THRESHOLD) -> list[list[int]]:
    """Groups of near-identical submissions: each a sorted list of ids, largest groups first."""
    by_clause: dict[int, list[Submission]] = {}
    for submission in submissions:
        by_clause.setdefault(submission.clause_id, []).append(submission)
    groups: list[list[int]] = []
    for clause_id in sorted(by_clause):
        groups.extend(_groups_on_clause(by_clause[clause_id], threshold))
    groups.sort(key=lambda ids: (-len(ids), ids[0]))
    return groups


def _groups_on_clause(items: Sequence[Submission], threshold: float) -> list[list[int]]:
    # Loaded when a round is grouped, not by every server process (numpy is large).
    import numpy as np
    from rapidfuzz import fuzz, process

    if len(items) < 2:
        return []
    texts = [normalise(item.text) for item in items]
    openings = [text[:OPENING] for text in texts]
    scores = process.cdist(openings, openings, scorer=fuzz.ratio, score_cutoff=min(OPENING_THRESHOLD, threshold),
                           dtype=np.uint8, workers=1)
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows, cols = np.nonzero(np.triu(scores, k=1))
    for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
        ra, rb = root(a), root(b)
        if ra == rb or fuzz.ratio(texts[a], texts[b], score_cutoff=threshold) < threshold:
            continue
        parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for index in range(len(items)):
        members.setdefault(root(index), []).append(items[index].id)
    return [sorted(ids) for ids in members.values() if len(ids) >= 2]
