"""Who may see the live history of unpublished text: a per-code setting.

The history pages (sessions with their diffs, keystroke replay, blame) show text between drafts,
word by word and keystroke by keystroke. By default only the drafting team sees them (members,
chairs and the code's admins, the Office included); a code's admin may open them to everyone who
may read the clause. Published drafts and their redlines are not affected.
"""
from __future__ import annotations

from sqlalchemy import select

from codedraft import policy
from codedraft.accounts.models import User
from codedraft.codes.models import Clause, Code, Role
from codedraft.collab.models import HistoryAccess
from codedraft.extensions import db
from codedraft.timeutil import utcnow

DRAFTING_TEAM = "drafting"
PARTICIPANTS = "participants"
AUDIENCES = (DRAFTING_TEAM, PARTICIPANTS)


class HistoryAccessError(ValueError):
    """An unknown audience, or a person who may not change the setting; safe to show."""


def history_audience(code_id: int) -> str:
    """The code's audience for live history; the drafting team when nothing was chosen."""
    audience = db.session.scalar(select(HistoryAccess.audience).where(HistoryAccess.code_id == code_id))
    return audience if audience in AUDIENCES else DRAFTING_TEAM


def can_see_live_history(user: User | None, clause: Clause) -> bool:
    """Whether ``user`` may replay and blame the unpublished text of ``clause``.

    Read live from the role and the setting, like every other permission.
    """
    role = policy.clause_role(user, clause)
    if role is None:
        return False
    if role >= Role.member:
        return True
    return history_audience(clause.code_id) == PARTICIPANTS


def set_history_audience(code: Code, audience: str, by: User) -> None:
    """Choose who sees the code's live history; the code's admins only. Flushes."""
    if not policy.can_administer_code(by, code):
        raise HistoryAccessError("Only the code's administrators choose who sees its live history.")
    if audience not in AUDIENCES:
        raise HistoryAccessError("Choose the drafting team or every participant.")
    row = db.session.get(HistoryAccess, code.id)
    if row is None:
        row = HistoryAccess(code_id=code.id)
        db.session.add(row)
    row.audience, row.changed_by_id, row.changed_at = audience, by.id, utcnow()
    db.session.flush()
