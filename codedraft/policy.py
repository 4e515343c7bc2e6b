"""Who may do what: the one permission policy, used by views, the API and socket handlers.

Every check reads the database, never a copy held by a session or a socket, so a role
change or a logout takes effect on the very next request or message (SECURITY-CASES 5, 6).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, select

from codedraft.accounts.models import LoginSession, User
from codedraft.codes.models import Chapter, Clause, Code, Membership, Role, WorkingGroup
from codedraft.extensions import db
from codedraft.public.models import PublicCode


def code_role(user: User | None, code_id: int) -> Role | None:
    """The person's role on the code as a whole (the Office is admin everywhere).

    A role held only in a working group still lets the person read the code: they count
    as an observer outside their group.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_office:
        return Role.admin
    rows = db.session.execute(
        select(Membership.role, Membership.working_group_id).where(
            Membership.user_id == user.id, Membership.code_id == code_id
        )
    ).all()
    if not rows:
        return None
    code_wide = [Role[role] for role, group in rows if group is None]
    return max(code_wide) if code_wide else Role.observer


def clause_role(user: User | None, clause: Clause) -> Role | None:
    """The role that governs this clause: code-wide, raised by a role in its working group."""
    role = code_role(user, clause.code_id)
    if role is None or user is None or user.is_office:
        return role
    group_id = db.session.scalar(select(Chapter.working_group_id).where(Chapter.id == clause.chapter_id))
    if group_id is None:
        return role
    group_role = db.session.scalar(
        select(Membership.role).where(
            Membership.user_id == user.id, Membership.working_group_id == group_id
        )
    )
    return max(role, Role[group_role]) if group_role else role


def can_view_code(user: User | None, code: Code) -> bool:
    return code_role(user, code.id) is not None


def can_administer_code(user: User | None, code: Code) -> bool:
    return code_role(user, code.id) == Role.admin


def can_create_code(user: User | None) -> bool:
    return bool(user and user.is_authenticated and user.is_office)


def can_view_clause(user: User | None, clause: Clause) -> bool:
    return clause_role(user, clause) is not None


def can_edit_clause(user: User | None, clause: Clause) -> bool:
    """Chairs edit their group's clauses; members too where the group allows it."""
    role = clause_role(user, clause)
    if role is None or clause.withdrawn:
        return False
    if role >= Role.chair:
        return True
    if role == Role.member:
        group = db.session.scalar(
            select(WorkingGroup).join(Chapter, Chapter.working_group_id == WorkingGroup.id).where(
                Chapter.id == clause.chapter_id
            )
        )
        return group is None or group.members_may_edit
    return False


def can_suggest_on_clause(user: User | None, clause: Clause) -> bool:
    """Reviewers and everyone above them may suggest changes in the editor (suggestion mode),
    which change the text only once someone who may edit accepts them."""
    role = clause_role(user, clause)
    return role is not None and role >= Role.reviewer and not clause.withdrawn


def can_decide_suggestions(user: User | None, clause: Clause) -> bool:
    """Whoever may edit the clause accepts and rejects its suggestions."""
    return can_edit_clause(user, clause)


def can_comment_on_clause(user: User | None, clause: Clause) -> bool:
    role = clause_role(user, clause)
    return role is not None and role >= Role.reviewer


def can_moderate(user: User | None, code: Code) -> bool:
    return can_administer_code(user, code)


def can_answer_feedback(user: User | None, clause: Clause) -> bool:
    role = clause_role(user, clause)
    return role is not None and role >= Role.chair


def can_publish_draft(user: User | None, code: Code) -> bool:
    return can_administer_code(user, code)


def can_export_feedback(user: User | None, code: Code) -> bool:
    """The feedback dataset (every comment with author and organisation) is for the people who
    answer it: chairs and vice-chairs of the code, and its admins (the Office)."""
    role = code_role(user, code.id)
    return role is not None and role >= Role.chair


@dataclass(frozen=True)
class ClauseRights:
    """What one person may do with one clause, as computed by :func:`clause_rights`."""

    clause_id: int
    code_id: int
    role: Role
    may_edit: bool
    # May add and withdraw their own suggestions (can_suggest_on_clause).
    may_suggest: bool = False


