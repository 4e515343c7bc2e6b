"""Public reading: which codes and rounds the Office has opened, and what a visitor may see.

Everything here reads only published material: drafts (immutable), the process (working
groups, chairs, rounds and their dates) and the comments of rounds whose responses the Office
published, minus hidden and withdrawn ones. Nothing reads the live text, its history or
presence, so nothing unpublished can reach a public page through these functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _
from sqlalchemy import select

from codedraft.accounts.models import User
from codedraft.audit.operations import record_event
from codedraft.codes.models import Chapter, Clause, Code, Membership, Role, WorkingGroup
from codedraft.drafts.models import Draft, DraftClause
from codedraft.extensions import db
from codedraft.feedback.models import Comment, FeedbackRound
from codedraft.numbers import stored_integer
from codedraft.public.models import DEFAULT_DATA_LICENCE, PublicCode, PublishedRound
from codedraft.public.shared_pages import forget_state
from codedraft.timeutil import utcnow

#: Licences the Office may release the feedback dataset under (SPDX identifiers).
DATA_LICENCES: dict[str, str] = {
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "ODC-By-1.0": "https://opendatacommons.org/licenses/by/1-0/",
}


class PublicError(ValueError):
    """A request the Office made that cannot be carried out; the message is translated and safe
    to show."""


def public_codes() -> list[Code]:
    return list(db.session.scalars(
        select(Code).join(PublicCode, PublicCode.code_id == Code.id).order_by(Code.title)))


def make_public(code: Code, by: User, licence: str = DEFAULT_DATA_LICENCE) -> PublicCode:
    """Open ``code`` to anonymous readers (or change its data licence if it already is)."""
    if licence not in DATA_LICENCES:
        raise PublicError(_("Choose one of the listed licences."))
    setting = db.session.get(PublicCode, code.id)
    if setting is None:
        setting = PublicCode(code_id=code.id, made_public_by_id=by.id)
        db.session.add(setting)
    setting.data_licence = licence
    db.session.flush()
    forget_state()
    record_event("public.opened", actor=by, code=code, details={"licence": licence})
    return setting


def make_private(code: Code, by: User) -> None:
    setting = db.session.get(PublicCode, code.id)
    if setting is not None:
        db.session.delete(setting)
        db.session.flush()
        forget_state()
        record_event("public.closed", actor=by, code=code)


def publish_round(feedback_round: FeedbackRound, by: User, now: datetime | None = None) -> PublishedRound:
    """Publish the comments and responses of a round; only once it has closed, so nobody reads
    others' comments while they can still write their own."""
    if feedback_round.is_open(now) or (now or utcnow()) < feedback_round.opens_at:
        raise PublicError(_("A round's comments can be published once it has closed."))
    published = db.session.get(PublishedRound, feedback_round.id)
    if published is None:
        published = PublishedRound(round_id=feedback_round.id, published_by_id=by.id)
        db.session.add(published)
        db.session.flush()
        record_event("round.published", actor=by, code=db.session.get(Code, feedback_round.code_id),
                     subject=feedback_round.name)
    return published


def unpublish_round(feedback_round: FeedbackRound, by: User) -> None:
    published = db.session.get(PublishedRound, feedback_round.id)
    if published is not None:
        db.session.delete(published)
        db.session.flush()
        record_event("round.unpublished", actor=by, code=db.session.get(Code, feedback_round.code_id),
                     subject=feedback_round.name)


def published_draft(code: Code, number: int) -> Draft | None:
    """The code's draft ``number``; None for a number no column can hold (a URL may carry one)."""
    if stored_integer(number) is None:
        return None
    return db.session.scalar(select(Draft).where(Draft.code_id == code.id, Draft.number == number))


@dataclass(frozen=True)
class RoundStage:
    """Where a code's consultation stands: a round open now, the last one closed, or none yet."""

    state: str  # "open" | "upcoming" | "closed" | "none"
    feedback_round: FeedbackRound | None
    draft: Draft | None


def round_stage(code: Code, now: datetime | None = None) -> RoundStage:
    moment = now or utcnow()
    rounds = rounds_with_drafts(code)
    for state, test in (("open", lambda r: r.is_open(moment)), ("upcoming", lambda r: r.opens_at > moment),
                        ("closed", lambda r: True)):
        for feedback_round, draft in rounds:
            if test(feedback_round):
                return RoundStage(state, feedback_round, draft)
    return RoundStage("none", None, None)


