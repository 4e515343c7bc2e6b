"""The business of feedback: rounds, comments and their anchors, replies, support, amendments,
dispositions, moderation, notifications, and carrying comments to the next draft.

Operations mutate and flush; the view commits once. Anything that touches a clause's live
document goes through the co-editing store, under that clause's lock.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true, update

from codedraft import policy
from codedraft.accounts.models import User
from codedraft.codes.models import Chapter, Clause, Code
from codedraft.collab.core import ClauseDocument, LiveChange, SettleSuggestions, SuggestText
from codedraft.collab.log import seed_update
from codedraft.collab.offsets import utf16_to_codepoint
from codedraft.collab.store import ClauseStore, store_for
from codedraft.collab.suggestions import ORIGIN_REJECTED, ORIGIN_SUGGESTED
from codedraft.drafts.models import Draft, DraftClause
from codedraft.drafts.operations import latest_draft
from codedraft.exports.compare import DiffSegment, diff_words
from codedraft.extensions import db
from codedraft.feedback import anchors
from codedraft.feedback.anchors import AnchorError
from codedraft.feedback.joins import Splice, splice_amendment
from codedraft.feedback.models import (
    ANCHOR_CHANGED,
    ANCHOR_LIVE,
    ANCHOR_ORPHANED,
    ANCHOR_REATTACHED,
    DISPOSITIONS,
    STATUSES,
    Amendment,
    Comment,
    FeedbackRound,
    Notification,
    Reply,
    Support,
)
from codedraft.markdown import render_markdown
from codedraft.notifications import messages as said
from codedraft.numbers import stored_integer
from codedraft.timeutil import naive_utc, utcnow

MAX_BODY_CHARS = 20_000
MAX_REASON_CHARS = 5_000


class FeedbackError(ValueError):
    """The action cannot be done as asked; the message is safe to show to the person."""


class NotAllowed(FeedbackError):
    """The person may not do this (the view answers 403)."""


class StalePassage(FeedbackError):
    """The amendment's passage changed since it was proposed: rebase it first."""


# --- people and rounds -----------------------------------------------------------------------


def author_labels(user: User) -> tuple[str, str]:
    """The organisation name and stakeholder category a comment by ``user`` carries."""
    return (user.organisation.name if user.organisation else "", user.stakeholder_category)


def open_round_of(code: Code, now: datetime | None = None) -> FeedbackRound | None:
    """The feedback round of ``code`` open at ``now`` (the newest if several are)."""
    moment = now or utcnow()
    return db.session.scalar(
        select(FeedbackRound)
        .where(FeedbackRound.code_id == code.id, FeedbackRound.opens_at <= moment, FeedbackRound.closes_at > moment)
        .order_by(FeedbackRound.opens_at.desc(), FeedbackRound.id.desc())
        .limit(1)
    )


def rounds_of(code: Code) -> list[FeedbackRound]:
    return list(db.session.scalars(
        select(FeedbackRound).where(FeedbackRound.code_id == code.id).order_by(FeedbackRound.opens_at.desc())
    ))


def open_round(code: Code, draft: Draft, closes_at: datetime, *, by: User | None = None,
               opens_at: datetime | None = None, name: str = "") -> FeedbackRound:
    """Open a feedback round on a published draft of ``code``, closing at ``closes_at`` (UTC).

    Raises FeedbackError if the draft belongs to another code or the round would close before
    it opens.
    """
    if draft.code_id != code.id:
        raise FeedbackError(_("That draft belongs to another code."))
    start = naive_utc(opens_at) if opens_at is not None else utcnow()
    closes_at = naive_utc(closes_at)
    if closes_at <= start:
        raise FeedbackError(_("A round must close after it opens."))
    feedback_round = FeedbackRound(code_id=code.id, draft_id=draft.id, opens_at=start, closes_at=closes_at,
                                   name=name.strip() or f"Feedback on {draft.name}",
                                   created_by_id=by.id if by else None)
    db.session.add(feedback_round)
    db.session.flush()
    return feedback_round


def close_round(feedback_round: FeedbackRound, now: datetime | None = None) -> None:
    """Close the round now (if it would close later)."""
    moment = now or utcnow()
    if feedback_round.closes_at > moment:
        feedback_round.closes_at = max(moment, feedback_round.opens_at)


def may_post(user: User, clause: Clause, code: Code) -> bool:
    """Reviewers post only in an open round; chairs and the Office answer at any time."""
    if not policy.can_comment_on_clause(user, clause) or clause.withdrawn:
        return False
    if policy.can_answer_feedback(user, clause):
        return True
    return open_round_of(code) is not None


def next_round_of(code: Code, now: datetime | None = None) -> FeedbackRound | None:
    """The next round that is scheduled but not open yet."""
    moment = now or utcnow()
    return db.session.scalar(
        select(FeedbackRound).where(FeedbackRound.code_id == code.id, FeedbackRound.opens_at > moment)
        .order_by(FeedbackRound.opens_at, FeedbackRound.id).limit(1)
    )


