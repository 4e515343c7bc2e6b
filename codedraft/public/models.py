"""What the Office has opened to the public: a code's published text, and rounds' responses."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from codedraft.extensions import db
from codedraft.timeutil import utcnow

#: The licence the published feedback dataset is released under unless the Office picks another.
DEFAULT_DATA_LICENCE = "CC-BY-4.0"


class PublicCode(db.Model):
    """A code anyone may read without an account: its published drafts, redlines between them,
    its process and the responses of the rounds the Office has published. No row, no public."""

    __tablename__ = "public_codes"

    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), primary_key=True)
    data_licence: Mapped[str] = mapped_column(String(100), default=DEFAULT_DATA_LICENCE)
    made_public_at: Mapped[datetime] = mapped_column(default=utcnow)
    made_public_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class PublishedRound(db.Model):
    """A feedback round whose comments and responses the Office has published (the annex)."""

    __tablename__ = "published_rounds"

    round_id: Mapped[int] = mapped_column(ForeignKey("feedback_rounds.id", ondelete="CASCADE"), primary_key=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
