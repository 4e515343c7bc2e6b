"""Editing a code's structure: names, titles, numbers, order, chapters, withdrawal.

Every change is one ``StructureChange`` row with who, when and the fields before and after, so it
shows in the clause's history and can be undone. Operations mutate and flush; views commit.
Published drafts are never touched: they keep the titles and numbers they were published with.
"""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from codedraft.accounts.models import User
from codedraft.codes.models import Chapter, Clause, Code, StructureChange
from codedraft.codes.operations import CodeError
from codedraft.extensions import db
from codedraft.timeutil import utcnow

MAX_TITLE = 500
MAX_NUMBER = 40


def _record(code_id: int, action: str, before: dict[str, Any], after: dict[str, Any], by: User | None, *,
            clause: Clause | None = None, chapter: Chapter | None = None) -> StructureChange:
    change = StructureChange(
        code_id=code_id, action=action,
        before=json.dumps(before, sort_keys=True), after=json.dumps(after, sort_keys=True),
        clause_id=clause.id if clause is not None else None, chapter_id=chapter.id if chapter is not None else None,
        user_id=by.id if by is not None else None,
    )
    db.session.add(change)
    return change


def _clean(text: str, limit: int, what: str) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        raise CodeError(f"The {what} is longer than {limit} characters.")
    return text


def _set_clause(clause: Clause, action: str, by: User | None, **values: Any) -> StructureChange | None:
    before = {name: getattr(clause, name) for name in values}
    if before == values:
        return None
    for name, value in values.items():
        setattr(clause, name, value)
    clause.updated_at = utcnow()
    return _record(clause.code_id, action, before, values, by, clause=clause)


def rename_code(code: Code, title: str, by: User | None) -> StructureChange | None:
    title = _clean(title, 300, "title")
    if not title:
        raise CodeError("A code needs a title.")
    if title == code.title:
        return None
    change = _record(code.id, "rename_code", {"title": code.title}, {"title": title}, by)
    code.title = title
    db.session.flush()
    return change


def rename_chapter(chapter: Chapter, title: str, by: User | None, number: str | None = None) -> StructureChange | None:
    title = _clean(title, MAX_TITLE, "title")
    if not title:
        raise CodeError("A chapter needs a title.")
    after = {"title": title, "number": _clean(number, MAX_NUMBER, "number") if number is not None else chapter.number}
    before = {"title": chapter.title, "number": chapter.number}
    if before == after:
        return None
    chapter.title, chapter.number = after["title"], after["number"]
    change = _record(chapter.code_id, "rename_chapter", before, after, by, chapter=chapter)
    db.session.flush()
    return change


def retitle(clause: Clause, title: str, by: User | None) -> StructureChange | None:
    change = _set_clause(clause, "retitle", by, title=_clean(title, MAX_TITLE, "title"))
    db.session.flush()
    return change


def renumber(clause: Clause, number: str, by: User | None) -> StructureChange | None:
    """A number typed by hand: kept by automatic renumbering. An empty number returns the clause
    to automatic numbering."""
    number = _clean(number, MAX_NUMBER, "number")
    change = _set_clause(clause, "renumber", by, number=number or clause.number, number_manual=bool(number))
    db.session.flush()
    return change


def _ordered(code: Code) -> list[Clause]:
    return list(db.session.scalars(
        select(Clause).join(Chapter, Chapter.id == Clause.chapter_id)
        .where(Clause.code_id == code.id, Clause.withdrawn.is_(False))
        .order_by(Chapter.position, Clause.position)
    ))