def rounds_with_drafts(code: Code) -> list[tuple[FeedbackRound, Draft]]:
    """Every round of the code with its draft, newest first (the dates are public: the process)."""
    return [(r, d) for r, d in db.session.execute(
        select(FeedbackRound, Draft).join(Draft, Draft.id == FeedbackRound.draft_id)
        .where(FeedbackRound.code_id == code.id).order_by(FeedbackRound.opens_at.desc(), FeedbackRound.id.desc())
    ).all()]


def published_round_ids(code: Code) -> set[int]:
    return set(db.session.scalars(
        select(PublishedRound.round_id).join(FeedbackRound, FeedbackRound.id == PublishedRound.round_id)
        .where(FeedbackRound.code_id == code.id)))


@dataclass(frozen=True)
class GroupOnRecord:
    """A working group as the public sees it: its name, its chapters and its chairs."""

    name: str
    chapters: list[str]
    chairs: list[str]


def working_groups_on_record(code: Code) -> list[GroupOnRecord]:
    """The working groups with their chapters and chairs (the names the process makes public;
    members and reviewers are not listed)."""
    chairs: dict[int, list[str]] = {}
    for group_id, name in db.session.execute(
        select(Membership.working_group_id, User.name).join(User, User.id == Membership.user_id)
        .where(Membership.code_id == code.id, Membership.role == Role.chair.name,
               Membership.working_group_id.is_not(None), User.is_active_account.is_(True))
        .order_by(User.name)
    ):
        chairs.setdefault(group_id, []).append(name)
    chapters: dict[int, list[str]] = {}
    for chapter in db.session.scalars(select(Chapter).where(Chapter.code_id == code.id).order_by(Chapter.position)):
        if chapter.working_group_id is not None:
            label = f"{chapter.number} {chapter.title}".strip()
            chapters.setdefault(chapter.working_group_id, []).append(label)
    groups = db.session.scalars(select(WorkingGroup).where(WorkingGroup.code_id == code.id).order_by(WorkingGroup.name))
    return [GroupOnRecord(g.name, chapters.get(g.id, []), chairs.get(g.id, [])) for g in groups]


@dataclass(frozen=True)
class PublishedComment:
    """A comment of a published round as the public reads it: who it speaks for (organisation
    and category, never the person), what it says, and the drafters' response."""

    id: int
    clause_uid: str
    clause_heading: str
    round_name: str
    organisation: str
    category: str
    kind: str
    quote: str | None
    body: str
    body_html: str
    status: str
    disposition: str | None
    disposition_reason: str
    created_at: datetime


def published_comments(code: Code, round_ids: set[int] | None = None) -> list[PublishedComment]:
    """The visible comments of the code's published rounds, in reading order of their clauses.

    Hidden (moderated) and withdrawn comments are left out; replies are discussion among
    participants, not the published response, and stay inside.
    """
    ids = published_round_ids(code) if round_ids is None else round_ids
    if not ids:
        return []
    # The clause as the round's draft published it: the live clause may carry a newer,
    # unpublished number or title.
    version = (DraftClause.draft_id == FeedbackRound.draft_id) & (DraftClause.clause_uid == Clause.uid)
    rows = db.session.execute(
        select(Comment, Clause.uid, DraftClause, FeedbackRound.name)
        .join(Clause, Clause.id == Comment.clause_id)
        .join(FeedbackRound, FeedbackRound.id == Comment.round_id)
        .join(DraftClause, version)
        .where(Comment.code_id == code.id, Comment.round_id.in_(ids), Comment.hidden.is_(False),
               Comment.status != "withdrawn")
        .order_by(FeedbackRound.opens_at, DraftClause.position, Comment.created_at, Comment.id)
    ).all()
    return [
        PublishedComment(
            id=comment.id, clause_uid=uid, clause_heading=published.heading, round_name=round_name,
            organisation=comment.organisation, category=comment.category, kind=comment.kind,
            quote=_published_quote(comment.quote, published.body), body=comment.body, body_html=comment.body_html,
            status=comment.status, disposition=comment.disposition,
            disposition_reason=comment.disposition_reason, created_at=comment.created_at,
        )
        for comment, uid, published, round_name in rows
    ]


def _published_quote(quote: str | None, published_body: str) -> str | None:
    """The quoted passage, if the published text holds it. An anchor made on the live text can
    quote words that were never published; those are left out rather than leaked."""
    if quote and quote in published_body:
        return quote
    return None
