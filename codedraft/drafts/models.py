"""Published drafts: named, numbered, immutable snapshots of a whole code."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from codedraft.codes.numbering import clause_heading
from codedraft.extensions import db
from codedraft.timeutil import utcnow


class Draft(db.Model):
    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("code_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    # The code's title as published: exports of this draft carry it even after a rename.
    code_title: Mapped[str] = mapped_column(String(300), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    clauses: Mapped[list[DraftClause]] = relationship(
        back_populates="draft", order_by="DraftClause.position", cascade="all, delete-orphan"
    )


class DraftClause(db.Model):
    """A clause exactly as it stood in a draft. Never updated after publication."""

    __tablename__ = "draft_clauses"
    __table_args__ = (UniqueConstraint("draft_id", "clause_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    clause_uid: Mapped[str] = mapped_column(String(32), index=True)
    parent_uid: Mapped[str | None] = mapped_column(String(32))
    chapter_number: Mapped[str] = mapped_column(String(40), default="")
    chapter_title: Mapped[str] = mapped_column(String(500))
    chapter_position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(20))
    number: Mapped[str] = mapped_column(String(40), default="")
    title: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)

    draft: Mapped[Draft] = relationship(back_populates="clauses")

    @property
    def heading(self) -> str:
        return clause_heading(self.kind, self.number, self.title)
