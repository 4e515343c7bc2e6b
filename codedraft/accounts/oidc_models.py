"""Which account an identity provider's subject signs in to."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from codedraft.extensions import db
from codedraft.timeutil import utcnow


class ExternalIdentity(db.Model):
    """A subject (``sub``) of an OpenID Connect issuer, bound to exactly one account.

    Keyed by issuer and subject, never by e-mail: a provider may let a person change their
    address, and an address claimed by a provider is not proof of owning a local account.
    """

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
