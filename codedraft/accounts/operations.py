"""Account operations: they mutate and flush; the caller commits."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from codedraft.accounts.models import ApiToken, Invitation, LoginSession, Organisation, User
from codedraft.codes.models import Code, Membership, Role, WorkingGroup
from codedraft.extensions import db
from codedraft.security import hash_password, new_token, token_digest, verify_password
from codedraft.signals import announce_rights_changed
from codedraft.timeutil import utcnow


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message is safe to show."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def create_user(
    email: str,
    name: str,
    password: str | None = None,
    *,
    organisation: Organisation | None = None,
    is_office: bool = False,
) -> User:
    if find_user_by_email(email):
        raise AccountError("An account with this e-mail address exists already.")
    user = User(
        email=normalise_email(email),
        name=name.strip(),
        password_hash=hash_password(password) if password else None,
        organisation=organisation,
        is_office=is_office,
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user for these credentials, or None. Takes the same time whether or not the account exists."""
    user = find_user_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    return user if ok and user and user.is_active else None


def set_password(user: User, password: str) -> None:
    if len(password) < 10:
        raise AccountError("Choose a password of at least 10 characters.")
    user.password_hash = hash_password(password)


def start_login_session(user: User) -> LoginSession:
    login = LoginSession(id=new_token(), user_id=user.id)
    db.session.add(login)
    db.session.flush()
    return login


def end_login_session(session_id: str | None) -> None:
    if not session_id:
        return
    login = db.session.get(LoginSession, session_id)
    if login and login.ended_at is None:
        login.ended_at = utcnow()
        announce_rights_changed()


def live_login_session(session_id: str | None) -> LoginSession | None:
    """The login session if it exists and has not ended: checked on every request and message."""
    if not session_id:
        return None
    login = db.session.get(LoginSession, session_id)
    if login is None or login.ended_at is not None or not login.user.is_active:
        return None
    return login


def get_or_create_organisation(name: str, category: str) -> Organisation:
    organisation = db.session.scalar(select(Organisation).where(Organisation.name == name))
    if organisation is None:
        organisation = Organisation(name=name, category=category)
        db.session.add(organisation)
        db.session.flush()
    else:
        organisation.category = category
    return organisation


def grant_role(user: User, code: Code, role: Role, working_group: WorkingGroup | None = None) -> Membership:
    """Give ``user`` ``role`` on the code, or on one of its working groups; replaces an earlier role there."""
    if working_group is not None and working_group.code_id != code.id:
        raise AccountError("That working group belongs to another code.")
    group_id = working_group.id if working_group else None
    membership = db.session.scalar(
        select(Membership).where(
            Membership.user_id == user.id,
            Membership.code_id == code.id,
            Membership.working_group_id.is_(None) if group_id is None else Membership.working_group_id == group_id,
        )
    )
    if membership is None:
        membership = Membership(user_id=user.id, code_id=code.id, working_group_id=group_id, role=role.name)
        db.session.add(membership)
    else:
        membership.role = role.name
    db.session.flush()
    announce_rights_changed()
    return membership


def revoke_role(user: User, code: Code, working_group: WorkingGroup | None = None) -> None:
    group_id = working_group.id if working_group else None
    for membership in db.session.scalars(
        select(Membership).where(Membership.user_id == user.id, Membership.code_id == code.id)
    ):
        if membership.working_group_id == group_id:
            db.session.delete(membership)
    db.session.flush()
    announce_rights_changed()


def invite(
    email: str,
    name: str,
    *,
    code: Code | None,
    role: Role,
    working_group: WorkingGroup | None = None,
    organisation: Organisation | None = None,
    invited_by: User | None = None,
    days: int = 14,
) -> tuple[Invitation, str]:
    """Create a one-time invitation; returns it with the secret token (shown once, never stored)."""
    token = new_token()
    invitation = Invitation(
        token_hash=token_digest(token),
        email=normalise_email(email),
        name=name.strip(),
        code_id=code.id if code else None,
        working_group_id=working_group.id if working_group else None,
        role=role.name,
        organisation_id=organisation.id if organisation else None,
        invited_by_id=invited_by.id if invited_by else None,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation, token


def open_invitation(token: str) -> Invitation | None:
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == token_digest(token)))
    if invitation is None or invitation.used_at is not None or invitation.expires_at < utcnow():
        return None
    return invitation


def accept_invitation(token: str, password: str) -> User:
    """Spend the invitation: create (or reuse) the account and grant its role."""
    invitation = open_invitation(token)
    if invitation is None:
        raise AccountError("This invitation link is not valid any more.")
    user = find_user_by_email(invitation.email)
    if user is None:
        user = create_user(invitation.email, invitation.name)
    set_password(user, password)
    if invitation.organisation_id:
        user.organisation_id = invitation.organisation_id
    if invitation.code_id:
        code = db.session.get(Code, invitation.code_id)
        group = db.session.get(WorkingGroup, invitation.working_group_id) if invitation.working_group_id else None
        if code is not None:
            grant_role(user, code, Role[invitation.role], group)
    invitation.used_at = utcnow()
    db.session.flush()
    return user


def create_api_token(user: User, name: str) -> tuple[ApiToken, str]:
    token = new_token("cdt_")
    api_token = ApiToken(user_id=user.id, name=name.strip() or "token", token_hash=token_digest(token))
    db.session.add(api_token)
    db.session.flush()
    return api_token, token


def user_for_api_token(token: str) -> User | None:
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if api_token is None or api_token.revoked_at is not None or not api_token.user.is_active:
        return None
    api_token.last_used_at = utcnow()
    return api_token.user