@dataclass(frozen=True)
class RoundStatus:
    """What one person is told about feedback on a clause: one statement, never two.

    ``reason`` names the case (docs/feedback-rounds.md, "Consistent rounds"):
    ``open`` (may post), ``open_read_only`` (a round is open, this person only reads),
    ``answering`` (no round open; a chair or the Office may still answer), ``scheduled``,
    ``closed`` (none open, none scheduled), ``withdrawn`` (the clause left the text).
    """

    reason: str
    may_post: bool
    current: FeedbackRound | None
    upcoming: FeedbackRound | None


def round_status(user: User, clause: Clause, code: Code) -> RoundStatus:
    current = open_round_of(code)
    upcoming = None if current is not None else next_round_of(code)
    allowed = may_post(user, clause, code)
    if clause.withdrawn:
        reason = "withdrawn"
    elif current is not None:
        reason = "open" if allowed else "open_read_only"
    elif allowed:
        reason = "answering"
    else:
        reason = "scheduled" if upcoming is not None else "closed"
    return RoundStatus(reason, allowed, current, upcoming)


def may_support(user: User, comment: Comment, code: Code) -> bool:
    """Support counts only while the comment's round is open (a comment outside any round:
    while any round is open); a closed round's counts are final."""
    current = open_round_of(code)
    if current is None:
        return False
    return comment.round_id is None or comment.round_id == current.id


# --- notifications ---------------------------------------------------------------------------


def notify(user_id: int, key: str, link: str = "", **params: Any) -> Notification:
    """Tell one person something: ``key`` is a message of codedraft.notifications.messages, said
    in each reader's language with ``params``; the English text is kept as its fallback."""
    with force_locale("en"):
        english = said.render(key, params, key)
    note = Notification(user_id=user_id, message=english[:2000], link=link[:500], message_key=key,
                        message_params=said.encode(params))
    db.session.add(note)
    return note


def unread_count(user: User) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Notification).where(Notification.user_id == user.id,
                                                             Notification.read_at.is_(None))
    ) or 0


def notifications_of(user: User, limit: int = 200) -> list[Notification]:
    return list(db.session.scalars(
        select(Notification).where(Notification.user_id == user.id)
        .order_by(Notification.updated_at.desc(), Notification.id.desc()).limit(limit)
    ))


def mark_all_read(user: User) -> None:
    db.session.execute(update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
                       .values(read_at=utcnow()))


# --- anchors in the live text ----------------------------------------------------------------


@dataclass(frozen=True)
class LiveAnchor:
    passage: anchors.Passage
    sticky_start: bytes
    sticky_end: bytes


def anchor_selection(store: ClauseStore, clause: Clause, quote: str, start: int | None, end: int | None,
                     unit: anchors.Unit) -> LiveAnchor:
    """Anchor a selection in the clause's live document, under its lock, so no edit can slip
    between finding the passage and fixing its sticky indexes.

    Opening a clause for the first time stores its seed in its own transaction: call this
    before the request has written anything. Raises AnchorError for a bad selection.
    """
    opened = store.open(clause)
    with opened.lock:
        text = opened.doc.text
        if unit in ("utf16", "codepoint") and start is not None and end is not None:
            raw = opened.doc.raw_text
            if raw != text:
                # A selection in the editor counts the pending suggested insertions it shows;
                # anchors are kept in the accepted text.
                quote, start, end = _accepted_selection(opened.doc, raw, quote, start, end, unit)
                unit = "codepoint"
        passage = anchors.passage_from_selection(text, quote, start, end, unit)
        sticky_start, sticky_end = anchors.sticky_pair(opened.doc, passage)
    return LiveAnchor(passage, sticky_start, sticky_end)


def _accepted_selection(document: ClauseDocument, raw: str, quote: str, start: int, end: int,
                        unit: anchors.Unit) -> tuple[str, int | None, int | None]:
    """An editor selection of the raw text (suggestions shown) as code points of the accepted text."""
    try:
        if unit == "utf16":
            start, end = utf16_to_codepoint(raw, start), utf16_to_codepoint(raw, end)
        if not 0 <= start <= end <= len(raw) or raw[start:end] != quote:
            return quote, None, None
    except (ValueError, TypeError):
        return quote, None, None
    first, last = document.raw_to_accepted(start), document.raw_to_accepted(end)
    accepted = document.text[first:last]
    return (accepted if accepted.strip() else quote), first, last


@dataclass(frozen=True)
class ShownAnchor:
    """How a comment's anchor stands in the live text right now."""

    start: int | None  # code points, None when it could not be placed (orphaned)
    end: int | None
    current: str  # the words there now ("" when deleted or orphaned)
    changed: bool  # the words there differ from the quote


def shown_anchors(store: ClauseStore, clause: Clause, comments: Iterable[Comment]) -> dict[int, ShownAnchor]:
    """Resolve the sticky anchors of ``comments`` against the live document of ``clause``."""
    anchored = [c for c in comments if c.quote is not None]
    if not anchored:
        return {}
    opened = store.open(clause)
    shown: dict[int, ShownAnchor] = {}
    with opened.lock:
        text = opened.doc.text
        for comment in anchored:
            span = None
            if comment.sticky_start is not None and comment.sticky_end is not None:
                span = anchors.resolve_passage(opened.doc, comment.sticky_start, comment.sticky_end)
            if span is None:
                shown[comment.id] = ShownAnchor(None, None, "", True)
                continue
            current = text[span[0]:span[1]]
            shown[comment.id] = ShownAnchor(span[0], span[1], current, current != comment.quote)
    return shown


