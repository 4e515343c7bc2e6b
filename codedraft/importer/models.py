"""An uploaded file waiting for the Office to review its preview and apply it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from codedraft.extensions import db
from codedraft.timeutil import utcnow


class ImportUpload(db.Model):
    """The file as uploaded, kept only between its preview and the Office's decision; nothing of
    it reaches a code until it is applied. ``token`` is the unguessable name used in URLs."""

    __tablename__ = "import_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The code it would become the next version of; None for a new code.
    code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(300), default="")
    file_format: Mapped[str] = mapped_column(String(10))  # "md" or "docx"
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(default=None)
