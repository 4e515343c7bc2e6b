"""Each person's choice of how notifications reach them by mail."""
from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from codedraft.extensions import db

MAIL_IMMEDIATELY = "immediately"
MAIL_DAILY = "daily"
MAIL_NEVER = "never"
#: The choices, in the order the settings page lists them.
MAIL_MODES: tuple[str, ...] = (MAIL_IMMEDIATELY, MAIL_DAILY, MAIL_NEVER)
#: Someone who never chose gets one mail a day, not one per batch.
DEFAULT_MAIL_MODE = MAIL_DAILY


class NotificationPreference(db.Model):
    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    mail: Mapped[str] = mapped_column(String(20), default=DEFAULT_MAIL_MODE)
    # The language mail reaches them in (an interface language); None: the site's default.
    language: Mapped[str | None] = mapped_column(String(20))
