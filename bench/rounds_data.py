"""A generated feedback round like the Code's: 400 submissions, ~20,000 comments on 100 clauses,
a third of them campaign copies with small edits. The generator keeps the true campaigns.

Comment texts are built from sentences of the real drafts (../shared/corpus) when present, else
from generated sentences; either way two independent comments share no more than chance words.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

# ../shared beside the project (or beside the folder holding its work trees).
_ROOT = Path(__file__).resolve().parents[1]
CORPUS = next((base / "shared" / "corpus" / "gpai-cop-draft3-2025-03.md" for base in (_ROOT.parent, _ROOT.parent.parent)
               if (base / "shared" / "corpus" / "gpai-cop-draft3-2025-03.md").exists()),
              _ROOT.parent / "shared" / "corpus" / "gpai-cop-draft3-2025-03.md")
OPENINGS = ["We suggest that", "We are concerned that", "It should be clarified whether", "We support that",
            "Please reconsider whether", "We recommend that", "It is unclear whether", "We object that"]
FILLERS = ["kindly", "strongly", "respectfully", "firmly", "again", "also"]


@dataclass(frozen=True)
class GeneratedComment:
    submission: int  # the organisation's index
    clause: int  # the clause's index
    text: str
    campaign: int | None  # the true campaign, None for an independent comment


def sentences(rng: random.Random) -> list[str]:
    if CORPUS.exists():
        text = re.sub(r"[#*_>\[\]()`|-]", " ", CORPUS.read_text(encoding="utf-8"))
        found = [" ".join(s.split()) for s in re.split(r"(?<=[.;:])\s+", text)]
        found = [s for s in found if 60 <= len(s) <= 260]
        if len(found) > 500:
            return found
    words = [f"{a}{b}" for a in ("tra", "mod", "sys", "ris", "cop", "dat", "eva", "gov", "rep", "inc")
             for b in ("ining", "el", "tem", "k", "yright", "aset", "luation", "ernance", "ort", "ident")]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(12, 30))) + "." for _ in range(4000)]


def small_edit(text: str, organisation: str, rng: random.Random) -> str:
    """What a campaign's signatory changes: their name, a word or two, a closing line, a typo."""
    text = text.replace("{org}", organisation)
    words = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        edit = rng.random()
        at = rng.randrange(1, len(words))
        if edit < 0.35:
            words.insert(at, rng.choice(FILLERS))
        elif edit < 0.6 and len(words) > 20:
            del words[at]
        elif edit < 0.8:
            word = words[at]
            if len(word) > 3:
                i = rng.randrange(len(word) - 1)
                words[at] = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        else:
            words.append(rng.choice(["Thank you.", "Kind regards.", "We remain available."]))
    return " ".join(words)


def generate(seed: int = 19, submissions: int = 400, clauses: int = 100, per_submission: int = 50,
             campaign_share: float = 1 / 3) -> list[GeneratedComment]:
    rng = random.Random(seed)
    pool = sentences(rng)
    total = submissions * per_submission
    comments: list[GeneratedComment] = []
    # Campaigns: a few large ones (a sector's letter) and many small ones.
    campaign_target = int(total * campaign_share)
    sizes: list[int] = []
    while sum(sizes) < campaign_target:
        sizes.append(rng.randint(100, 220) if rng.random() < 0.25 else rng.randint(5, 40))
    sizes[-1] -= sum(sizes) - campaign_target
    if sizes[-1] < 2:
        sizes.pop()
    for campaign, size in enumerate(sizes):
        clause = rng.randrange(clauses)
        base = (f"{rng.choice(OPENINGS)} {rng.choice(pool)} {rng.choice(pool)} {rng.choice(pool)} "
                f"This comment is submitted on behalf of {{org}}.")
        for submission in rng.sample(range(submissions), min(size, submissions)):
            comments.append(GeneratedComment(submission, clause, small_edit(base, f"Organisation {submission}", rng),
                                             campaign))
    while len(comments) < total:
        opening = rng.choice(OPENINGS)
        text = f"{opening} {rng.choice(pool)} {rng.choice(pool).lower()}"
        comments.append(GeneratedComment(rng.randrange(submissions), rng.randrange(clauses), text, None))
    rng.shuffle(comments)
    return comments


def pair_scores(truth: list[int | None], found: list[int | None]) -> tuple[float, float]:
    """Pairwise precision and recall of ``found`` groups against ``truth`` (None: in no group)."""
    from collections import Counter

    def pairs(counter: Counter[object]) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    true_pairs = pairs(Counter(t for t in truth if t is not None))
    found_pairs = pairs(Counter(f for f in found if f is not None))
    both = pairs(Counter((t, f) for t, f in zip(truth, found, strict=True) if t is not None and f is not None))
    precision = both / found_pairs if found_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    return precision, recall