def automatic_numbers(clauses: list[Clause]) -> dict[int, str]:
    """Numbers per kind in reading order: Commitment N, Measure N.M (N its commitment's), Article N,
    Recital n (per parent), Annex in Roman numerals. A hand-typed number stays and counting
    continues after it when it is a plain number."""
    numbers: dict[int, str] = {}
    counters: dict[tuple[str, int | None], int] = {}
    by_id = {clause.id: clause for clause in clauses}
    for clause in clauses:
        if clause.kind not in ("commitment", "measure", "article", "recital", "annex"):
            continue
        scope = clause.parent_id if clause.kind in ("measure", "recital") else None
        count = counters.get((clause.kind, scope), 0) + 1
        if clause.number_manual:
            typed = re.search(r"(\d+)$", clause.number)
            counters[(clause.kind, scope)] = int(typed.group(1)) if typed else count
            continue
        counters[(clause.kind, scope)] = count
        if clause.kind == "measure":
            parent = by_id.get(clause.parent_id) if clause.parent_id else None
            prefix = numbers.get(parent.id, parent.number) if parent is not None else ""
            numbers[clause.id] = f"{prefix}.{count}" if prefix else str(count)
        elif clause.kind == "annex":
            numbers[clause.id] = _roman(count)
        else:
            numbers[clause.id] = str(count)
    return numbers