# --- comments, replies, support --------------------------------------------------------------


# What is missing or too long, per kind of text: whole sentences, so each language words them its own way.
_EMPTY_BODY = {"comment": _("Write your comment first."), "rationale": _("Write your rationale first."),
               "reply": _("Write your reply first.")}
_LONG_BODY = {"comment": _("A comment can be at most %(n)s characters long.", n=MAX_BODY_CHARS),
              "rationale": _("A rationale can be at most %(n)s characters long.", n=MAX_BODY_CHARS),
              "reply": _("A reply can be at most %(n)s characters long.", n=MAX_BODY_CHARS)}


def _checked_body(body: str, what: str = "comment") -> str:
    body = (body or "").strip()
    if not body:
        raise FeedbackError(_EMPTY_BODY[what])
    if len(body) > MAX_BODY_CHARS:
        raise FeedbackError(_LONG_BODY[what])
    return body


def post_comment(code: Code, clause: Clause, author: User, body: str, *, anchor: LiveAnchor | None = None,
                 replacement: str | None = None) -> Comment:
    """Start a thread on ``clause`` (on ``anchor``'s passage if given); with ``replacement`` it is
    an amendment proposing new words for that passage, ``body`` being the rationale.

    Raises NotAllowed outside an open round for reviewers, FeedbackError for an empty body or
    an amendment without a passage.
    """
    if not may_post(author, clause, code):
        raise NotAllowed(_("Comments can be posted only while a feedback round is open."))
    body = _checked_body(body, "rationale" if replacement is not None else "comment")
    if replacement is not None:
        if anchor is None:
            raise FeedbackError(_("Select the passage your amendment replaces."))
        if len(replacement) > MAX_BODY_CHARS:
            raise FeedbackError(_("The proposed text is too long."))
        if replacement == anchor.passage.quote:
            raise FeedbackError(_("The proposed text is the same as the passage."))
    organisation, category = author_labels(author)
    feedback_round = open_round_of(code)
    draft = latest_draft(code)
    comment = Comment(
        code_id=code.id, clause_id=clause.id, round_id=feedback_round.id if feedback_round else None,
        draft_id=draft.id if draft else None, author_id=author.id, organisation=organisation, category=category,
        kind="amendment" if replacement is not None else "comment", body=body, body_html=render_markdown(body),
        status="open",
    )
    if anchor is not None:
        comment.quote = anchor.passage.quote
        comment.anchor_start, comment.anchor_end = anchor.passage.start, anchor.passage.end
        comment.sticky_start, comment.sticky_end = anchor.sticky_start, anchor.sticky_end
        comment.anchor_state = ANCHOR_LIVE
    db.session.add(comment)
    db.session.flush()
    if replacement is not None:
        comment.amendment = Amendment(comment_id=comment.id, replacement=replacement)
        db.session.flush()
    return comment


def post_reply(code: Code, clause: Clause, comment: Comment, author: User, body: str, *, link: str = "") -> Reply:
    """Reply in a comment's thread. Raises NotAllowed outside an open round for reviewers."""
    if not may_post(author, clause, code):
        raise NotAllowed(_("Replies can be posted only while a feedback round is open."))
    if comment.hidden and not policy.can_moderate(author, code):
        raise NotAllowed(_("This comment is hidden."))
    organisation, category = author_labels(author)
    body = _checked_body(body, "reply")
    reply = Reply(comment_id=comment.id, author_id=author.id, organisation=organisation, category=category,
                  body=body, body_html=render_markdown(body))
    db.session.add(reply)
    comment.reply_count = (comment.reply_count or 0) + 1
    db.session.flush()
    if comment.author_id != author.id:
        notify(comment.author_id, said.REPLIED, link, author=author.name)
    return reply


def support_comment(code: Code, clause: Clause, comment: Comment, user: User) -> bool:
    """Add ``user``'s support, once; True if it was new. Authors cannot support themselves."""
    if not policy.can_comment_on_clause(user, clause):
        raise NotAllowed(_("You may not support comments here."))
    if comment.author_id == user.id:
        raise FeedbackError(_("You cannot support your own comment."))
    if comment.hidden:
        raise FeedbackError(_("This comment is hidden."))
    if not may_support(user, comment, code):
        raise FeedbackError(_("Support can be given only while the comment's feedback round is open."))
    already = db.session.scalar(
        select(Support.id).where(Support.comment_id == comment.id, Support.user_id == user.id)
    )
    if already is not None:
        return False
    # A concurrent duplicate still fails on the unique constraint at commit; the view says so.
    db.session.add(Support(comment_id=comment.id, user_id=user.id))
    db.session.flush()
    comment.support_count = db.session.scalar(
        select(func.count()).select_from(Support).where(Support.comment_id == comment.id)
    ) or 0
    return True


