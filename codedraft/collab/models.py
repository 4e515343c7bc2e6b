"""The durable record of co-editing: an append-only update log, snapshots and checkpoints."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from codedraft.extensions import db
from codedraft.timeutil import utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
LogId = BigInteger().with_variant(Integer(), "sqlite")


class ClauseUpdate(db.Model):
    """One acknowledged Yjs update to a clause, with who made it and when. Never changed."""

    __tablename__ = "clause_updates"
    __table_args__ = (Index("ix_clause_updates_clause_id_id", "clause_id", "id"),)

    id: Mapped[int] = mapped_column(LogId, primary_key=True, autoincrement=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    update: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where the edit came from: "editor", "restore", "amendment", "import".
    origin: Mapped[str] = mapped_column(String(20), default="editor")


class ClauseSnapshot(db.Model):
    """The whole document as of update ``upto_update_id``: opening a clause starts here."""

    __tablename__ = "clause_snapshots"

    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id", ondelete="CASCADE"), primary_key=True)
    upto_update_id: Mapped[int] = mapped_column(LogId)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(db.Model):
    """A named point in a clause's history ("before the WG2 call"), for replay and restore."""

    __tablename__ = "clause_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    upto_update_id: Mapped[int] = mapped_column(LogId)
    text: Mapped[str] = mapped_column(db.Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HistoryAccess(db.Model):
    """Who may see a code's live history of unpublished text (keystroke replay, blame, the
    sessions with their diffs): ``drafting`` (the drafting team: members, chairs and the code's
    admins; the default, also when a code has no row) or ``participants`` (everyone who may
    read the clause, reviewers and observers included)."""

    __tablename__ = "clause_history_access"

    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), primary_key=True)
    audience: Mapped[str] = mapped_column(String(20), default="drafting")
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
