"""Batched activity notifications, mail preferences, immediate mails and the daily digest.

Operations flush; the view commits once, and only then calls ``mail_now`` so that a message
never announces something that was rolled back.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flask import current_app, url_for
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import select, update

from codedraft.accounts.models import User
from codedraft.codes.models import Chapter, Clause, Code, Membership, Role
from codedraft.extensions import db
from codedraft.feedback.models import Comment, Notification
from codedraft.i18n import SOURCE_LANGUAGE
from codedraft.mail import MailError, mail_enabled, send_mail
from codedraft.notifications import messages as said
from codedraft.notifications.models import (
    DEFAULT_MAIL_MODE,
    MAIL_DAILY,
    MAIL_IMMEDIATELY,
    MAIL_MODES,
    NotificationPreference,
)
from codedraft.timeutil import utcnow

KIND_ACTIVITY = "activity"


class PreferenceError(ValueError):
    """Not a mail preference; the message is safe to show."""


# --- preferences -----------------------------------------------------------------------------


def mail_language(user_id: int) -> str:
    """The language mail reaches the person in: the one they saved, else the site's default."""
    chosen = db.session.get(NotificationPreference, user_id)
    languages = current_app.config["LANGUAGES"]
    if chosen is not None and chosen.language in languages:
        return str(chosen.language)
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", SOURCE_LANGUAGE)
    return str(default) if default in languages else str(languages[0])


def set_language(user: User, language: str) -> None:
    """Raises PreferenceError for a language the interface does not speak."""
    if language not in current_app.config["LANGUAGES"]:
        raise PreferenceError(_("Choose a language."))
    chosen = db.session.get(NotificationPreference, user.id)
    if chosen is None:
        db.session.add(NotificationPreference(user_id=user.id, mail=DEFAULT_MAIL_MODE, language=language))
    else:
        chosen.language = language
    db.session.flush()


def adopt_language(user: User, language: str) -> None:
    """Make ``language`` the mail language of someone who never chose one (called at sign-in
    with the language they read in); a language chosen before stays. Flushes."""
    chosen = db.session.get(NotificationPreference, user.id)
    if language not in current_app.config["LANGUAGES"] or (chosen is not None and chosen.language):
        return
    if chosen is None:
        db.session.add(NotificationPreference(user_id=user.id, mail=DEFAULT_MAIL_MODE, language=language))
    else:
        chosen.language = language
    db.session.flush()


def mail_mode(user_id: int) -> str:
    chosen = db.session.get(NotificationPreference, user_id)
    return chosen.mail if chosen else DEFAULT_MAIL_MODE


def set_mail_mode(user: User, mode: str) -> None:
    """Raises PreferenceError for a value that is not one of MAIL_MODES."""
    if mode not in MAIL_MODES:
        raise PreferenceError(_("Choose how you want to receive mail."))
    chosen = db.session.get(NotificationPreference, user.id)
    if chosen is None:
        db.session.add(NotificationPreference(user_id=user.id, mail=mode))
    else:
        chosen.mail = mode
    db.session.flush()


# --- who is told -----------------------------------------------------------------------------


def working_group_of(clause: Clause) -> int | None:
    return db.session.scalar(select(Chapter.working_group_id).where(Chapter.id == clause.chapter_id))


def people_to_tell(clause: Clause) -> list[int]:
    """The chairs and members of the working group that owns the clause's chapter."""
    group_id = working_group_of(clause)
    if group_id is None:
        return []
    roles = [Role.member.name, Role.chair.name]
    return list(db.session.scalars(
        select(Membership.user_id).join(User, User.id == Membership.user_id)
        .where(Membership.working_group_id == group_id, Membership.role.in_(roles),
               User.is_active_account.is_(True))
        .distinct().order_by(Membership.user_id)
    ))


def clause_heading(clause: Clause) -> str:
    return " ".join(part for part in (clause.number, clause.title) if part) or clause.uid


def activity_message(clause: Clause, comments: int, amendments: int) -> str:
    """The batch's English text (its fallback); readers see it said in their language."""
    with force_locale(SOURCE_LANGUAGE):
        return said.render(said.ACTIVITY, {"clause": clause_heading(clause)}, comments=comments,
                           amendments=amendments)


def record_activity(clause: Clause, comment: Comment) -> list[Notification]:
    """Tell the clause's working group of a new comment or amendment, once per clause per batch.

    A batch is a person's unread activity notification for the clause: later activity adds to
    its counts. Reading it (or marking all read) closes the batch; the next comment opens a new
    one. Returns the notifications opened now (the ones to mail at once to those who asked).
    The author is not told of their own comment.
    """
    amendment = comment.kind == "amendment"
    return record_activity_counts(clause, comment.author_id, comments=0 if amendment else 1,
                                  amendments=1 if amendment else 0)