def withdraw_comment(comment: Comment, user: User) -> None:
    if comment.author_id != user.id:
        raise NotAllowed(_("Only its author can withdraw a comment."))
    if comment.status != "open":
        raise FeedbackError(_("Only an open comment can be withdrawn."))
    comment.status = "withdrawn"


# --- dispositions and moderation -------------------------------------------------------------


def record_disposition(code: Code, clause: Clause, comment: Comment, by: User, disposition: str, reason: str,
                       *, link: str = "") -> None:
    """Record the drafters' answer; the comment takes the matching status; the author is told.

    Raises NotAllowed unless ``by`` chairs the clause's group or is the Office, FeedbackError
    for an unknown disposition or a missing reason.
    """
    if not policy.can_answer_feedback(by, clause):
        raise NotAllowed(_("Only chairs and the Office record dispositions."))
    if disposition not in DISPOSITIONS:
        raise FeedbackError(_("Choose a disposition."))
    reason = (reason or "").strip()
    if not reason:
        raise FeedbackError(_("Give the reason for the disposition."))
    comment.disposition = disposition
    comment.disposition_reason = reason[:MAX_REASON_CHARS]
    comment.disposed_by_id = by.id
    comment.disposed_at = utcnow()
    comment.status = DISPOSITIONS[disposition]
    notify(comment.author_id, said.DISPOSED, link, clause=clause.heading, disposition=disposition, reason=reason)


def set_status(clause: Clause, comment: Comment, by: User, status: str) -> None:
    """Chairs set a status directly (e.g. back to open); authors use withdraw_comment."""
    if not policy.can_answer_feedback(by, clause):
        raise NotAllowed(_("Only chairs and the Office change statuses."))
    if status not in STATUSES:
        raise FeedbackError(_("Unknown status."))
    comment.status = status


def hide_comment(code: Code, comment: Comment, by: User, reason: str, *, link: str = "") -> None:
    """The Office hides a comment with a reason; the record stays, the author is told."""
    if not policy.can_moderate(by, code):
        raise NotAllowed(_("Only the Office moderates."))
    reason = (reason or "").strip()
    if not reason:
        raise FeedbackError(_("Give the reason for hiding the comment."))
    comment.hidden = True
    comment.hidden_reason = reason[:MAX_REASON_CHARS]
    comment.hidden_by_id = by.id
    comment.hidden_at = utcnow()
    notify(comment.author_id, said.HIDDEN, link, reason=reason)


def unhide_comment(code: Code, comment: Comment, by: User, *, link: str = "") -> None:
    if not policy.can_moderate(by, code):
        raise NotAllowed(_("Only the Office moderates."))
    comment.hidden = False
    notify(comment.author_id, said.VISIBLE_AGAIN, link)


# --- amendments ------------------------------------------------------------------------------
#
# An amendment is also a suggestion in the live text (one model, one list): proposing it marks
# the passage's words for deletion and inserts the replacement as its author's suggestion, under
# the id ``amendment-<comment id>``. Accepting or rejecting it here settles that suggestion;
# deciding the suggestion in the editor's list decides the amendment (suggestions_decided).


def amendment_suggestion_id(comment_id: int) -> str:
    """The id of the suggestion that shows amendment ``comment_id`` in the live text."""
    return f"amendment-{comment_id}"


def suggest_amendment(store: ClauseStore, clause: Clause, comment: Comment) -> bool:
    """Show a proposed amendment in the live text as its author's suggestion (a minimal edit of
    marks, in the caller's transaction). Returns False when its passage is no longer there."""
    amendment = comment.amendment
    if amendment is None or comment.sticky_start is None or comment.sticky_end is None:
        return False

    def compute(document: ClauseDocument) -> LiveChange:
        try:
            splice = amended_text(document, comment, amendment)
        except StalePassage:
            return SettleSuggestions()  # nothing to show; the amendment is rebased or decided first
        return SuggestText(splice.text, by=comment.author_id, id=amendment_suggestion_id(comment.id))

    return store.edit_live_text(clause, compute, user_id=comment.author_id, origin=ORIGIN_SUGGESTED)


def _pending_in(document: ClauseDocument, suggestion_id: str) -> bool:
    return any(s.id == suggestion_id for s in document.suggestions())


def settle_amendment_suggestion(store: ClauseStore, clause: Clause, comment: Comment, by: User) -> bool:
    """Reject the suggestion showing amendment ``comment`` in the live text, if still pending."""
    suggestion_id = amendment_suggestion_id(comment.id)

    def compute(document: ClauseDocument) -> LiveChange:
        pending = _pending_in(document, suggestion_id)
        return SettleSuggestions(reject=frozenset({suggestion_id}) if pending else frozenset())

    return store.edit_live_text(clause, compute, user_id=by.id, origin=ORIGIN_REJECTED)


