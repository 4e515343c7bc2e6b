"""Account operations: they mutate and flush; the caller commits."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from codedraft.accounts.models import ApiToken, Invitation, LoginSession, Organisation, User
from codedraft.audit.operations import record_event
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


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000


def set_password(user: User, password: str) -> None:
    """Store a new password hash. Callers that change an existing password use
    :func:`change_password` or :func:`reset_password`, which also end the old sessions."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("Choose a password of at least 10 characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError("Choose a password of at most 1,000 characters.")
    user.password_hash = hash_password(password)


def change_password(user: User, current: str, new: str, *, keep_session: str | None) -> list[str]:
    """The person changes their own password, proving the current one.

    Every other login session of the account ends and every API token is revoked (SECURITY-CASES
    32): whoever learnt the old password may have signed in or made a token with it. Returns the
    ended login-session ids, whose sockets the caller closes after committing.
    """
    if not verify_password(user.password_hash, current):
        raise AccountError("Your current password is not right.")
    set_password(user, new)
    return _after_password_change(user, keep_session=keep_session, by=user)


def reset_password(user: User, new: str, *, by: User | None) -> list[str]:
    """Set a password without the old one (the Office's command line): every session ends."""
    set_password(user, new)
    return _after_password_change(user, keep_session=None, by=by)


def _after_password_change(user: User, *, keep_session: str | None, by: User | None) -> list[str]:
    ended = end_other_login_sessions(user, keep=keep_session)
    revoked = db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    record_event("password.changed", actor=by, subject=user.email,
                 details={"sessions_ended": len(ended), "tokens_revoked": revoked})
    db.session.flush()
    return ended


def end_other_login_sessions(user: User, *, keep: str | None) -> list[str]:
    """End every live login session of ``user`` but ``keep``; returns the ids ended."""
    ended = []
    for login in db.session.scalars(
        select(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
    ):
        if login.id != keep:
            login.ended_at = utcnow()
            ended.append(login.id)
    db.session.flush()
    if ended:
        announce_rights_changed()
    return ended


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


def grant_role(user: User, code: Code, role: Role, working_group: WorkingGroup | None = None, *,
               by: User | None = None) -> Membership:
    """Give ``user`` ``role`` on the code, or on one of its working groups; replaces an earlier role there.

    ``by`` is who grants it, for the audit log (None: the command line or the system).
    """
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
    record_event("role.granted", actor=by, code=code, subject=user.email,
                 details={"role": role.name, "working_group": working_group.name if working_group else None})
    announce_rights_changed()
    return membership


def revoke_role(user: User, code: Code, working_group: WorkingGroup | None = None, *,
                by: User | None = None) -> None:
    group_id = working_group.id if working_group else None
    for membership in db.session.scalars(
        select(Membership).where(Membership.user_id == user.id, Membership.code_id == code.id)
    ):
        if membership.working_group_id == group_id:
            db.session.delete(membership)
            record_event("role.removed", actor=by, code=code, subject=user.email,
                         details={"role": membership.role,
                                  "working_group": working_group.name if working_group else None})
    db.session.flush()
    announce_rights_changed()


def people_visible_to(viewer: User) -> list[User]:
    """The accounts ``viewer`` may see and pick (SECURITY-CASES 33): the Office sees everyone; a code
    admin sees the people of the codes they administer, nobody else."""
    query = select(User).order_by(User.name)
    if not viewer.is_office:
        administered = select(Membership.code_id).where(
            Membership.user_id == viewer.id, Membership.role == Role.admin.name,
            Membership.working_group_id.is_(None),
        )
        query = query.where(User.id.in_(select(Membership.user_id).where(Membership.code_id.in_(administered))))
    return list(db.session.scalars(query))


def may_manage_person(viewer: User, person: User) -> bool:
    """Whether ``viewer`` may change roles or the organisation of ``person``: the Office anyone;
    a code admin only people of codes they administer, and never an Office account."""
    if viewer.is_office:
        return True
    if person.is_office:
        return False
    return any(candidate.id == person.id for candidate in people_visible_to(viewer))


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
    """Create a one-time invitation; returns it with the secret token (shown once, never stored).

    The link grants a role. It sets a password only for an e-mail with no account yet; the owner
    of an existing account must sign in to accept it (SECURITY-CASES 31).
    """
    if "@" not in email or len(email) > 254:
        raise AccountError("Enter an e-mail address.")
    token = new_token()
    invitation = Invitation(
        token_hash=token_digest(token),
        email=normalise_email(email),
        name=name.strip()[:200],
        code_id=code.id if code else None,
        working_group_id=working_group.id if working_group else None,
        role=role.name,
        organisation_id=organisation.id if organisation else None,
        invited_by_id=invited_by.id if invited_by else None,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(invitation)
    db.session.flush()
    record_event("invitation.sent", actor=invited_by, code=code, subject=invitation.email,
                 details={"role": role.name, "working_group": working_group.name if working_group else None,
                          "expires_at": invitation.expires_at.isoformat(timespec="minutes")})
    return invitation, token


def open_invitation(token: str) -> Invitation | None:
    """The invitation behind a link if it is unused and not expired; else None."""
    if not token or len(token) > 200:
        return None
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == token_digest(token)))
    if invitation is None or invitation.used_at is not None or invitation.expires_at < utcnow():
        return None
    return invitation