def record_activity_counts(clause: Clause, author_id: int | None, *, comments: int = 0,
                           amendments: int = 0) -> list[Notification]:
    """``record_activity`` for many comments at once (an import adds hundreds to a clause)."""
    opened: list[Notification] = []
    link = _clause_feedback_link(clause)
    for user_id in people_to_tell(clause):
        if user_id == author_id:
            continue
        batch = db.session.scalar(
            select(Notification).where(Notification.user_id == user_id, Notification.clause_id == clause.id,
                                       Notification.kind == KIND_ACTIVITY, Notification.read_at.is_(None))
            .order_by(Notification.id.desc()).limit(1)
        )
        if batch is None:
            batch = Notification(user_id=user_id, kind=KIND_ACTIVITY, clause_id=clause.id, link=link,
                                 comment_count=0, amendment_count=0, message="", message_key=said.ACTIVITY,
                                 message_params=said.encode({"clause": clause_heading(clause)}))
            db.session.add(batch)
            opened.append(batch)
        batch.amendment_count = (batch.amendment_count or 0) + amendments
        batch.comment_count = (batch.comment_count or 0) + comments
        batch.message = activity_message(clause, batch.comment_count, batch.amendment_count)
        batch.updated_at = utcnow()
    db.session.flush()
    return opened


def _clause_feedback_link(clause: Clause) -> str:
    code_slug = db.session.scalar(select(Code.slug).where(Code.id == clause.code_id))
    try:
        return url_for("feedback.clause_feedback", slug=code_slug, uid=clause.uid)
    except RuntimeError:  # outside a request (an import command): a path is enough
        return f"/codes/{code_slug}/clauses/{clause.uid}/feedback"


# --- reading ---------------------------------------------------------------------------------


def mark_read(user: User, notification_id: int) -> bool:
    """Mark one of the person's notifications read; False if it is not theirs."""
    note = db.session.get(Notification, notification_id)
    if note is None or note.user_id != user.id:
        return False
    if note.read_at is None:
        note.read_at = utcnow()
    return True


# --- mail --------------------------------------------------------------------------------------


def mail_now(notification_ids: Iterable[int]) -> int:
    """After the commit: mail each new batch to its person if they chose "immediately"; marks
    them mailed (flushes: the caller commits). Returns how many were sent. A failure is logged
    and leaves the notification un-mailed: immediate mail is best effort (the daily digest is
    for those who chose it), the in-app notification is the record.
    """
    if not mail_enabled():
        return 0
    sent = 0
    for note_id in notification_ids:
        note = db.session.get(Notification, note_id)
        if note is None or note.emailed_at is not None or mail_mode(note.user_id) != MAIL_IMMEDIATELY:
            continue
        user = db.session.get(User, note.user_id)
        if user is None:
            continue
        with force_locale(mail_language(user.id)):
            message = said.say(note)
            text = _("%(message)s\n\nOpen: %(link)s\n", message=message, link=absolute(note.link))
        try:
            send_mail(user.email, message, text)
        except MailError:
            current_app.logger.exception("notification mail to user %s failed", user.id)
            continue
        note.emailed_at = utcnow()
        sent += 1
    db.session.flush()
    return sent


def absolute(link: str) -> str:
    if not link or link.startswith(("http://", "https://")):
        return link
    return str(current_app.config.get("CODEDRAFT_BASE_URL", "")).rstrip("/") + link


@dataclass
class DigestReport:
    sent: int = 0
    failed: list[str] = field(default_factory=list)


def send_daily_digests() -> DigestReport:
    """Mail each person who chose the daily digest their unread notifications not mailed yet,
    in one message, and mark them mailed. Run once a day (``codedraft mail-digest``).
    Commits per person, so a failure for one does not resend the others' tomorrow. Each mail is
    in its recipient's saved language."""
    report = DigestReport()
    if not mail_enabled():
        return report
    _send_digests(report)
    return report


def _send_digests(report: DigestReport) -> None:
    pending = db.session.execute(
        select(Notification.user_id).where(Notification.read_at.is_(None), Notification.emailed_at.is_(None))
        .distinct()
    ).scalars().all()
    for user_id in pending:
        if mail_mode(user_id) != MAIL_DAILY:
            continue
        user = db.session.get(User, user_id)
        if user is None or not user.is_active_account:
            continue
        notes = list(db.session.scalars(
            select(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None),
                                       Notification.emailed_at.is_(None))
            .order_by(Notification.updated_at, Notification.id)
        ))
        with force_locale(mail_language(user_id)):
            lines = [f"- {said.say(n)}" + (f"\n  {absolute(n.link)}" if n.link else "") for n in notes]
            text = _("Your CodeDraft notifications of the day:\n\n%(lines)s\n", lines="\n".join(lines))
            subject = ngettext("CodeDraft: %(num)d notification", "CodeDraft: %(num)d notifications", len(notes))
        try:
            send_mail(user.email, subject, text)
        except MailError:
            current_app.logger.exception("digest mail to user %s failed", user_id)
            report.failed.append(user.email)
            db.session.rollback()
            continue
        db.session.execute(update(Notification).where(Notification.id.in_([n.id for n in notes]))
                           .values(emailed_at=utcnow()))
        db.session.commit()
        report.sent += 1