def _roman(value: int) -> str:
    digits = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
              (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for amount, letters in digits:
        while value >= amount:
            out, value = out + letters, value - amount
    return out


def renumber_automatically(code: Code, by: User | None) -> list[StructureChange]:
    """Give every live clause without a hand-typed number its automatic number."""
    changes = []
    clauses = _ordered(code)
    numbers = automatic_numbers(clauses)
    for clause in clauses:
        if clause.id in numbers:
            change = _set_clause(clause, "renumber_auto", by, number=numbers[clause.id])
            if change is not None:
                changes.append(change)
    db.session.flush()
    return changes


def _family(clause: Clause, clauses: list[Clause]) -> list[Clause]:
    """The clause and everything under it, in order (a commitment moves with its measures)."""
    ids = {clause.id}
    family = []
    for candidate in clauses:
        if candidate.id in ids or candidate.parent_id in ids:
            ids.add(candidate.id)
            family.append(candidate)
    return family


def move(clause: Clause, by: User | None, *, chapter: Chapter | None = None, step: int = 0) -> StructureChange | None:
    """Move a clause (with the clauses under it) one place up (``step=-1``) or down (``+1``)
    among its siblings, or to the end of another ``chapter`` of the same code."""
    if chapter is not None and chapter.code_id != clause.code_id:
        raise CodeError("That chapter belongs to another code.")
    clauses = _ordered(db.session.get(Code, clause.code_id))
    if clause not in clauses:
        raise CodeError("A withdrawn clause cannot be moved.")
    family = _family(clause, clauses)
    rest = [c for c in clauses if c not in family]
    before = {"chapter_id": clause.chapter_id, "parent_id": clause.parent_id, "after_id": _preceding(clauses, clause)}
    if chapter is not None and chapter.id != clause.chapter_id:
        in_chapter = [c for c in rest if c.chapter_id == chapter.id]
        after = {"chapter_id": chapter.id, "parent_id": None, "after_id": in_chapter[-1].id if in_chapter else None}
    else:
        siblings = [c for c in rest if c.parent_id == clause.parent_id and c.chapter_id == clause.chapter_id]
        index = clauses.index(clause)
        earlier = [c for c in siblings if clauses.index(c) < index]
        later = [c for c in siblings if clauses.index(c) > index]
        if step < 0 and earlier:
            anchor = _preceding(clauses, earlier[-1])
        elif step > 0 and later:
            anchor = _family(later[0], clauses)[-1].id
        else:
            return None
        after = {"chapter_id": clause.chapter_id, "parent_id": clause.parent_id, "after_id": anchor}
    _place(clause, clauses, **after)
    change = _record(clause.code_id, "move", before, after, by, clause=clause)
    db.session.flush()
    return change


def _preceding(clauses: list[Clause], clause: Clause) -> int | None:
    """The clause just before ``clause`` in its chapter, if any."""
    index = clauses.index(clause)
    earlier = clauses[index - 1] if index else None
    return earlier.id if earlier is not None and earlier.chapter_id == clause.chapter_id else None


def _place(clause: Clause, clauses: list[Clause], *, chapter_id: int, parent_id: int | None,
           after_id: int | None) -> None:
    """Put ``clause`` and the clauses under it in ``chapter_id`` right after ``after_id`` (or first
    in the chapter), and number every live clause's position afresh."""
    family = _family(clause, clauses)
    rest = [c for c in clauses if c not in family]
    anchor = next((i for i, c in enumerate(rest) if c.id == after_id), None)
    if anchor is not None:
        insert_at = anchor + 1
    else:
        chapters = {c.id: c for c in db.session.get(Code, clause.code_id).chapters}
        target = chapters[chapter_id]
        insert_at = next((i for i, c in enumerate(rest) if chapters[c.chapter_id].position >= target.position),
                         len(rest))
    for member in family:
        member.chapter_id = chapter_id
    clause.parent_id = parent_id
    clause.updated_at = utcnow()
    for position, member in enumerate(rest[:insert_at] + family + rest[insert_at:]):
        member.position = position


def withdraw(clause: Clause, by: User | None) -> StructureChange | None:
    """Withdraw a clause from the live text: kept with its comments and history, shown struck
    through in the next redline (it is absent from the next draft)."""
    change = _set_clause(clause, "withdraw", by, withdrawn=True)
    db.session.flush()
    return change


def restore(clause: Clause, by: User | None) -> StructureChange | None:
    change = _set_clause(clause, "restore", by, withdrawn=False)
    db.session.flush()
    return change


def changes_of_clause(clause: Clause) -> list[StructureChange]:
    return list(db.session.scalars(
        select(StructureChange).where(StructureChange.clause_id == clause.id).order_by(StructureChange.id.desc())
    ))


def undo(change: StructureChange, by: User | None) -> StructureChange:
    """Put back the values before ``change``; refused when they were changed again since."""
    if change.undone_at is not None:
        raise CodeError("That change was undone already.")
    before, after = json.loads(change.before), json.loads(change.after)
    if change.action == "move":
        return _undo_move(change, before, after, by)
    if change.clause_id is not None:
        target: Any = db.session.get(Clause, change.clause_id)
    elif change.chapter_id is not None:
        target = db.session.get(Chapter, change.chapter_id)
    else:
        target = db.session.get(Code, change.code_id)
    if target is None or any(getattr(target, name) != value for name, value in after.items()):
        raise CodeError("That change cannot be undone: it was changed again since.")
    for name, value in before.items():
        setattr(target, name, value)
    change.undone_at = utcnow()
    reverse = _record(change.code_id, f"undo_{change.action}", after, before, by,
                      clause=target if isinstance(target, Clause) else None,
                      chapter=target if isinstance(target, Chapter) else None)
    db.session.flush()
    return reverse


def _undo_move(change: StructureChange, before: dict[str, Any], after: dict[str, Any],
               by: User | None) -> StructureChange:
    clause = db.session.get(Clause, change.clause_id)
    if clause is None or clause.withdrawn or clause.chapter_id != after["chapter_id"]:
        raise CodeError("That change cannot be undone: it was changed again since.")
    clauses = _ordered(db.session.get(Code, clause.code_id))
    if after.get("after_id") != _preceding(clauses, clause):
        raise CodeError("That change cannot be undone: it was changed again since.")
    _place(clause, clauses, **before)
    change.undone_at = utcnow()
    reverse = _record(change.code_id, "undo_move", after, before, by, clause=clause)
    db.session.flush()
    return reverse


def describe(change: StructureChange) -> str:
    """A short account of a change for histories ("number: 3 → II.1")."""
    before, after = json.loads(change.before), json.loads(change.after)
    parts = []
    for name in after:
        if name in ("position", "parent_id", "number_manual", "after_id"):
            continue
        parts.append(f"{name.replace('_id', '')}: {before.get(name)!s} → {after.get(name)!s}")
    return "; ".join(parts) or change.action
