"""People, their organisations, login sessions, invitations and API tokens."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from codedraft.extensions import db
from codedraft.timeutil import utcnow


class Organisation(db.Model):
    """A stakeholder organisation; its category labels every comment its people write."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    category: Mapped[str] = mapped_column(String(40))

    people: Mapped[list[User]] = relationship(back_populates="organisation")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # The Office: may create codes and administer every code.
    is_office: Mapped[bool] = mapped_column(default=False)
    is_active_account: Mapped[bool] = mapped_column(default=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    # Shown as-is when the person has no organisation ("individual expert").
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation | None] = relationship(back_populates="people")

    @property
    def is_active(self) -> bool:  # flask-login
        return self.is_active_account

    @property
    def stakeholder_category(self) -> str:
        return self.organisation.category if self.organisation else "individual"

    @property
    def colour(self) -> str:
        """A stable presence colour, so a person looks the same to everyone."""
        palette = ("#b3261e", "#1b6e3a", "#0b57d0", "#8a4baf", "#a15c00", "#00677d", "#6c5f00", "#c2185b")
        return palette[self.id % len(palette)]


class LoginSession(db.Model):
    """One signed-in browser. Ending it revokes the cookie *and* every socket opened with it.

    Flask's session is a signed copy held by the client, so it cannot be revoked on its own
    (SECURITY-CASES 6); every request and socket message checks this row instead.
    """

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship()


class Invitation(db.Model):
    """A one-time, expiring link that grants a role on a code.

    For a new e-mail it lets the person choose a password; for an existing account it only
    grants the role, after that person signs in (never a password-reset link).
    """

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    code_id: Mapped[int | None] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"))
    working_group_id: Mapped[int | None] = mapped_column(ForeignKey("working_groups.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiToken(db.Model):
    """A personal access token for /api/v1; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # None: the token lives until revoked.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship()

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utcnow())

