"""Read from the database who made the changes between two drafts, for the DOCX redline.

For every clause whose text changed, the co-editing log is replayed: the updates stored after the
old draft was published and up to the new one, grouped into runs by one person, become the
versions :func:`~codedraft.exports.attribution.credit_changes` follows. An update that applied an
accepted amendment is credited to the amendment's proposer (and the chair who accepted it); an
import, or a change the log does not hold, to whoever published the new draft, at its date.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pycrdt import Doc, Text
from sqlalchemy import select

from codedraft.accounts.models import User
from codedraft.codes.models import Clause, Code
from codedraft.collab.core import BODY
from codedraft.collab.models import ClauseUpdate
from codedraft.exports import builders
from codedraft.exports.attribution import ClauseCredits, Credit, Version, credit_changes
from codedraft.exports.builders import LIVE, DraftSelector
from codedraft.exports.compare import Comparison
from codedraft.extensions import db
from codedraft.timeutil import utcnow

#: The name on changes nobody is known for, when the draft has no recorded publisher.
UNKNOWN_AUTHOR = "CodeDraft"
# An accepted amendment's update is stored just before the decision time is written.
_AMENDMENT_SLACK = timedelta(minutes=5)


def _moment(code: Code, selector: DraftSelector) -> datetime:
    if selector == LIVE:
        return utcnow()
    assert isinstance(selector, int)
    return builders.find_draft(code, selector).published_at


def publisher_credit(code: Code, selector: DraftSelector) -> Credit:
    """Whoever published the draft (the importer, for an import), at its publication; for the
    live text, the app now."""
    if selector == LIVE:
        return Credit(UNKNOWN_AUTHOR, utcnow())
    assert isinstance(selector, int)
    draft = builders.find_draft(code, selector)
    publisher = db.session.get(User, draft.published_by_id) if draft.published_by_id else None
    return Credit(publisher.name if publisher is not None else UNKNOWN_AUTHOR, draft.published_at)


def _amendment_authors(clause_ids: Sequence[int]) -> dict[int, list[tuple[int | None, datetime, str]]]:
    """Accepted amendments per clause: (deciding chair, decision time, proposer's name)."""
    try:
        from codedraft.feedback.models import Amendment, Comment
    except ImportError:  # the feedback feature is not installed
        return {}
    rows = db.session.execute(
        select(Comment.clause_id, Amendment.decided_by_id, Amendment.decided_at, User.name)
        .join(Amendment, Amendment.comment_id == Comment.id)
        .join(User, User.id == Comment.author_id)
        .where(Comment.clause_id.in_(clause_ids), Amendment.state == "accepted")
    ).all()
    found: dict[int, list[tuple[int | None, datetime, str]]] = {}
    for clause_id, decided_by, decided_at, proposer in rows:
        if decided_at is not None:
            found.setdefault(clause_id, []).append((decided_by, decided_at, proposer))
    return found


class _Namer:
    """Credits for stored updates: the person's name, or the amendment's proposer."""

    def __init__(self, updates: Iterable[ClauseUpdate], amendments: dict[int, list[tuple[int | None, datetime, str]]]):
        ids = {update.user_id for update in updates if update.user_id is not None}
        self.names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
        self.amendments = amendments

    def credit(self, update: ClauseUpdate) -> Credit:
        name = self.names.get(update.user_id) if update.user_id is not None else None
        if update.origin == "amendment":
            for decided_by, decided_at, proposer in self.amendments.get(update.clause_id, ()):
                if decided_by == update.user_id and abs(decided_at - update.created_at) <= _AMENDMENT_SLACK:
                    accepted_by = f" (accepted by {name})" if name else ""
                    return Credit(f"{proposer}{accepted_by}", update.created_at)
        if name is None:
            name = "Import" if update.origin == "import" else UNKNOWN_AUTHOR
        return Credit(name, update.created_at)


def _versions(updates: Sequence[ClauseUpdate], start: datetime, end: datetime, namer: _Namer) -> list[Version]:
    """The text after each run of one person's updates stored between ``start`` and ``end``.

    Earlier updates are replayed too (they make the text the window starts from) but credit
    nobody; the text is read only where the author changes, not after every keystroke.
    The text read is the body as typed, pending suggestions included (only the credits come from
    it, never the redline's words): an accepted suggestion's words are then credited to whoever
    suggested them, not to the chair whose acceptance merely dropped their mark.
    """
    doc: Doc[Text] = Doc()
    body = doc.get(BODY, type=Text)
    versions: list[Version] = []
    running: Credit | None = None
    for update in updates:
        in_window = start < update.created_at <= end
        credit = namer.credit(update) if in_window else None
        if running is not None and (credit is None or credit.author != running.author):
            versions.append(Version(str(body), running))
            running = None
        try:
            doc.apply_update(update.update)
        except ValueError:  # a damaged stored update: credit what can be read
            continue
        if credit is not None:
            running = credit
    if running is not None:
        versions.append(Version(str(body), running))
    return versions


def redline_credits(code: Code, old: DraftSelector, new: DraftSelector,
                    comparison: Comparison) -> tuple[Credit, dict[str, ClauseCredits]]:
    """The fallback credit (the new draft's publisher) and, per clause uid whose text changed,
    who inserted and deleted each character between the two drafts."""
    fallback = publisher_credit(code, new)
    start, end = _moment(code, old), _moment(code, new)
    changed = {clause.uid: clause for clause in comparison.clauses
               if clause.old is not None and clause.new is not None and clause.text_changed}
    if not changed or end <= start:
        return fallback, {}
    clause_ids = dict(db.session.execute(
        select(Clause.uid, Clause.id).where(Clause.code_id == code.id, Clause.uid.in_(list(changed)))
    ).all())
    updates: dict[int, list[ClauseUpdate]] = {}
    for update in db.session.scalars(
        select(ClauseUpdate).where(ClauseUpdate.clause_id.in_(list(clause_ids.values())),
                                   ClauseUpdate.created_at <= end)
        .order_by(ClauseUpdate.clause_id, ClauseUpdate.id)
    ):
        updates.setdefault(update.clause_id, []).append(update)
    namer = _Namer([u for rows in updates.values() for u in rows], _amendment_authors(list(clause_ids.values())))
    credits: dict[str, ClauseCredits] = {}
    for uid, clause in changed.items():
        assert clause.old is not None and clause.new is not None
        versions = _versions(updates.get(clause_ids.get(uid, -1), []), start, end, namer)
        if not versions:
            continue  # every change is the fallback's (an import): no need to follow anything
        credits[uid] = credit_changes(clause.old.body_markdown, versions, clause.new.body_markdown, fallback)
    return fallback, credits