def _drop_stale_suggestion(store: ClauseStore, clause: Clause, comment: Comment, amendment: Amendment,
                           by: User) -> None:
    """Reject the amendment's suggestion if accepting it would no longer give the amended text
    (the passage was edited, and the amendment rebased, since it was proposed)."""
    suggestion_id = amendment_suggestion_id(comment.id)

    def compute(document: ClauseDocument) -> LiveChange:
        if not _pending_in(document, suggestion_id):
            return SettleSuggestions()
        wanted = amended_text(document, comment, amendment).text
        trial = ClauseDocument.from_history(document.encode_state(), [])
        trial.apply_change(SettleSuggestions(accept=frozenset({suggestion_id})))
        if trial.text == wanted:
            return SettleSuggestions()
        return SettleSuggestions(reject=frozenset({suggestion_id}))

    store.edit_live_text(clause, compute, user_id=by.id, origin=ORIGIN_REJECTED)


def amendments_decided_in_text(_app: Any, *, clause: Clause, accepted: frozenset[str], rejected: frozenset[str],
                               by: User) -> None:
    """Suggestions decided from the editor's list: the amendments among them are decided too."""
    for suggestion_id, accept in [*((i, True) for i in accepted), *((i, False) for i in rejected)]:
        if not suggestion_id.startswith("amendment-"):
            continue
        comment_id = stored_integer(suggestion_id.removeprefix("amendment-"))
        if comment_id is None:
            continue
        comment = db.session.get(Comment, comment_id)
        if comment is None or comment.clause_id != clause.id or comment.amendment is None:
            continue
        amendment = comment.amendment
        if amendment.state != "proposed":
            continue
        withdrawn = not accept and by.id == comment.author_id
        amendment.state = "accepted" if accept else "rejected"
        amendment.decided_by_id, amendment.decided_at = by.id, utcnow()
        amendment.decision_reason = ("Accepted in the text." if accept else
                                     "Withdrawn by its author." if withdrawn else "Rejected in the text.")
        comment.status = comment.disposition = amendment.state
        comment.disposition_reason = amendment.decision_reason
        comment.disposed_by_id, comment.disposed_at = by.id, utcnow()
        if not withdrawn:
            notify(comment.author_id, f"Your amendment to {clause.heading} was {amendment.state} in the text.", "")


def amended_text(document: ClauseDocument, comment: Comment, amendment: Amendment) -> Splice:
    """The clause text with the amendment applied where its passage stands now, the replacement
    fitted to its place (spaces and punctuation at the joins kept, see :mod:`.joins`).

    Raises StalePassage if the passage is gone or its words are no longer the quoted ones.
    """
    if comment.sticky_start is None or comment.sticky_end is None:
        raise StalePassage("This amendment is not anchored in the live text; rebase it first.")
    span = anchors.resolve_passage(document, comment.sticky_start, comment.sticky_end)
    text = document.text
    if span is None or text[span[0]:span[1]] != comment.quote:
        raise StalePassage("The passage changed since the amendment was proposed; rebase it first.")
    return splice_amendment(text, span[0], span[1], amendment.replacement)


@dataclass(frozen=True)
class AmendmentPreview:
    """What accepting an amendment would do now: the clause before and after, and their diff."""

    before: str
    after: str
    diff: tuple[DiffSegment, ...]


def preview_amendment(store: ClauseStore, clause: Clause, comment: Comment, by: User) -> AmendmentPreview:
    """The live clause as accepting the amendment would leave it, without changing anything.

    Raises NotAllowed, FeedbackError (decided already) or StalePassage as accepting would.
    """
    amendment = _proposed_amendment(clause, comment, by)
    opened = store.open(clause)
    with opened.lock:
        before = opened.doc.text
        splice = amended_text(opened.doc, comment, amendment)
    return AmendmentPreview(before=before, after=splice.text, diff=diff_words(before, splice.text))


def accept_amendment(store: ClauseStore, clause: Clause, comment: Comment, by: User, reason: str = "",
                     *, link: str = "") -> bool:
    """Apply the amendment to the live clause as a minimal edit and mark it accepted.

    The passage is located through the comment's sticky anchor at the moment of the edit, under
    the clause lock, so whatever others type elsewhere survives. Afterwards the comment anchors
    the new words. The edit is part of the caller's transaction and reaches co-editors once it
    commits. Returns whether the text changed. Raises StalePassage if the words there are no
    longer the quoted ones (rebase first).
    """
    amendment = _proposed_amendment(clause, comment, by)
    if comment.sticky_start is None or comment.sticky_end is None:
        raise StalePassage("This amendment is not anchored in the live text; rebase it first.")
    located: dict[str, Any] = {}

    suggestion_id = amendment_suggestion_id(comment.id)
    if store.has_history(clause):
        _drop_stale_suggestion(store, clause, comment, amendment, by)

    def compute(document: ClauseDocument) -> LiveChange:
        splice = amended_text(document, comment, amendment)
        located["start"], located["replacement"] = splice.start, splice.replacement
        if _pending_in(document, suggestion_id):
            # Shown in the text as a suggestion: accepting it gives the same words, as one edit.
            return SettleSuggestions(accept=frozenset({suggestion_id}))
        return splice.text

    def re_anchor(document: ClauseDocument) -> None:
        start = located["start"]
        end = start + len(located["replacement"])
        if end > start:
            try:
                located["sticky"] = anchors.sticky_pair(document, anchors.Passage(start, end, located["replacement"]))
            except AnchorError:
                pass  # the accepted words differ from the splice (edited meanwhile): keep the old anchor

    changed = store.edit_live_text(clause, compute, user_id=by.id, origin="amendment", after=re_anchor)
    if "sticky" in located:
        comment.sticky_start, comment.sticky_end = located["sticky"]
        comment.quote = located["replacement"]
        comment.anchor_start = located["start"]
        comment.anchor_end = located["start"] + len(located["replacement"])
    amendment.state = "accepted"
    amendment.decided_by_id, amendment.decided_at = by.id, utcnow()
    amendment.decision_reason = (reason or "").strip()[:MAX_REASON_CHARS]
    comment.status, comment.disposition = "accepted", "accepted"
    comment.disposition_reason = amendment.decision_reason or "Amendment applied to the text."
    comment.disposed_by_id, comment.disposed_at = by.id, utcnow()
    notify(comment.author_id, said.AMENDMENT_APPLIED, link, clause=clause.heading)
    return changed


