"""Applying for an account, and the Office's decisions on applications.

An application creates the account at once, with no role: the applicant can sign in and see
where the application stands, and reads only what the public can. Approval gives the account
its organisation (shared with the organisation's other people; its category is the Office's
to confirm) and the reviewer role on the code applied to. Refusal keeps the account roleless,
with the Office's reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _
from sqlalchemy import select

from codedraft import policy
from codedraft.accounts import operations as accounts
from codedraft.accounts.models import Organisation, User
from codedraft.audit.operations import record_event
from codedraft.codes.models import Code, Membership, Role
from codedraft.extensions import db
from codedraft.registration.models import APPROVED, PENDING, REFUSED, Application
from codedraft.security import hash_password
from codedraft.timeutil import utcnow

MAX_MESSAGE_CHARS = 2000


class RegistrationError(ValueError):
    """The application or decision cannot be made as asked; the message is translated and safe
    to show (it never says whether an e-mail address has an account)."""


@dataclass(frozen=True)
class ApplicationForm:
    """What an applicant typed, as received."""

    email: str
    name: str
    password: str
    password_again: str
    organisation: str
    category: str
    message: str


def _checked(form: ApplicationForm) -> None:
    if "@" not in form.email or len(form.email) > 254 or any(c.isspace() for c in form.email.strip()):
        raise RegistrationError(_("Enter your e-mail address."))
    if not form.name.strip() or len(form.name) > 200:
        raise RegistrationError(_("Enter your name (at most 200 characters)."))
    if form.password != form.password_again:
        raise RegistrationError(_("The two passwords differ."))
    if not accounts.MIN_PASSWORD_LENGTH <= len(form.password) <= accounts.MAX_PASSWORD_LENGTH:
        raise RegistrationError(_("A password needs at least %(n)s characters.", n=accounts.MIN_PASSWORD_LENGTH))
    if form.category not in dict(current_app.config["STAKEHOLDER_CATEGORIES"]):
        raise RegistrationError(_("Choose a stakeholder category."))
    if len(form.organisation) > 200 or len(form.message) > MAX_MESSAGE_CHARS:
        raise RegistrationError(_("The organisation or the message is too long."))


def apply(code: Code, form: ApplicationForm) -> Application | None:
    """File an application to review ``code``. Raises RegistrationError for a form that cannot be
    accepted. Returns None, having done nothing, when the e-mail address already has an account:
    the caller answers exactly as for a new application, and the hashing below is done either
    way, so neither the page nor its timing tells whether the address is known."""
    _checked(form)
    password_hash = hash_password(form.password)
    if accounts.find_user_by_email(form.email) is not None:
        return None
    try:
        user = accounts.create_user(form.email, form.name, None)
    except accounts.AccountError:
        return None  # filed a moment ago by someone else: the same silent answer
    user.password_hash = password_hash
    application = Application(user_id=user.id, code_id=code.id, organisation_name=form.organisation.strip(),
                              category=form.category, message=form.message.strip())
    db.session.add(application)
    db.session.flush()
    return application


def _checked_claim(organisation: str, category: str, message: str) -> None:
    if category not in dict(current_app.config["STAKEHOLDER_CATEGORIES"]):
        raise RegistrationError(_("Choose a stakeholder category."))
    if len(organisation) > 200 or len(message) > MAX_MESSAGE_CHARS:
        raise RegistrationError(_("The organisation or the message is too long."))


def apply_as(user: User, code: Code, *, organisation: str, category: str, message: str) -> Application:
    """File the application of someone who has an account already (one made at sign-in with an
    identity provider, or one without any role): the same queue, the same decisions. A refused
    applicant may apply again (the one application is reopened); someone with a pending or an
    approved application, a role on the code, or the Office's rights may not."""
    _checked_claim(organisation, category, message)
    if user.is_office or policy.code_role(user, code.id) is not None:
        raise RegistrationError(_("You take part in this code already."))
    application = application_of(user)
    if application is not None and application.status != REFUSED:
        raise RegistrationError(_("You have applied already; the Office decides on it."))
    if application is None:
        application = Application(user_id=user.id)
        db.session.add(application)
    application.code_id, application.status = code.id, PENDING
    application.organisation_name, application.category = organisation.strip(), category
    application.message, application.reason = message.strip(), ""
    application.decided_at = application.decided_by_id = None
    application.created_at = utcnow()
    db.session.flush()
    record_event("registration.applied", actor=user, code=code, subject=user.email,
                 details={"organisation": organisation.strip()[:200], "category": category})
    return application


def may_apply(user: User | Any) -> bool:
    """Whether the person can file an application: a visitor (with a new account), or someone
    signed in with no role anywhere, not the Office, and no application but a refused one."""
    if not user.is_authenticated:
        return True
    if user.is_office or db.session.scalar(select(Membership.id).where(Membership.user_id == user.id).limit(1)):
        return False
    application = application_of(user)
    return application is None or application.status == REFUSED


def application_of(user: User | None) -> Application | None:
    if user is None or not user.is_authenticated:
        return None
    return db.session.scalar(select(Application).where(Application.user_id == user.id))


def pending_applications() -> list[tuple[Application, Code]]:
    return [(a, c) for a, c in db.session.execute(
        select(Application, Code).join(Code, Code.id == Application.code_id)
        .where(Application.status == PENDING).order_by(Application.created_at, Application.id))]


def decided_applications(limit: int = 50) -> list[tuple[Application, Code]]:
    return [(a, c) for a, c in db.session.execute(
        select(Application, Code).join(Code, Code.id == Application.code_id)
        .where(Application.status != PENDING).order_by(Application.decided_at.desc()).limit(limit))]


def organisations() -> list[Organisation]:
    return list(db.session.scalars(select(Organisation).order_by(Organisation.name)))


def _pending(application: Application) -> None:
    if application.status != PENDING:
        raise RegistrationError(_("This application has already been decided."))


def approve(application: Application, by: User, *, organisation: str, category: str) -> None:
    """Approve: the applicant joins ``organisation`` (shared with its people; created if new)
    with the ``category`` the Office confirms, and becomes a reviewer of the code applied to."""
    _pending(application)
    if category not in dict(current_app.config["STAKEHOLDER_CATEGORIES"]):
        raise RegistrationError(_("Choose a stakeholder category."))
    name = organisation.strip()  # too long: refused at the flush, never cut
    user = application.applicant
    user.organisation = accounts.get_or_create_organisation(name, category) if name else None
    code = db.session.get(Code, application.code_id)
    assert code is not None  # the application row goes with its code (ON DELETE CASCADE)
    accounts.grant_role(user, code, Role.reviewer, by=by)
    application.status, application.decided_at, application.decided_by_id = APPROVED, utcnow(), by.id
    db.session.flush()
    record_event("registration.approved", actor=by, code=code, subject=user.email,
                 details={"organisation": name, "category": category})


def refuse(application: Application, by: User, reason: str) -> None:
    """Refuse with a reason the applicant reads; the account keeps no role."""
    _pending(application)
    reason = reason.strip()
    if not reason:
        raise RegistrationError(_("Give the reason for refusing the application."))
    application.status, application.reason = REFUSED, reason[:MAX_MESSAGE_CHARS]
    application.decided_at, application.decided_by_id = utcnow(), by.id
    db.session.flush()
    record_event("registration.refused", actor=by, code=db.session.get(Code, application.code_id),
                 subject=application.applicant.email, details={"reason": reason[:300]})
