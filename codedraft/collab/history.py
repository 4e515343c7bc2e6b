"""A clause's editing history read from its update log: sessions, replay, blame, restore text.

Pure: it works on plain values handed over by the views (``LoggedUpdate`` rows), never touching
the database itself, so every function here is tested without a server.

Attribution ("blame") replays the log one update at a time, takes the text after each, and lets
``plan_edits`` (diff-match-patch) say which characters the update inserted; those characters
carry the update's author until a later update deletes them. A diff can attribute an inserted
run to a different but identical neighbouring run ("ab" typed after "ab"); the text is the same,
only the credit between equal strings can shift, which is acceptable for a reading aid.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from diff_match_patch import diff_match_patch  # type: ignore[import-untyped]
from pycrdt import Doc, Text

from codedraft.collab.core import BODY, SUGGEST_INSERT, ClauseDocument, accepted_text, runs_of
from codedraft.collab.minimal_edit import plan_edits
from codedraft.exports.compare import DiffOp, DiffSegment

__all__ = [
    "SESSION_GAP",
    "EditSession",
    "group_sessions_by_person",
    "session_diffs",
    "LoggedUpdate",
    "Passage",
    "attribute_text",
    "group_sessions",
    "paginate",
    "restore_onto",
    "text_as_of",
    "texts_after_each",
]

#: Consecutive updates of one author closer together than this read as one editing session.
SESSION_GAP = timedelta(seconds=60)
# Blame diffs consecutive versions, which differ by one update: a short limit is plenty, and it
# keeps one pathological update from stalling the page (DESIGN.md on diff timeouts).
_BLAME_DIFF_TIMEOUT = 0.05
# A restore diffs two whole versions of one clause: bounded, off nothing but the restorer's request.
_RESTORE_DIFF_TIMEOUT = 0.5


@dataclass(frozen=True, slots=True)
class LoggedUpdate:
    """One stored update as the history needs it (a ClauseUpdate row, detached from the DB)."""

    id: int
    user_id: int | None
    created_at: datetime
    origin: str
    update: bytes


@dataclass(slots=True)
class EditSession:
    """A run of consecutive updates by one author (and one origin), each within SESSION_GAP of
    the previous: what a reader means by "Alice edited this at 10:02"."""

    user_id: int | None
    origin: str
    first_id: int
    last_id: int
    started_at: datetime
    ended_at: datetime
    update_count: int = 1
    update_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Passage:
    """A stretch of the current text written by one author in one update."""

    text: str
    user_id: int | None
    update_id: int
    origin: str


def group_sessions(updates: Iterable[LoggedUpdate], gap: timedelta = SESSION_GAP) -> list[EditSession]:
    """Group updates (in log order) into editing sessions, oldest first.

    A new session starts when the author or the origin changes, or when more than ``gap``
    passed since the previous update. Raises ValueError if ``gap`` is negative.
    """
    if gap < timedelta(0):
        raise ValueError("gap must not be negative")
    sessions: list[EditSession] = []
    for logged in updates:
        current = sessions[-1] if sessions else None
        if (current is not None and current.user_id == logged.user_id and current.origin == logged.origin
                and logged.created_at - current.ended_at <= gap):
            current.last_id = logged.id
            current.ended_at = logged.created_at
            current.update_count += 1
            current.update_ids.append(logged.id)
            continue
        sessions.append(EditSession(user_id=logged.user_id, origin=logged.origin, first_id=logged.id,
                                    last_id=logged.id, started_at=logged.created_at,
                                    ended_at=logged.created_at, update_ids=[logged.id]))
    return sessions


def group_sessions_by_person(updates: Iterable[LoggedUpdate], gap: timedelta = SESSION_GAP) -> list[EditSession]:
    """Group updates into one editing session per person and pause, oldest first.

    Unlike :func:`group_sessions`, another person's updates in between do not cut a session:
    two people typing together make two sessions, each spanning their own run of edits, not a
    new "session" at every alternation. A person's session ends when they pause longer than
    ``gap`` (or the origin of their edits changes). Raises ValueError if ``gap`` is negative.
    """
    if gap < timedelta(0):
        raise ValueError("gap must not be negative")
    sessions: list[EditSession] = []
    open_sessions: dict[tuple[int | None, str], EditSession] = {}
    for logged in updates:
        key = (logged.user_id, logged.origin)
        current = open_sessions.get(key)
        if current is not None and logged.created_at - current.ended_at <= gap:
            current.last_id = logged.id
            current.ended_at = logged.created_at
            current.update_count += 1
            current.update_ids.append(logged.id)
            continue
        session = EditSession(user_id=logged.user_id, origin=logged.origin, first_id=logged.id, last_id=logged.id,
                              started_at=logged.created_at, ended_at=logged.created_at, update_ids=[logged.id])
        sessions.append(session)
        open_sessions[key] = session
    return sessions


# A character of a session's window: its text and whether the session inserted it ("i"),
# deleted it (a tombstone, "d"), or it was there or written by someone else (" ").
_KEPT, _INSERTED, _DELETED = " ", "i", "d"


def _live_index(marks: list[str], position: int) -> int:
    """The index in ``marks`` of the ``position``-th character that is still in the text."""
    alive = 0
    for index, mark in enumerate(marks):
        if mark != _DELETED:
            if alive == position:
                return index
            alive += 1
    return len(marks)


def _window_diff(before: str, steps: Sequence[tuple[bool, str, str]]) -> tuple[DiffSegment, ...]:
    """What a session changed: replay ``steps`` (whether the step is the session's, the text
    before it, the text after it) from ``before``; the session's insertions still present and
    its deletions are marked, everyone else's edits read as plain text."""
    chars = list(before)
    marks = [_KEPT] * len(chars)
    for own, previous, text in steps:
        for edit in plan_edits(previous, text, timeout=_BLAME_DIFF_TIMEOUT):
            start = _live_index(marks, edit.position)
            index, removed = start, 0
            while removed < edit.delete_count and index < len(marks):
                if marks[index] == _DELETED:
                    index += 1
                    continue
                if own and marks[index] == _KEPT:
                    marks[index] = _DELETED  # struck by this session: shown struck through
                    index += 1
                else:
                    del chars[index]
                    del marks[index]
                removed += 1
            # Inserted after what this edit struck, so a replacement reads "old new".
            chars[index:index] = list(edit.insert_text)
            marks[index:index] = [_INSERTED if own else _KEPT] * len(edit.insert_text)
    ops = {_KEPT: DiffOp.EQUAL, _INSERTED: DiffOp.INSERT, _DELETED: DiffOp.DELETE}
    segments: list[DiffSegment] = []
    for char, mark in zip(chars, marks, strict=True):
        op = ops[mark]
        if segments and segments[-1].op is op:
            segments[-1] = DiffSegment(op, segments[-1].text + char)
        else:
            segments.append(DiffSegment(op, char))
    return tuple(segments)