def clause_rights(user: User | None, uid: str) -> ClauseRights | None:
    """The person's role on the clause ``uid`` and whether they may edit it, in one query.

    Gives the same answers as :func:`clause_role`, :func:`can_edit_clause` and
    :func:`can_suggest_on_clause` together (a test
    holds them to it). None when the clause does not exist or the person may not see it.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    rows = db.session.execute(
        _with_rights(select(*_RIGHTS_COLUMNS, User.is_office).select_from(User), uid, member=User.id)
        .where(User.id == user.id, Clause.id.is_not(None))
    ).all()
    return _rights_from_rows(rows)


class SocketRights(NamedTuple):
    """The answer for one co-editing message: is the login alive, and what may it do here."""

    login_alive: bool
    user_id: int | None
    rights: ClauseRights | None


def socket_rights(login_session_id: str, uid: str) -> SocketRights:
    """Whether the login session is still alive (not ended, its user active) and the user's
    rights on clause ``uid``, in one round trip of plain rows.

    Every co-editing message asks this, live, so a logout or a role change takes effect on the
    next message (SECURITY-CASES 5, 6). Profiling 50 typists showed the two ORM look-ups it
    replaces (login session, then user, then rights) taking half of the server's CPU.
    """
    # Core rows on the session's connection: the ORM layer tripled the cost and adds nothing here.
    rows = db.session.connection().execute(_socket_rights_query(), {"login": login_session_id, "uid": uid}).all()
    if not rows:
        return SocketRights(login_alive=False, user_id=None, rights=None)
    user_id = rows[0][-1]
    found = [row[:-1] for row in rows if row[0] is not None]
    return SocketRights(login_alive=True, user_id=user_id, rights=_rights_from_rows(found))


@cache
def _socket_rights_query() -> Select[Any]:
    """Built once: constructing the statement cost more than running it (profiled)."""
    query = (
        select(*_RIGHTS_COLUMNS, User.is_office, LoginSession.user_id)
        .select_from(LoginSession)
        .join(User, (User.id == LoginSession.user_id) & User.is_active_account & LoginSession.ended_at.is_(None))
    )
    return _with_rights(query, bindparam("uid"), member=LoginSession.user_id).where(
        LoginSession.id == bindparam("login"))


_RIGHTS_COLUMNS = (Clause.id, Clause.code_id, Clause.withdrawn, Chapter.working_group_id,
                   WorkingGroup.members_may_edit, Membership.role, Membership.working_group_id)


def _with_rights(query: Select[Any], uid: Any, *, member: Any) -> Select[Any]:
    """``query`` outer-joined to clause ``uid``, its chapter's group and ``member``'s memberships
    on its code: one row per membership, and one row with nulls when the clause is missing."""
    return (query.outerjoin(Clause, Clause.uid == uid)
            .outerjoin(Chapter, Chapter.id == Clause.chapter_id)
            .outerjoin(WorkingGroup, WorkingGroup.id == Chapter.working_group_id)
            .outerjoin(Membership, (Membership.user_id == member) & (Membership.code_id == Clause.code_id)))


def _rights_from_rows(rows: Sequence[Sequence[Any]]) -> ClauseRights | None:
    """Rights from rows of (clause id, code id, withdrawn, chapter's group, members may edit,
    membership role, membership group, is office); one row per membership on the code."""
    if not rows:
        return None
    clause_id, code_id, withdrawn, group_id, members_may_edit = rows[0][:5]
    if rows[0][7]:
        role = Role.admin
    else:
        # Positional: the row has two working_group_id columns (the chapter's and the membership's).
        held = [(Role[r[5]], r[6]) for r in rows if r[5] is not None]
        if not held:
            return None
        code_wide = [r for r, group in held if group is None]
        role = max(code_wide) if code_wide else Role.observer
        in_group = [r for r, group in held if group is not None and group == group_id]
        if in_group:
            role = max(role, max(in_group))
    may_edit = not withdrawn and (
        role >= Role.chair or (role == Role.member and (group_id is None or bool(members_may_edit)))
    )
    may_suggest = not withdrawn and role >= Role.reviewer
    return ClauseRights(clause_id=clause_id, code_id=code_id, role=role, may_edit=may_edit, may_suggest=may_suggest)


# --- Anonymous readers -----------------------------------------------------------------------


def public_setting(code: Code) -> PublicCode | None:
    """The code's public-reading setting, or None when only its participants may read it.

    With it, anyone, signed in or not (a pending or refused applicant included), may read the
    code's published drafts, the redlines between them, its process and the comments and
    responses of its published rounds, through the public pages, which read nothing else.
    Everything else keeps asking :func:`code_role`, which gives such readers no role at all.
    """
    return db.session.get(PublicCode, code.id)
