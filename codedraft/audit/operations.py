"""Recording and reading the audit log. Operations flush; the caller commits with the act itself,
so an act and its audit row are stored together or not at all."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import has_request_context, request
from sqlalchemy import Select, func, select

from codedraft.accounts.models import User
from codedraft.audit.models import AuditEvent
from codedraft.codes.models import Code
from codedraft.extensions import db

#: The acts recorded, with the words the Office's page shows for them (translated there).
ACTIONS = (
    "role.granted",
    "role.removed",
    "invitation.sent",
    "invitation.accepted",
    "password.changed",
    "token.created",
    "token.revoked",
    "organisation.set",
    "import.applied",
    "structure.rename_code",
    "structure.rename_chapter",
    "structure.retitle",
    "structure.renumber",
    "structure.renumber_auto",
    "structure.move",
    "structure.withdraw",
    "structure.restore",
    "structure.undo",
    "registration.applied",
    "registration.approved",
    "registration.refused",
    "public.opened",
    "public.closed",
    "round.published",
    "round.unpublished",
    "identity.linked",
)


def record_event(
    action: str,
    *,
    actor: User | None,
    code: Code | None = None,
    subject: str = "",
    details: Mapping[str, Any] | None = None,
    address: str | None = None,
) -> AuditEvent:
    """Add one audit row for ``action`` done by ``actor`` (None for the command line).

    ``address`` defaults to the request's client address when there is a request.
    """
    if address is None:
        address = (request.remote_addr or "") if has_request_context() else "command line"
    event = AuditEvent(
        action=action[:60],
        actor_id=actor.id if actor is not None else None,
        actor_label=f"{actor.name} <{actor.email}>"[:460] if actor is not None else _unnamed_actor(),
        code_id=code.id if code is not None else None,
        subject=subject[:300],
        details=dict(details or {}),
        address=address[:64],
    )
    db.session.add(event)
    db.session.flush()
    return event


def _unnamed_actor() -> str:
    # No person: the command line, or the application itself on a person's behalf (a role
    # granted when an invitation without a known inviter is accepted).
    return "system" if has_request_context() else "command line"


@dataclass(frozen=True)
class AuditFilter:
    """What the Office narrows the log to; empty fields do not filter."""

    action: str = ""
    actor: str = ""
    code_id: int | None = None


@dataclass(frozen=True)
class AuditPage:
    events: Sequence[AuditEvent]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _filtered(query: Select[Any], wanted: AuditFilter) -> Select[Any]:
    if wanted.action:
        query = query.where(AuditEvent.action == wanted.action)
    if wanted.actor:
        query = query.where(func.lower(AuditEvent.actor_label).contains(wanted.actor.lower()))
    if wanted.code_id is not None:
        query = query.where(AuditEvent.code_id == wanted.code_id)
    return query


def audit_page(wanted: AuditFilter, *, page: int = 1, per_page: int = 50) -> AuditPage:
    """One page of the log, newest first."""
    total = db.session.scalar(_filtered(select(func.count(AuditEvent.id)), wanted)) or 0
    events = db.session.scalars(
        _filtered(select(AuditEvent), wanted).order_by(AuditEvent.id.desc())
        .offset((page - 1) * per_page).limit(per_page)
    ).all()
    return AuditPage(events, total, page, per_page)


def audit_rows(wanted: AuditFilter, *, limit: int = 100_000) -> Sequence[AuditEvent]:
    """Every row the filter keeps, newest first (for the CSV export), up to ``limit``."""
    return db.session.scalars(_filtered(select(AuditEvent), wanted).order_by(AuditEvent.id.desc()).limit(limit)).all()