def session_diffs(updates: Sequence[LoggedUpdate],
                  sessions: Iterable[EditSession]) -> dict[int, tuple[DiffSegment, ...]]:
    """For each session (keyed by its first update id), the diff of what that person did in it:
    the text from just before the session to just after it, with only their insertions and
    deletions marked (a co-author's edits in between read as plain text).

    Replays the log once; each session then costs a replay of its own window.
    """
    wanted = list(sessions)
    if not wanted:
        return {}
    last_needed = max(session.last_id for session in wanted)
    texts: list[tuple[LoggedUpdate, str]] = []
    for logged, text in texts_after_each(updates):
        texts.append((logged, text))
        if logged.id >= last_needed:
            break
    position = {logged.id: index for index, (logged, _) in enumerate(texts)}
    diffs: dict[int, tuple[DiffSegment, ...]] = {}
    for session in wanted:
        first, last = position[session.first_id], position[session.last_id]
        before = texts[first - 1][1] if first > 0 else ""
        own = set(session.update_ids)
        steps = []
        previous = before
        for logged, text in texts[first:last + 1]:
            steps.append((logged.id in own, previous, text))
            previous = text
        diffs[session.first_id] = _window_diff(before, steps)
    return diffs


def paginate(items: Sequence[EditSession], page: int, per_page: int) -> tuple[list[EditSession], int]:
    """The ``page``-th page (1-based, clamped into range) and the number of pages (at least 1).

    Raises ValueError if ``per_page`` is not positive.
    """
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    pages = max(1, -(-len(items) // per_page))
    page = min(max(page, 1), pages)
    start = (page - 1) * per_page
    return list(items[start:start + per_page]), pages


def text_as_of(updates: Iterable[LoggedUpdate], upto_id: int) -> str:
    """The clause text as it was once every update with id <= ``upto_id`` had been applied.

    Updates are applied in dependency order (see ClauseDocument.from_history), so a log written
    by several processes replays correctly. Raises CorruptHistory if a stored update is broken.
    """
    chosen = [logged.update for logged in updates if logged.id <= upto_id]
    return ClauseDocument.from_history(None, chosen).text


def texts_after_each(updates: Iterable[LoggedUpdate]) -> Iterator[tuple[LoggedUpdate, str]]:
    """Replay the log one update at a time; yield each update with the text right after it."""
    doc: Doc[Text] = Doc()
    body = doc.get(BODY, type=Text)
    # The accepted text (suggested insertions left out); reading it run by run costs more than the
    # plain string, so only once some update has carried a suggestion mark.
    marked = False
    for logged in updates:
        doc.apply_update(logged.update)
        marked = marked or SUGGEST_INSERT.encode() in logged.update
        yield logged, accepted_text(runs_of(body.diff())) if marked else str(body)


def attribute_text(updates: Iterable[LoggedUpdate]) -> list[Passage]:
    """Split the current text into passages, each credited to the update that inserted it.

    Adjacent characters from the same update are merged into one passage; joining the passages'
    text gives the text after the last update.
    """
    authors: list[LoggedUpdate | None] = []  # one entry per code point of the current text
    previous = ""
    for logged, text in texts_after_each(updates):
        if text == previous:
            continue
        for edit in plan_edits(previous, text, timeout=_BLAME_DIFF_TIMEOUT):
            authors[edit.position:edit.position + edit.delete_count] = [logged] * len(edit.insert_text)
        previous = text
    return _passages(previous, authors)


def _author_key(logged: LoggedUpdate | None) -> tuple[int | None, str]:
    """Who a character is credited to: a person, or (for edits without one) the edit's origin."""
    if logged is None:
        return (None, "import")
    return (logged.user_id, "" if logged.user_id is not None else logged.origin)


def _passages(text: str, authors: Sequence[LoggedUpdate | None]) -> list[Passage]:
    """Merge neighbouring characters of one author into passages (typing makes an update per
    keystroke; a passage per keystroke would be unreadable). A passage names the earliest
    update that contributed to it."""
    passages: list[Passage] = []
    start = 0
    for index in range(1, len(text) + 1):
        if index == len(text) or _author_key(authors[index]) != _author_key(authors[start]):
            run = [logged for logged in authors[start:index] if logged is not None]
            first = min(run, key=lambda logged: logged.id) if run else None
            passages.append(Passage(text=text[start:index], user_id=first.user_id if first else None,
                                    update_id=first.id if first else 0,
                                    origin=first.origin if first else "import"))
            start = index
    return passages


def restore_onto(seen: str, target: str, live: str) -> tuple[str, bool]:
    """The live text with the change ``seen`` -> ``target`` applied to it: a three-way restore.

    ``seen`` is the text the restorer was looking at, ``target`` the version to go back to and
    ``live`` the text now, which may hold edits made since by people still typing. Their edits
    survive wherever they do not overlap a restored passage. Returns the new text and whether
    every restored passage found its place (False: some passage was edited meanwhile and kept
    its live wording).
    """
    if live == seen:
        return target, True
    matcher = diff_match_patch()
    matcher.Diff_Timeout = _RESTORE_DIFF_TIMEOUT
    patches = matcher.patch_make(seen, target)
    merged, applied = matcher.patch_apply(patches, live)
    return merged, all(applied)
