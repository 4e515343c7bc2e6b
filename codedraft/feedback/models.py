"""Feedback rounds, comment threads with anchors, support, amendments, dispositions, notifications."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from codedraft.accounts.models import User
from codedraft.extensions import db
from codedraft.timeutil import utcnow

#: Every status a comment can have, in the order the filters list them.
STATUSES: tuple[str, ...] = ("open", "addressed", "accepted", "partly_accepted", "rejected", "withdrawn")

#: Dispositions the drafters record, and the status each one gives the comment.
DISPOSITIONS: dict[str, str] = {
    "accepted": "accepted",
    "partly_accepted": "partly_accepted",
    "rejected": "rejected",
    "addressed_elsewhere": "addressed",
    "out_of_scope": "rejected",
}

#: How an anchor stands against the text it is shown on.
ANCHOR_LIVE = "live"  # created on this text; sticky indexes follow every edit
ANCHOR_REATTACHED = "reattached"  # carried to a new draft; the quote was found unchanged
ANCHOR_CHANGED = "changed"  # carried; a similar passage was found, its words differ
ANCHOR_ORPHANED = "orphaned"  # carried; no passage matched: only the quote is kept

#: The states of a feedback round, in the order a round goes through them.
ROUND_UPCOMING = "upcoming"
ROUND_OPEN = "open"
ROUND_CLOSED = "closed"
ROUND_PUBLISHED = "published"

#: Where a comment came from: written here, or imported from a survey tool's file.
SOURCE_CODEDRAFT = "codedraft"
SOURCE_IMPORT = "import"


class FeedbackRound(db.Model):
    """A period in which reviewers comment on one published draft."""

    __tablename__ = "feedback_rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    opens_at: Mapped[datetime] = mapped_column(default=utcnow)
    closes_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the Office published the round's responses together (the annex); None: drafting team only.
    responses_published_at: Mapped[datetime | None]

    def is_open(self, now: datetime | None = None) -> bool:
        moment = now or utcnow()
        return self.opens_at <= moment < self.closes_at

    def state(self, now: datetime | None = None) -> str:
        """The one state of the round every page shows (docs/feedback-rounds.md):
        ``upcoming``, ``open``, ``closed`` or ``published`` (closed, responses published)."""
        moment = now or utcnow()
        if self.responses_published_at is not None:
            return ROUND_PUBLISHED
        if moment < self.opens_at:
            return ROUND_UPCOMING
        if moment < self.closes_at:
            return ROUND_OPEN
        return ROUND_CLOSED


class Comment(db.Model):
    """A comment on a clause, optionally on a quoted passage; the head of a thread.

    The author's organisation and stakeholder category are copied at writing time: the
    feedback dataset must say who spoke for whom then, even if the person moves later.
    """

    __tablename__ = "feedback_comments"
    __table_args__ = (
        Index("ix_feedback_comments_clause_created", "clause_id", "created_at"),
        Index("ix_feedback_comments_code_clause_category", "code_id", "clause_id", "category"),
        # A round's pages count a round's 20,000 comments by clause, theme, category and group;
        # these indexes cover those queries, so the wide rows (bodies) are never read for them
        # (the response table went from ~400 to ~20 ms a page on the bench round).
        Index("ix_feedback_comments_round_clause", "round_id", "clause_id", "theme_id", "category", "hidden", "status"),
        Index("ix_feedback_comments_round_group", "round_id", "group_id", "hidden", "status", "theme_id", "category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"))
    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id", ondelete="CASCADE"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_rounds.id", ondelete="SET NULL"), index=True)
    # The draft whose text the anchor refers to (moves forward when carried to the next draft).
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("drafts.id", ondelete="SET NULL"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20), default="comment")  # "comment" | "amendment"
    body: Mapped[str] = mapped_column(Text)
    # Rendered once, when written, by the one safe renderer: a clause with thousands of
    # comments must not run Markdown on every page view.
    body_html: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    support_count: Mapped[int] = mapped_column(default=0)
    reply_count: Mapped[int] = mapped_column(default=0)

    # The anchor: None quote means a comment on the clause as a whole.
    quote: Mapped[str | None] = mapped_column(Text)
    anchor_start: Mapped[int | None]  # code points, in the text the anchor was made or re-attached on
    anchor_end: Mapped[int | None]
    sticky_start: Mapped[bytes | None] = mapped_column(LargeBinary)
    sticky_end: Mapped[bytes | None] = mapped_column(LargeBinary)
    anchor_state: Mapped[str | None] = mapped_column(String(20))

    disposition: Mapped[str | None] = mapped_column(String(30))
    disposition_reason: Mapped[str] = mapped_column(Text, default="")
    disposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    disposed_at: Mapped[datetime | None]

    hidden: Mapped[bool] = mapped_column(default=False)
    hidden_reason: Mapped[str] = mapped_column(Text, default="")
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    hidden_at: Mapped[datetime | None]

    source: Mapped[str] = mapped_column(String(20), default=SOURCE_CODEDRAFT)
    # Near-identical comments of the round (a campaign) share a group; a clause's comments fall
    # into themes. Both are recomputed on demand, so deleting one only unsets these.
    group_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_groups.id", ondelete="SET NULL"), index=True)
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_themes.id", ondelete="SET NULL"), index=True)

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    replies: Mapped[list[Reply]] = relationship(
        back_populates="comment", order_by="Reply.created_at", cascade="all, delete-orphan"
    )
    amendment: Mapped[Amendment | None] = relationship(back_populates="comment", cascade="all, delete-orphan")

    @property
    def anchored(self) -> bool:
        return self.quote is not None


class Reply(db.Model):
    __tablename__ = "feedback_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("feedback_comments.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    comment: Mapped[Comment] = relationship(back_populates="replies")
    author: Mapped[User] = relationship()


class Support(db.Model):
    """One person's support of a comment: once each (the unique constraint enforces it)."""

    __tablename__ = "feedback_support"
    __table_args__ = (UniqueConstraint("comment_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("feedback_comments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Amendment(db.Model):
    """A proposed replacement for a comment's quoted passage; the comment body is its rationale."""

    __tablename__ = "feedback_amendments"

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("feedback_comments.id", ondelete="CASCADE"), unique=True)
    replacement: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="proposed")  # proposed | accepted | rejected
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str] = mapped_column(Text, default="")

    comment: Mapped[Comment] = relationship(back_populates="amendment")


