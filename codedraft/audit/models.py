"""One row per administrative act; rows are only ever added."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from codedraft.extensions import db
from codedraft.timeutil import utcnow


class AuditEvent(db.Model):
    """Who did what, when and from which address.

    The actor's name and e-mail are copied into the row, so the log still reads right after an
    account is renamed or removed; ``code_id`` likewise survives a deleted code as a plain number.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(460), default="")
    code_id: Mapped[int | None] = mapped_column(index=True)
    subject: Mapped[str] = mapped_column(String(300), default="")
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    address: Mapped[str] = mapped_column(String(64), default="")
