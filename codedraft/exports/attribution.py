"""Who made each change of a redline, and when: the author and time of every inserted and
deleted character between two drafts of a clause.

Pure: the app hands over the clause's text in the old draft, the versions it went through (the
text after each run of edits by one person, from the co-editing log, an accepted amendment or an
import) and its text in the new draft. Each version is diffed against the previous one
(a word diff, so a replaced word is credited whole): characters a version inserts carry its credit until a later
version deletes them, and characters of the old draft remember the credit of the version that
deleted them. A redline's insertion is then credited character by character from the new text,
its deletion from the old one, so a clause edited by two people shows two authors, each on the
words they wrote or struck.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from .compare import DiffOp, DiffSegment, diff_words

# Consecutive versions differ by one person's run of edits: a short diff limit is plenty, and it
# keeps one pathological step from stalling an export (the plan stays exact past it).
_STEP_DIFF_TIMEOUT = 0.1


@dataclass(frozen=True)
class Credit:
    """Who made a change and when (Word's ``w:author`` and ``w:date``)."""

    author: str
    at: datetime


@dataclass(frozen=True)
class Version:
    """A clause's text right after a run of edits credited to one person."""

    text: str
    credit: Credit


@dataclass(frozen=True)
class ClauseCredits:
    """Per character: who inserted each character of the new text (None: it was in the old
    draft), and who deleted each character of the old text (None: it is still there)."""

    inserted: tuple[Credit | None, ...]
    deleted: tuple[Credit | None, ...]


@dataclass(frozen=True)
class CreditedSegment:
    """A run of kept, inserted or deleted text credited to one person (None for kept text or
    when nobody is known)."""

    op: DiffOp
    text: str
    credit: Credit | None


def credit_changes(old_text: str, versions: Iterable[Version], new_text: str, final: Credit) -> ClauseCredits:
    """Follow the clause from ``old_text`` through ``versions`` to ``new_text``.

    If the last version is not ``new_text`` (a change that bypassed the log, such as an import
    of a clause nobody co-edited), the remaining step is credited to ``final``.
    """
    # For each character of the current text: its index in old_text, or the credit that inserted it.
    origin: list[int | Credit] = list(range(len(old_text)))
    deleted: list[Credit | None] = [None] * len(old_text)
    current = old_text

    def step(text: str, credit: Credit) -> None:
        nonlocal current
        if text == current:
            return
        position = 0
        for segment in diff_words(current, text, timeout=_STEP_DIFF_TIMEOUT):
            size = len(segment.text)
            if segment.op is DiffOp.EQUAL:
                position += size
            elif segment.op is DiffOp.DELETE:
                for gone in origin[position:position + size]:
                    if isinstance(gone, int):
                        deleted[gone] = credit
                del origin[position:position + size]
            else:
                origin[position:position] = [credit] * size
                position += size
        current = text

    for version in versions:
        step(version.text, version.credit)
    step(new_text, final)
    inserted = tuple(None if isinstance(source, int) else source for source in origin)
    return ClauseCredits(inserted=inserted, deleted=tuple(deleted))


def _runs(op: DiffOp, text: str, credits: tuple[Credit | None, ...], start: int,
          fallback: Credit) -> Iterator[CreditedSegment]:
    """Split a changed segment where its credit changes.

    Characters of the segment nobody is credited for (the comparison paired the texts a little
    differently from the edits) take the credit of their neighbours in the segment; only a
    segment with no credited character at all goes to ``fallback``.
    """
    known = [credits[index] if index < len(credits) else None for index in range(start, start + len(text))]
    first = next((credit for credit in known if credit is not None), fallback)
    filled: list[Credit] = []
    for credit in known:
        filled.append(credit if credit is not None else (filled[-1] if filled else first))
    run_start = 0
    for offset in range(1, len(text) + 1):
        if offset == len(text) or filled[offset] != filled[run_start]:
            yield CreditedSegment(op, text[run_start:offset], filled[run_start])
            run_start = offset


def credit_segments(segments: Iterable[DiffSegment], credits: ClauseCredits | None,
                    fallback: Credit) -> list[CreditedSegment]:
    """The segments of a redline (old -> new) split by who made each change.

    An insertion or deletion nobody in ``credits`` made (the comparison may pair texts
    differently from the edits; or there is no history) is credited to ``fallback``.
    """
    credited: list[CreditedSegment] = []
    old_at = new_at = 0
    for segment in segments:
        size = len(segment.text)
        if segment.op is DiffOp.EQUAL:
            credited.append(CreditedSegment(segment.op, segment.text, None))
            old_at += size
            new_at += size
        elif segment.op is DiffOp.INSERT:
            table = credits.inserted if credits is not None else ()
            credited.extend(_runs(segment.op, segment.text, table, new_at, fallback))
            new_at += size
        else:
            table = credits.deleted if credits is not None else ()
            credited.extend(_runs(segment.op, segment.text, table, old_at, fallback))
            old_at += size
    return credited
