"""A code of practice: chapters owned by working groups, clauses, and who may do what."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from codedraft.codes.numbering import clause_heading

if TYPE_CHECKING:
    from codedraft.accounts.models import User
from codedraft.extensions import db
from codedraft.timeutil import utcnow


class Role(enum.IntEnum):
    """Roles in rising order of power; a higher role can do what a lower one can."""

    observer = 10
    reviewer = 20
    member = 30
    chair = 40
    admin = 50


CLAUSE_KINDS = ("commitment", "measure", "article", "annex", "recital", "section", "glossary")


class Code(db.Model):
    __tablename__ = "codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    chapters: Mapped[list[Chapter]] = relationship(
        back_populates="code", order_by="Chapter.position", cascade="all, delete-orphan"
    )
    working_groups: Mapped[list[WorkingGroup]] = relationship(
        back_populates="code", order_by="WorkingGroup.name", cascade="all, delete-orphan"
    )


class WorkingGroup(db.Model):
    __tablename__ = "working_groups"
    __table_args__ = (UniqueConstraint("code_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # DESIGN: members co-edit "where the working group allows it".
    members_may_edit: Mapped[bool] = mapped_column(default=True)

    code: Mapped[Code] = relationship(back_populates="working_groups")


class Chapter(db.Model):
    __tablename__ = "chapters"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    working_group_id: Mapped[int | None] = mapped_column(ForeignKey("working_groups.id", ondelete="SET NULL"))
    import_key: Mapped[str | None] = mapped_column(String(300))
    number: Mapped[str] = mapped_column(String(40), default="")
    title: Mapped[str] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(default=0)

    code: Mapped[Code] = relationship(back_populates="chapters")
    working_group: Mapped[WorkingGroup | None] = relationship()
    clauses: Mapped[list[Clause]] = relationship(
        back_populates="chapter", order_by="Clause.position", cascade="all, delete-orphan"
    )


class Clause(db.Model):
    """A clause of the live text. ``uid`` is its stable identity across every draft."""

    __tablename__ = "clauses"
    __table_args__ = (Index("ix_clauses_code_position", "code_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"))
    chapter_id: Mapped[int] = mapped_column(ForeignKey("chapters.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("clauses.id", ondelete="SET NULL"))
    import_key: Mapped[str | None] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20), default="section")
    number: Mapped[str] = mapped_column(String(40), default="")
    title: Mapped[str] = mapped_column(String(500), default="")
    # The materialised plain text of the live document, kept for rendering, search and export.
    body: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    # Dropped from the live text (e.g. by a re-import); kept for history and old drafts.
    withdrawn: Mapped[bool] = mapped_column(default=False)
    # A number typed by hand; automatic renumbering of its kind leaves it alone.
    number_manual: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    chapter: Mapped[Chapter] = relationship(back_populates="clauses")
    parent: Mapped[Clause | None] = relationship(remote_side=[id])
    notes: Mapped[list[DraftersNote]] = relationship(
        back_populates="clause", order_by="DraftersNote.position", cascade="all, delete-orphan"
    )

    @property
    def heading(self) -> str:
        return clause_heading(self.kind, self.number, self.title)


class DraftersNote(db.Model):
    """A drafters' note ("Summary of changes", "Explanation of changes", "future Recital") about a
    clause: shown beside it, never part of its text, comments, redlines or exports of the text."""

    __tablename__ = "drafters_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    clause: Mapped[Clause] = relationship(back_populates="notes")


class StructureChange(db.Model):
    """One change to a code's structure (a title, a number, a move, a withdrawal), with who and
    when, and the values before and after so it can be shown in the clause's history and undone."""

    __tablename__ = "structure_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    chapter_id: Mapped[int | None] = mapped_column(ForeignKey("chapters.id", ondelete="CASCADE"))
    clause_id: Mapped[int | None] = mapped_column(ForeignKey("clauses.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40))
    before: Mapped[str] = mapped_column(Text, default="{}")  # JSON of the fields it changed
    after: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User | None] = relationship("User")


class Membership(db.Model):
    """A role for one person on a code, or on one working group of it."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "code_id", "working_group_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    working_group_id: Mapped[int | None] = mapped_column(ForeignKey("working_groups.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))

    @property
    def rank(self) -> Role:
        return Role[self.role]