def invited_account(invitation: Invitation) -> User | None:
    """The account that already holds the invitation's e-mail, if any."""
    return find_user_by_email(invitation.email)


def _spend(invitation: Invitation) -> None:
    """Mark the invitation used, once: of two acceptances racing, only one passes."""
    spent = db.session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if spent != 1:
        raise AccountError("This invitation link is not valid any more.")


def _grant_invited_role(invitation: Invitation, user: User) -> None:
    if invitation.code_id:
        code = db.session.get(Code, invitation.code_id)
        group = db.session.get(WorkingGroup, invitation.working_group_id) if invitation.working_group_id else None
        if code is not None:
            inviter = db.session.get(User, invitation.invited_by_id) if invitation.invited_by_id else None
            grant_role(user, code, Role[invitation.role], group, by=inviter)
    record_event("invitation.accepted", actor=user,
                 code=db.session.get(Code, invitation.code_id) if invitation.code_id else None,
                 subject=invitation.email, details={"role": invitation.role})


def accept_invitation(token: str, password: str) -> User:
    """Spend the invitation of a person who has no account yet: create it with ``password``.

    Raises AccountError when the e-mail has an account already: that person signs in and then
    accepts with :func:`accept_invitation_as` (a link must never set an existing password).
    """
    invitation = open_invitation(token)
    if invitation is None:
        raise AccountError("This invitation link is not valid any more.")
    if invited_account(invitation) is not None:
        raise AccountError("An account with this e-mail address exists already: sign in to accept the invitation.")
    _spend(invitation)
    user = create_user(invitation.email, invitation.name or invitation.email, password)
    if invitation.organisation_id:
        user.organisation_id = invitation.organisation_id
    _grant_invited_role(invitation, user)
    db.session.flush()
    return user


def accept_invitation_as(token: str, user: User) -> None:
    """Spend the invitation for ``user``, who is signed in with their own credentials.

    The invitation must be for that account's e-mail; nothing about the account changes but the
    role granted (its organisation only if it had none).
    """
    invitation = open_invitation(token)
    if invitation is None:
        raise AccountError("This invitation link is not valid any more.")
    if normalise_email(user.email) != invitation.email:
        raise AccountError("This invitation is for another e-mail address. Sign out and sign in with that one.")
    _spend(invitation)
    if invitation.organisation_id and user.organisation_id is None:
        user.organisation_id = invitation.organisation_id
    _grant_invited_role(invitation, user)
    db.session.flush()


#: How precisely a token's last use is recorded (one write a minute at most per token).
TOKEN_USE_PRECISION = timedelta(minutes=1)
#: The longest a personal access token may be made to live, in days.
MAX_TOKEN_DAYS = 3650


def create_api_token(user: User, name: str, *, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new personal access token; returns it with its secret (shown once, stored as a digest)."""
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise AccountError("A token may expire after 1 to 3,650 days.")
    token = new_token("cdt_")
    api_token = ApiToken(
        user_id=user.id, name=name.strip()[:100] or "token", token_hash=token_digest(token),
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    db.session.add(api_token)
    db.session.flush()
    record_event("token.created", actor=user, subject=api_token.name,
                 details={"token_id": api_token.id, "expires_in_days": expires_in_days})
    return api_token, token


def tokens_of(user: User) -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())))


def revoke_api_token(user: User, token_id: int, *, by: User | None = None) -> ApiToken:
    """Revoke one of ``user``'s tokens; it is refused from the next request on."""
    api_token = db.session.get(ApiToken, token_id)
    if api_token is None or api_token.user_id != user.id:
        raise AccountError("No such token.")
    if api_token.revoked_at is None:
        api_token.revoked_at = utcnow()
        record_event("token.revoked", actor=by or user, subject=api_token.name, details={"token_id": api_token.id})
    db.session.flush()
    return api_token


def user_for_api_token(token: str) -> User | None:
    if not token or len(token) > 200:
        return None
    api_token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if api_token is None or not api_token.usable or not api_token.user.is_active:
        return None
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at > TOKEN_USE_PRECISION:
        # Stored at once, not with the request's own commit (a GET has none): the owner's list
        # shows when each token was last used, to the minute.
        api_token.last_used_at = now
        db.session.commit()
    return api_token.user
