"""Publishing drafts: an atomic, immutable snapshot of the live text."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from codedraft.accounts.models import User
from codedraft.codes.models import Chapter, Clause, Code
from codedraft.codes.operations import live_clauses
from codedraft.drafts.models import Draft, DraftClause
from codedraft.extensions import db

# Hooks that bring every clause's materialised text up to date before a snapshot is taken
# (the co-editing store registers one), so a draft published mid-typing holds what was
# acknowledged at that moment.
before_snapshot: list[Callable[[Code], None]] = []
# Hooks run once a draft is written, in the same transaction (feedback carries open comments).
after_publish: list[Callable[[Draft], object]] = []


def next_draft_number(code: Code) -> int:
    highest = db.session.scalar(select(func.max(Draft.number)).where(Draft.code_id == code.id))
    return (highest or 0) + 1


def publish_draft(code: Code, name: str, *, by: User | None = None, note: str = "") -> Draft:
    """Snapshot every live clause of ``code`` into a new numbered draft."""
    for hook in before_snapshot:
        hook(code)
    draft = Draft(
        code_id=code.id, number=next_draft_number(code), name=name.strip() or f"Draft {next_draft_number(code)}",
        note=note, published_by_id=by.id if by else None, code_title=code.title,
    )
    db.session.add(draft)
    db.session.flush()
    chapters = {c.id: c for c in db.session.scalars(select(Chapter).where(Chapter.code_id == code.id))}
    parents = {c.id: c.uid for c in db.session.scalars(select(Clause).where(Clause.code_id == code.id))}
    rows = []
    for position, clause in enumerate(live_clauses(code)):
        chapter = chapters[clause.chapter_id]
        rows.append(
            DraftClause(
                draft_id=draft.id, clause_uid=clause.uid,
                parent_uid=parents.get(clause.parent_id) if clause.parent_id else None,
                chapter_number=chapter.number, chapter_title=chapter.title, chapter_position=chapter.position,
                kind=clause.kind, number=clause.number, title=clause.title, body=clause.body,
                position=position,
            )
        )
    db.session.add_all(rows)
    db.session.flush()
    for hook in after_publish:
        hook(draft)
    return draft


def drafts_of(code: Code) -> list[Draft]:
    return list(db.session.scalars(select(Draft).where(Draft.code_id == code.id).order_by(Draft.number)))


def latest_draft(code: Code) -> Draft | None:
    return db.session.scalar(
        select(Draft).where(Draft.code_id == code.id).order_by(Draft.number.desc()).limit(1)
    )


def clause_history(uid: str) -> list[tuple[Draft, DraftClause]]:
    """Every published version of one clause, oldest first."""
    rows = db.session.execute(
        select(Draft, DraftClause)
        .join(DraftClause, DraftClause.draft_id == Draft.id)
        .where(DraftClause.clause_uid == uid)
        .order_by(Draft.number)
    ).all()
    return [(draft, version) for draft, version in rows]


def draft_chapters(draft: Draft) -> list[tuple[str, str, list[DraftClause]]]:
    """The draft's clauses grouped by chapter: (number, title, clauses), in reading order."""
    grouped: dict[tuple[int, str, str], list[DraftClause]] = {}
    for clause in draft.clauses:
        grouped.setdefault((clause.chapter_position, clause.chapter_number, clause.chapter_title), []).append(clause)
    in_reading_order = sorted(grouped.items(), key=lambda kv: kv[0][0])
    return [(number, title, clauses) for (_position, number, title), clauses in in_reading_order]