def reject_amendment(clause: Clause, comment: Comment, by: User, reason: str, *, link: str = "",
                     store: ClauseStore | None = None) -> None:
    """Reject the amendment (and, given the ``store``, its suggestion in the live text)."""
    amendment = _proposed_amendment(clause, comment, by)
    reason = (reason or "").strip()
    if not reason:
        raise FeedbackError(_("Give the reason for rejecting the amendment."))
    if store is not None and store.has_history(clause):
        settle_amendment_suggestion(store, clause, comment, by)
    amendment.state = "rejected"
    amendment.decided_by_id, amendment.decided_at = by.id, utcnow()
    amendment.decision_reason = reason[:MAX_REASON_CHARS]
    comment.status, comment.disposition, comment.disposition_reason = "rejected", "rejected", reason[:MAX_REASON_CHARS]
    comment.disposed_by_id, comment.disposed_at = by.id, utcnow()
    notify(comment.author_id, said.AMENDMENT_REJECTED, link, clause=clause.heading, reason=reason)


def rebase_amendment(store: ClauseStore, clause: Clause, comment: Comment, by: User) -> None:
    """Re-anchor a stale amendment to the current words of its passage, so it can be decided.

    Raises FeedbackError if the passage was deleted entirely or never anchored live.
    """
    _proposed_amendment(clause, comment, by)
    shown = shown_anchors(store, clause, [comment]).get(comment.id)
    if shown is None or shown.start is None or shown.end is None or not shown.current:
        raise FeedbackError(_("The passage no longer exists in the text; reject the amendment instead."))
    comment.quote = shown.current
    comment.anchor_start, comment.anchor_end = shown.start, shown.end
    comment.anchor_state = ANCHOR_LIVE
    amendment = comment.amendment
    if amendment is not None and store.has_history(clause):
        # Its suggestion in the text follows: the stale one goes, one for the current words comes.
        _drop_stale_suggestion(store, clause, comment, amendment, by)
        opened = store.open(clause)
        with opened.lock:
            shown_already = _pending_in(opened.doc, amendment_suggestion_id(comment.id))
        if not shown_already:
            suggest_amendment(store, clause, comment)


def _proposed_amendment(clause: Clause, comment: Comment, by: User) -> Amendment:
    if not policy.can_answer_feedback(by, clause):
        raise NotAllowed(_("Only chairs and the Office decide amendments."))
    amendment = comment.amendment
    if amendment is None:
        raise FeedbackError(_("This comment proposes no amendment."))
    if amendment.state != "proposed":
        raise FeedbackError(_("This amendment has already been decided."))
    return amendment


# --- listing and filtering -------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackFilter:
    """The filters of a clause's or a code's feedback list; None means "any"."""

    category: str | None = None
    status: str | None = None
    round_id: int | None = None
    working_group_id: int | None = None
    author_id: int | None = None

    @classmethod
    def from_args(cls, args: Any) -> FeedbackFilter:
        """Read filters from query arguments, ignoring values that are not valid."""
        def number(name: str) -> int | None:
            return stored_integer(args.get(name))

        categories = dict(current_app.config["STAKEHOLDER_CATEGORIES"])
        category = args.get("category") or None
        status = args.get("status") or None
        return cls(category=category if category in categories else None,
                   status=status if status in STATUSES else None,
                   round_id=number("round"), working_group_id=number("group"), author_id=number("author"))

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.category:
            found.append(Comment.category == self.category)
        if self.status:
            found.append(Comment.status == self.status)
        if self.round_id is not None:
            found.append(Comment.round_id == self.round_id)
        if self.author_id is not None:
            found.append(Comment.author_id == self.author_id)
        if self.working_group_id is not None:
            found.append(Comment.clause_id.in_(
                select(Clause.id).join(Chapter, Chapter.id == Clause.chapter_id)
                .where(Chapter.working_group_id == self.working_group_id)
            ))
        return found

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.category, self.status, self.round_id, self.working_group_id,
                                           self.author_id))