class Notification(db.Model):
    """A message to one person in the app (a disposition, a moderation, a decision).

    Activity on a clause (new comments and amendments for its working group) is batched: while
    a person has an unread activity notification for a clause, new activity adds to its counts
    instead of adding a notification (codedraft.notifications.operations).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_read", "user_id", "read_at"),
        Index("ix_notifications_user_clause", "user_id", "clause_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The English text as written then: what a row without a message key shows.
    message: Mapped[str] = mapped_column(Text)
    # What it says, in the reader's language when shown or mailed: an English msgid and its
    # parameters as JSON (codedraft.notifications.messages).
    message_key: Mapped[str | None] = mapped_column(String(200))
    message_params: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    kind: Mapped[str] = mapped_column(String(20), default="message")  # "message" | "activity"
    clause_id: Mapped[int | None] = mapped_column(ForeignKey("clauses.id", ondelete="CASCADE"))
    comment_count: Mapped[int] = mapped_column(default=0)
    amendment_count: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it went out by mail (immediately or in a digest); None: not yet, or mail is off.
    emailed_at: Mapped[datetime | None]


class CampaignGroup(db.Model):
    """Near-identical comments of one round (campaign copies with small edits)."""

    __tablename__ = "feedback_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("feedback_rounds.id", ondelete="CASCADE"), index=True)
    # The text that stands for the group (its earliest comment's): the annex's "shared text".
    shared_text: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Theme(db.Model):
    """Comments of one round on one clause that speak of the same thing; chairs may rename it."""

    __tablename__ = "feedback_themes"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("feedback_rounds.id", ondelete="CASCADE"), index=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_terms: Mapped[str] = mapped_column(String(500), default="")
    # A theme a chair named, merged or split is kept when themes are computed again.
    curated: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnswerTemplate(db.Model):
    """A reusable answer of a code's drafting team (a response text and its disposition)."""

    __tablename__ = "feedback_answer_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    disposition: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Response(db.Model):
    """The drafting team's answer to a comment, a campaign group or a theme of one round.

    Seen by the drafting team only until the Office publishes the round's responses together.
    Exactly one of comment, group and theme is set.
    """

    __tablename__ = "feedback_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("feedback_rounds.id", ondelete="CASCADE"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_comments.id", ondelete="CASCADE"),
                                                   unique=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_groups.id", ondelete="CASCADE"), unique=True)
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_themes.id", ondelete="CASCADE"), unique=True)
    body: Mapped[str] = mapped_column(Text)
    disposition: Mapped[str] = mapped_column(String(30))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("feedback_answer_templates.id", ondelete="SET NULL"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
