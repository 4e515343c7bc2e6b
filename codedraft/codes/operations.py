"""Operations on codes, chapters and clauses: mutate and flush, never commit."""
from __future__ import annotations

import re
import secrets
import unicodedata

from flask_babel import lazy_gettext as _
from sqlalchemy import func, select

from codedraft.codes.models import CLAUSE_KINDS, Chapter, Clause, Code, WorkingGroup
from codedraft.extensions import db
from codedraft.signals import announce_rights_changed
from codedraft.timeutil import utcnow


class CodeError(ValueError):
    """An operation on a code that cannot be carried out; the message is safe to show."""


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:60] or "code"


def new_clause_uid() -> str:
    """A stable clause id: random, so it reveals nothing and never collides across imports."""
    return secrets.token_hex(8)


def create_code(title: str, *, summary: str = "", language: str = "en", slug: str | None = None) -> Code:
    title = title.strip()
    if not title:
        raise CodeError(_("A code needs a title."))
    base = slug or slugify(title)
    candidate, n = base, 1
    while db.session.scalar(select(Code.id).where(Code.slug == candidate)) is not None:
        n += 1
        candidate = f"{base}-{n}"
    code = Code(title=title, summary=summary, language=language, slug=candidate)
    db.session.add(code)
    db.session.flush()
    return code


def add_working_group(code: Code, name: str, *, members_may_edit: bool = True) -> WorkingGroup:
    name = name.strip()
    if not name:
        raise CodeError(_("A working group needs a name."))
    if db.session.scalar(select(WorkingGroup.id).where(WorkingGroup.code_id == code.id,
                                                       WorkingGroup.name == name)) is not None:
        raise CodeError(_("This code already has a working group called “%(name)s”.", name=name))
    group = WorkingGroup(code_id=code.id, name=name, members_may_edit=members_may_edit)
    db.session.add(group)
    db.session.flush()
    return group


def add_chapter(
    code: Code, title: str, *, number: str = "", working_group: WorkingGroup | None = None,
    import_key: str | None = None,
) -> Chapter:
    if working_group is not None and working_group.code_id != code.id:
        raise CodeError(_("That working group belongs to another code."))
    position = db.session.scalar(select(func.count(Chapter.id)).where(Chapter.code_id == code.id)) or 0
    chapter = Chapter(
        code_id=code.id, title=title.strip() or "(untitled)", number=number,
        working_group_id=working_group.id if working_group else None, position=position,
        import_key=import_key,
    )
    db.session.add(chapter)
    db.session.flush()
    return chapter


def next_clause_position(code_id: int) -> int:
    highest = db.session.scalar(select(func.max(Clause.position)).where(Clause.code_id == code_id))
    return 0 if highest is None else highest + 1


def add_clause(
    chapter: Chapter,
    *,
    kind: str,
    number: str = "",
    title: str = "",
    body: str = "",
    parent: Clause | None = None,
    position: int | None = None,
    import_key: str | None = None,
) -> Clause:
    if kind not in CLAUSE_KINDS:
        raise CodeError(_("Unknown clause kind %(kind)s.", kind=repr(kind)))
    clause = Clause(
        uid=new_clause_uid(),
        code_id=chapter.code_id,
        chapter_id=chapter.id,
        parent_id=parent.id if parent else None,
        kind=kind,
        number=number.strip(),
        title=title.strip(),
        body=body,
        position=next_clause_position(chapter.code_id) if position is None else position,
        import_key=import_key,
    )
    db.session.add(clause)
    db.session.flush()
    return clause


def renumber_clause(clause: Clause, number: str) -> None:
    """Renumbering changes the label only; the clause keeps its stable id."""
    clause.number = number.strip()
    clause.updated_at = utcnow()


def retitle_clause(clause: Clause, title: str) -> None:
    clause.title = title.strip()
    clause.updated_at = utcnow()


def set_clause_body(clause: Clause, body: str) -> None:
    """Store the materialised live text (the co-editing store calls this after each update)."""
    clause.body = body
    clause.updated_at = utcnow()


def assign_working_group(chapter: Chapter, group: WorkingGroup | None) -> None:
    if group is not None and group.code_id != chapter.code_id:
        raise CodeError(_("That working group belongs to another code."))
    chapter.working_group_id = group.id if group else None
    announce_rights_changed()


def live_clauses(code: Code) -> list[Clause]:
    """The clauses of the live text in reading order."""
    return list(
        db.session.scalars(
            select(Clause)
            .join(Chapter, Chapter.id == Clause.chapter_id)
            .where(Clause.code_id == code.id, Clause.withdrawn.is_(False))
            .order_by(Chapter.position, Clause.position)
        )
    )


def clause_by_uid(uid: str) -> Clause | None:
    return db.session.scalar(select(Clause).where(Clause.uid == uid))