def visibility(viewer: User, code: Code) -> ColumnElement[bool]:
    """Hidden comments are shown to the Office and their author only."""
    if policy.can_moderate(viewer, code):
        return true()
    return or_(Comment.hidden.is_(False), Comment.author_id == viewer.id)


def comments_query(code: Code, viewer: User, filters: FeedbackFilter, clause: Clause | None = None) -> Select[Any]:
    conditions = [Comment.code_id == code.id, visibility(viewer, code), *filters.conditions()]
    if clause is not None:
        conditions.append(Comment.clause_id == clause.id)
    return select(Comment).where(and_(*conditions))


@dataclass(frozen=True)
class ThreadIndexEntry:
    """One line of a clause's compact thread index (no body, no replies)."""

    id: int
    author: str
    category: str
    status: str
    kind: str
    hidden: bool
    anchored: bool


def clause_comments(code: Code, clause: Clause, viewer: User, filters: FeedbackFilter, *,
                    limit: int | None = None, offset: int = 0, only_id: int | None = None) -> list[Comment]:
    """A clause's threads, oldest first, with authors, replies and amendments loaded at once."""
    from sqlalchemy.orm import selectinload

    query = comments_query(code, viewer, filters, clause).options(
        selectinload(Comment.author), selectinload(Comment.amendment),
        selectinload(Comment.replies).selectinload(Reply.author),
    ).order_by(Comment.created_at, Comment.id)
    if only_id is not None:
        query = query.where(Comment.id == only_id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return list(db.session.scalars(query))


def count_comments(code: Code, viewer: User, filters: FeedbackFilter, clause: Clause | None = None) -> int:
    query = comments_query(code, viewer, filters, clause).with_only_columns(func.count(Comment.id))
    return db.session.scalar(query) or 0


def thread_index(code: Code, clause: Clause, viewer: User, filters: FeedbackFilter) -> list[ThreadIndexEntry]:
    """Every thread of the clause as one line, in one narrow query (no ORM objects)."""
    query = comments_query(code, viewer, filters, clause).with_only_columns(
        Comment.id, User.name, Comment.category, Comment.status, Comment.kind, Comment.hidden,
        Comment.quote.is_not(None),
    ).join(User, User.id == Comment.author_id).order_by(Comment.created_at, Comment.id)
    return [ThreadIndexEntry(*row) for row in db.session.execute(query)]


def supported_by(user: User, comment_ids: Sequence[int]) -> set[int]:
    if not comment_ids:
        return set()
    return set(db.session.scalars(
        select(Support.comment_id).where(Support.user_id == user.id, Support.comment_id.in_(comment_ids))
    ))


def counts_by_clause(code: Code, viewer: User, filters: FeedbackFilter) -> dict[int, dict[str, int]]:
    """clause id -> stakeholder category -> number of comments, in one GROUP BY query."""
    conditions = [Comment.code_id == code.id, visibility(viewer, code), *filters.conditions()]
    rows = db.session.execute(
        select(Comment.clause_id, Comment.category, func.count()).where(and_(*conditions))
        .group_by(Comment.clause_id, Comment.category)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for clause_id, category, count in rows:
        counts.setdefault(clause_id, {})[category] = count
    return counts


def authors_of(code: Code) -> list[tuple[int, str]]:
    """Everyone who commented on the code: (user id, name), for the author filter."""
    return [(uid, name) for uid, name in db.session.execute(
        select(User.id, User.name).where(User.id.in_(select(Comment.author_id).where(Comment.code_id == code.id)))
        .order_by(User.name)
    )]


# --- carrying comments to the next draft -----------------------------------------------------


@dataclass
class CarryReport:
    """How the open comments of one draft were carried to the next."""

    reattached: int = 0
    changed: int = 0
    orphaned: int = 0
    whole_clause: int = 0

    @property
    def total(self) -> int:
        return self.reattached + self.changed + self.orphaned + self.whole_clause

    def summary(self) -> str:
        return (f"{self.total} open comments carried: {self.reattached} re-attached, {self.changed} on a changed "
                f"passage, {self.orphaned} orphaned, {self.whole_clause} on whole clauses.")


def carry_comments_forward(code: Code, from_draft: Draft, to_draft: Draft, *,
                           store: ClauseStore | None = None) -> CarryReport:
    """Carry every open comment of ``from_draft`` to the same clause (stable uid) in ``to_draft``.

    Each quote is re-attached to the clause's new text (``anchors.reattach``) and marked
    re-attached, changed passage or orphaned; an orphaned comment keeps its quote and loses its
    position. A comment on a clause that left the code is orphaned. Idempotent: comments
    already on ``to_draft`` are skipped. Mutates and flushes; the caller commits.
    """
    if from_draft.code_id != code.id or to_draft.code_id != code.id:
        raise FeedbackError(_("Both drafts must belong to the code."))
    store = store or store_for(current_app)
    comments = list(db.session.scalars(
        select(Comment).where(
            Comment.code_id == code.id, Comment.status == "open",
            or_(Comment.draft_id == from_draft.id, Comment.draft_id.is_(None)),
        ).order_by(Comment.clause_id, Comment.id)
    ))
    clauses = {c.id: c for c in db.session.scalars(select(Clause).where(Clause.code_id == code.id))}
    old_bodies = _draft_bodies(from_draft)
    new_bodies = _draft_bodies(to_draft)
    report = CarryReport()
    by_clause: dict[int, list[Comment]] = {}
    for comment in comments:
        by_clause.setdefault(comment.clause_id, []).append(comment)
    for clause_id, group in by_clause.items():
        clause = clauses.get(clause_id)
        present = clause is not None and clause.uid in new_bodies and not clause.withdrawn
        for comment in group:
            comment.draft_id = to_draft.id
        if not present or clause is None:
            for comment in group:
                _orphan(comment)
                report.orphaned += 1
            continue
        anchored = [c for c in group if c.quote is not None]
        report.whole_clause += len(group) - len(anchored)
        if anchored:
            _carry_clause(store, clause, anchored, old_bodies.get(clause.uid, ""), report)
    db.session.flush()
    return report


def carry_after_publish(draft: Draft) -> CarryReport | None:
    """Hook for publishing: carry the open comments of the previous draft to ``draft``."""
    previous = db.session.scalar(
        select(Draft).where(Draft.code_id == draft.code_id, Draft.number < draft.number)
        .order_by(Draft.number.desc()).limit(1)
    )
    code = db.session.get(Code, draft.code_id)
    if previous is None or code is None:
        return None
    return carry_comments_forward(code, previous, draft)


def _draft_bodies(draft: Draft) -> dict[str, str]:
    rows = db.session.execute(
        select(DraftClause.clause_uid, DraftClause.body).where(DraftClause.draft_id == draft.id)
    ).all()
    return {uid: body for uid, body in rows}


def _orphan(comment: Comment) -> None:
    comment.anchor_state = ANCHOR_ORPHANED if comment.quote is not None else None
    if comment.quote is not None:
        comment.anchor_start = comment.anchor_end = None
        comment.sticky_start = comment.sticky_end = None


def _carry_clause(store: ClauseStore, clause: Clause, comments: list[Comment], old_text: str,
                  report: CarryReport) -> None:
    """Re-attach one clause's anchored comments against its live text (equal to the new draft's
    text at publication) and give each new sticky indexes.

    A clause never co-edited is not opened (that would store its seed in another transaction,
    while the publication's is still open): its anchors are computed on the deterministic seed
    document the store will build from the same text.
    """
    if store.has_history(clause):
        opened = store.open(clause)
        with opened.lock:
            _reattach_all(opened.doc, comments, old_text, report, follow_sticky=True)
    else:
        document = ClauseDocument.from_history(None, [seed_update(clause.body)])
        _reattach_all(document, comments, old_text, report, follow_sticky=False)


def _reattach_all(document: ClauseDocument, comments: list[Comment], old_text: str, report: CarryReport,
                  *, follow_sticky: bool) -> None:
    new_text = document.text
    for comment in comments:
        quote = comment.quote or ""
        result: anchors.Reattachment | None = None
        if follow_sticky and comment.sticky_start is not None and comment.sticky_end is not None:
            # Anchors that followed the minimal edits of the import are the best evidence.
            span = anchors.resolve_passage(document, comment.sticky_start, comment.sticky_end)
            if span is not None and new_text[span[0]:span[1]] == quote:
                result = anchors.Reattachment("reattached", span[0], span[1])
        if result is None:
            old_start = _old_position(old_text, quote, comment.anchor_start)
            result = anchors.reattach(quote, old_text, old_start, new_text)
        if result.state == "orphaned" or result.start is None or result.end is None:
            _orphan(comment)
            report.orphaned += 1
            continue
        passage = anchors.Passage(result.start, result.end, new_text[result.start:result.end])
        comment.sticky_start, comment.sticky_end = anchors.sticky_pair(document, passage)
        comment.anchor_start, comment.anchor_end = result.start, result.end
        if result.state == "reattached":
            comment.anchor_state = ANCHOR_REATTACHED
            report.reattached += 1
        else:
            # The old words stay as the quote, so readers see what was commented on and what
            # the passage says now.
            comment.anchor_state = ANCHOR_CHANGED
            report.changed += 1


def _old_position(old_text: str, quote: str, recorded: int | None) -> int:
    """Where the quote stood in the previous draft: the occurrence nearest the recorded offset."""
    hint = recorded or 0
    spans = [m.start() for m in re.finditer(re.escape(quote), old_text)] if quote else []
    if spans:
        return min(spans, key=lambda at: abs(at - hint))
    return min(hint, len(old_text))



def rerender_bodies() -> int:
    """Render every stored comment and reply again (after a change to the Markdown renderer)."""
    count = 0
    for model in (Comment, Reply):
        for item in db.session.scalars(select(model)):
            item.body_html = render_markdown(item.body)
            count += 1
    db.session.flush()
    return count
