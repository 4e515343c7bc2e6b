"""Stakeholders' applications for an account, decided by the Office."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from codedraft.accounts.models import User
from codedraft.extensions import db
from codedraft.timeutil import utcnow

PENDING, APPROVED, REFUSED = "pending", "approved", "refused"


class Application(db.Model):
    """One person's application to review a code, for an organisation in a stakeholder category.

    The account exists from the moment of applying (so the applicant can sign in and see where
    the application stands) but holds no role, so it reads only what the public can. The
    organisation and category are what the applicant claimed; the Office confirms or corrects
    them on approval.
    """

    __tablename__ = "registration_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    organisation_name: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=PENDING, index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    applicant: Mapped[User] = relationship(foreign_keys=[user_id])
