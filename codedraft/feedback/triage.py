"""Handling a whole round: campaign groups, themes, answer templates, responses and publishing
them together as the round's annex.

Operations mutate and flush; the view commits once. Grouping and themes are recomputed on
demand (a chair's button, or ``codedraft feedback-triage``), never on the comment's request.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update

from codedraft import policy
from codedraft.accounts.models import User
from codedraft.codes.models import Clause, Code, Membership, Role
from codedraft.extensions import db
from codedraft.feedback import grouping
from codedraft.feedback import themes as themes_module
from codedraft.feedback.models import (
    DISPOSITIONS,
    AnswerTemplate,
    CampaignGroup,
    Comment,
    FeedbackRound,
    Response,
    Theme,
)
from codedraft.feedback.operations import FeedbackError, NotAllowed, notify
from codedraft.notifications import messages as said
from codedraft.numbers import stored_integer
from codedraft.timeutil import utcnow

MAX_RESPONSE_CHARS = 10_000


# --- who -------------------------------------------------------------------------------------


def is_drafting_team(user: User | None, code: Code) -> bool:
    """The Office and the chairs and members of the code (code-wide or in a working group):
    they see the round's groups, themes and unpublished responses."""
    if user is None or not user.is_authenticated:
        return False
    if policy.can_administer_code(user, code):
        return True
    return db.session.scalar(
        select(Membership.id).where(Membership.user_id == user.id, Membership.code_id == code.id,
                                    Membership.role.in_([Role.member.name, Role.chair.name])).limit(1)
    ) is not None


def _live_comments(feedback_round: FeedbackRound) -> Any:
    """Comments of the round that count: not hidden, not withdrawn."""
    return and_(Comment.round_id == feedback_round.id, Comment.hidden.is_(False), Comment.status != "withdrawn")


# --- campaign groups -------------------------------------------------------------------------


@dataclass
class GroupingReport:
    groups: int = 0
    grouped_comments: int = 0
    comments: int = 0


def group_round(feedback_round: FeedbackRound, threshold: float = grouping.DEFAULT_THRESHOLD) -> GroupingReport:
    """Find the round's campaign groups again and store them.

    A new group keeps the id (and so the response) of the old group it shares most comments
    with, if that is more than half of the old group; old groups nobody took over are deleted
    with their responses.
    """
    rows = db.session.execute(
        select(Comment.id, Comment.clause_id, Comment.body, Comment.group_id).where(_live_comments(feedback_round))
    ).all()
    found = grouping.find_groups((grouping.Submission(r.id, r.clause_id, r.body) for r in rows), threshold)
    old_members: dict[int, set[int]] = {}
    for row in rows:
        if row.group_id is not None:
            old_members.setdefault(row.group_id, set()).add(row.id)
    texts = {row.id: row.body for row in rows}
    db.session.execute(update(Comment).where(Comment.round_id == feedback_round.id).values(group_id=None))
    kept: set[int] = set()
    assignments: list[dict[str, int]] = []
    for ids in found:
        group = _take_over(old_members, kept, set(ids), feedback_round)
        group.size = len(ids)
        group.shared_text = texts[ids[0]]
        db.session.flush()
        kept.add(group.id)
        assignments.extend({"id": cid, "group_id": group.id} for cid in ids)
    if assignments:
        db.session.execute(update(Comment), assignments)  # one executemany, by primary key
    stale = [gid for gid in db.session.scalars(select(CampaignGroup.id).where(
        CampaignGroup.round_id == feedback_round.id)) if gid not in kept]
    if stale:
        db.session.execute(delete(Response).where(Response.group_id.in_(stale)))
        db.session.execute(delete(CampaignGroup).where(CampaignGroup.id.in_(stale)))
    db.session.flush()
    return GroupingReport(groups=len(found), grouped_comments=sum(len(ids) for ids in found), comments=len(rows))


def _take_over(old_members: dict[int, set[int]], kept: set[int], ids: set[int],
               feedback_round: FeedbackRound) -> CampaignGroup:
    best, overlap = None, 0
    for group_id, members in old_members.items():
        shared = len(members & ids)
        if group_id not in kept and shared * 2 > len(members) and shared > overlap:
            best, overlap = group_id, shared
    group = db.session.get(CampaignGroup, best) if best is not None else None
    if group is None:
        group = CampaignGroup(round_id=feedback_round.id)
        db.session.add(group)
    return group


@dataclass
class GroupSummary:
    group: CampaignGroup
    clause: Clause
    by_category: dict[str, int]
    organisations: list[str]
    response: Response | None = None

    @property
    def size(self) -> int:
        return self.group.size


def groups_of_round(feedback_round: FeedbackRound, *, clause: Clause | None = None) -> list[GroupSummary]:
    """The round's groups, largest first, with counts by stakeholder category and signatories."""
    conditions = [Comment.group_id.is_not(None), _live_comments(feedback_round)]
    if clause is not None:
        conditions.append(Comment.clause_id == clause.id)
    rows = db.session.execute(
        select(Comment.group_id, Comment.clause_id, Comment.category, Comment.organisation)
        .where(*conditions).order_by(Comment.id)
    ).all()
    if not rows:
        return []
    counts: dict[int, Counter[str]] = {}
    organisations: dict[int, list[str]] = {}
    clause_of: dict[int, int] = {}
    for group_id, clause_id, category, organisation in rows:
        counts.setdefault(group_id, Counter())[category] += 1
        names = organisations.setdefault(group_id, [])
        if organisation and organisation not in names:
            names.append(organisation)
        clause_of.setdefault(group_id, clause_id)
    groups = {g.id: g for g in db.session.scalars(select(CampaignGroup).where(CampaignGroup.id.in_(counts)))}
    clauses = {c.id: c for c in db.session.scalars(select(Clause).where(Clause.id.in_(set(clause_of.values()))))}
    responses = {r.group_id: r for r in db.session.scalars(select(Response).where(Response.group_id.in_(counts)))}
    summaries = [GroupSummary(groups[gid], clauses[clause_of[gid]], dict(counts[gid]), organisations[gid],
                              responses.get(gid)) for gid in counts if gid in groups]
    summaries.sort(key=lambda s: (-s.size, s.group.id))
    return summaries


def group_members(group: CampaignGroup) -> list[Comment]:
    return list(db.session.scalars(select(Comment).where(Comment.group_id == group.id).order_by(Comment.id)))


# --- answer templates ------------------------------------------------------------------------


def templates_of(code: Code) -> list[AnswerTemplate]:
    return list(db.session.scalars(select(AnswerTemplate).where(AnswerTemplate.code_id == code.id)
                                   .order_by(AnswerTemplate.title, AnswerTemplate.id)))


def add_template(code: Code, by: User, title: str, body: str, disposition: str) -> AnswerTemplate:
    """Raises NotAllowed outside the drafting team, FeedbackError for a missing field."""
    if not is_drafting_team(by, code):
        raise NotAllowed("Only the drafting team keeps answer templates.")
    title, body = (title or "").strip(), (body or "").strip()
    if not title or not body:
        raise FeedbackError("A template needs a title and a text.")
    if disposition not in DISPOSITIONS:
        raise FeedbackError("Choose a disposition.")
    template = AnswerTemplate(code_id=code.id, title=title[:200], body=body[:MAX_RESPONSE_CHARS],
                              disposition=disposition)
    db.session.add(template)
    db.session.flush()
    return template


# --- responses -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a response answers: one comment, one campaign group or one theme."""

    kind: str  # "comment" | "group" | "theme"
    id: int

    @classmethod
    def parse(cls, raw: str) -> Target | None:
        kind, _, digits = (raw or "").partition(":")
        number = stored_integer(digits)
        if kind in ("comment", "group", "theme") and number is not None:
            return cls(kind, number)
        return None

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def target_clause(feedback_round: FeedbackRound, target: Target) -> Clause:
    """The clause a target belongs to, checked to be of this round. Raises FeedbackError."""
    clause_id: int | None = None
    if target.kind == "comment":
        comment = db.session.get(Comment, target.id)
        if comment is not None and comment.round_id == feedback_round.id:
            clause_id = comment.clause_id
    elif target.kind == "group":
        group = db.session.get(CampaignGroup, target.id)
        if group is not None and group.round_id == feedback_round.id:
            clause_id = db.session.scalar(select(Comment.clause_id).where(Comment.group_id == group.id).limit(1))
    else:
        theme = db.session.get(Theme, target.id)
        if theme is not None and theme.round_id == feedback_round.id:
            clause_id = theme.clause_id
    clause = db.session.get(Clause, clause_id) if clause_id is not None else None
    if clause is None:
        raise FeedbackError("That comment, group or theme is not part of this round.")
    return clause


def save_response(feedback_round: FeedbackRound, by: User, target: Target, body: str, disposition: str,
                  template: AnswerTemplate | None = None) -> Response:
    """Answer a comment, group or theme (replacing an earlier answer to it).

    With a template and no text of its own, the template's text and disposition are used.
    Raises NotAllowed unless ``by`` may answer feedback on the target's clause, FeedbackError
    once the round's responses are published or for a missing text or disposition.
    """
    if feedback_round.responses_published_at is not None:
        raise FeedbackError("The responses of this round are published; they can no longer change.")
    clause = target_clause(feedback_round, target)
    if not policy.can_answer_feedback(by, clause):
        raise NotAllowed("Only chairs of the clause's working group and the Office answer it.")
    body = (body or "").strip()
    if template is not None:
        if template.code_id != feedback_round.code_id:
            raise FeedbackError("That template belongs to another code.")
        body = body or template.body
        disposition = disposition or template.disposition
    if not body:
        raise FeedbackError("Write the response, or choose a template.")
    if len(body) > MAX_RESPONSE_CHARS:
        raise FeedbackError(f"A response can be at most {MAX_RESPONSE_CHARS} characters long.")
    if disposition not in DISPOSITIONS:
        raise FeedbackError("Choose a disposition.")
    column = {"comment": Response.comment_id, "group": Response.group_id, "theme": Response.theme_id}[target.kind]
    response = db.session.scalar(select(Response).where(column == target.id))
    if response is None:
        response = Response(round_id=feedback_round.id, **{f"{target.kind}_id": target.id})
        db.session.add(response)
    response.body, response.disposition = body, disposition
    response.template_id = template.id if template is not None else None
    response.author_id, response.updated_at = by.id, utcnow()
    if target.kind == "theme":
        # An answered theme is kept when themes are found again, so its answer is never lost.
        theme = db.session.get(Theme, target.id)
        if theme is not None:
            theme.curated = True
    db.session.flush()
    return response


@dataclass
class BulkReport:
    answered: int = 0
    refused: list[str] = field(default_factory=list)


def bulk_answer(feedback_round: FeedbackRound, by: User, targets: list[Target], body: str, disposition: str,
                template: AnswerTemplate | None = None) -> BulkReport:
    """Give one answer to many targets; each one ``by`` may not answer is named, not fatal."""
    report = BulkReport()
    for target in targets:
        try:
            save_response(feedback_round, by, target, body, disposition, template)
        except NotAllowed:
            report.refused.append(f"{target}: not yours to answer")
        except FeedbackError as error:
            if feedback_round.responses_published_at is not None or not (body or template):
                raise
            report.refused.append(f"{target}: {error}")
        else:
            report.answered += 1
    return report


@dataclass
class TableRow:
    """One line of the response table: a campaign group (one row for all its copies) or a comment."""

    target: Target
    clause: Clause
    text: str
    size: int
    by_category: dict[str, int]
    organisations: list[str]
    theme: Theme | None
    response: Response | None
    inherited: str = ""  # "theme" when the answer comes from the comment's theme


@dataclass
class Table:
    rows: list[TableRow]
    total: int
    answered: int


def response_table(feedback_round: FeedbackRound, *, clause_id: int | None = None, unanswered: bool = False,
                   limit: int = 50, offset: int = 0) -> Table:
    """The round's response table, a page at a time: groups first (largest first), then the
    comments in no group, oldest first. Each row carries its own response or its theme's.

    Paged in SQL: a round of 20,000 comments is never loaded whole for one page of 50.
    """
    live = [_live_comments(feedback_round)]
    if clause_id is not None:
        live.append(Comment.clause_id == clause_id)
    answered_comment = select(Response.comment_id).where(Response.round_id == feedback_round.id,
                                                         Response.comment_id.is_not(None))
    answered_group = select(Response.group_id).where(Response.round_id == feedback_round.id,
                                                     Response.group_id.is_not(None))
    answered_theme = select(Response.theme_id).where(Response.round_id == feedback_round.id,
                                                     Response.theme_id.is_not(None))
    theme_answer = and_(Comment.theme_id.is_not(None), Comment.theme_id.in_(answered_theme))
    group_units = (select(Comment.group_id, func.min(Comment.id).label("first"), func.count().label("size"))
                   .where(*live, Comment.group_id.is_not(None)).group_by(Comment.group_id))
    single = [*live, Comment.group_id.is_(None)]
    if unanswered:
        group_units = group_units.having(and_(Comment.group_id.not_in(answered_group),
                                              func.max(case((theme_answer, 1), else_=0)) == 0))
        single += [Comment.id.not_in(answered_comment), or_(Comment.theme_id.is_(None),
                                                             Comment.theme_id.not_in(answered_theme))]
    groups = db.session.execute(group_units.order_by(func.count().desc(), func.min(Comment.id))).all()
    singles_total = db.session.scalar(select(func.count()).select_from(Comment).where(*single)) or 0
    total = len(groups) + singles_total
    page: list[tuple[Target, int, int]] = [(Target("group", g.group_id), g.first, g.size)
                                           for g in groups[offset:offset + limit]]
    if len(page) < limit:
        skip = max(0, offset - len(groups))
        page += [(Target("comment", cid), cid, 1) for cid in db.session.scalars(
            select(Comment.id).where(*single).order_by(Comment.id).limit(limit - len(page)).offset(skip))]
    answered_groups = db.session.scalar(
        select(func.count(func.distinct(Comment.group_id))).where(
            *live, Comment.group_id.is_not(None), or_(Comment.group_id.in_(answered_group), theme_answer))) or 0
    answered_singles = db.session.scalar(
        select(func.count()).select_from(Comment).where(
            *live, Comment.group_id.is_(None), or_(Comment.id.in_(answered_comment), theme_answer))) or 0
    return Table(_table_rows(feedback_round, page), total, answered_groups + answered_singles)


def _table_rows(feedback_round: FeedbackRound, page: list[tuple[Target, int, int]]) -> list[TableRow]:
    """The page's lines: a group's counts by category from the covering index, and only the
    first comment of each line read in full (a group's copies are never shown here)."""
    if not page:
        return []
    group_ids = [t.id for t, _first, _size in page if t.kind == "group"]
    by_group: dict[int, Counter[str]] = {gid: Counter() for gid in group_ids}
    for group_id, category, number in db.session.execute(
        select(Comment.group_id, Comment.category, func.count()).where(
            _live_comments(feedback_round), Comment.group_id.in_(group_ids)).group_by(Comment.group_id,
                                                                                     Comment.category)
    ):
        by_group[group_id][category] += number
    firsts = {row.id: row for row in db.session.execute(
        select(Comment.id, Comment.clause_id, Comment.theme_id, Comment.category, Comment.organisation,
               Comment.body).where(Comment.id.in_([first for _t, first, _size in page])))}
    responses = _responses_by_target(feedback_round)
    clauses = {c.id: c for c in db.session.scalars(select(Clause).where(
        Clause.id.in_({row.clause_id for row in firsts.values()})))}
    themes = {t.id: t for t in db.session.scalars(select(Theme).where(
        Theme.id.in_({row.theme_id for row in firsts.values() if row.theme_id})))}
    table_rows = []
    for target, first, size in page:
        row = firsts.get(first)
        if row is None:
            continue
        if target.kind == "group":
            categories, organisations = dict(by_group[target.id]), []
        else:
            categories, organisations = {row.category: 1}, [row.organisation] if row.organisation else []
        response, inherited = responses.get(target), ""
        if response is None and row.theme_id is not None and Target("theme", row.theme_id) in responses:
            response, inherited = responses[Target("theme", row.theme_id)], "theme"
        table_rows.append(TableRow(target, clauses[row.clause_id], row.body, size, categories, organisations,
                                   themes.get(row.theme_id), response, inherited))
    return table_rows


def _responses_by_target(feedback_round: FeedbackRound) -> dict[Target, Response]:
    found: dict[Target, Response] = {}
    for response in db.session.scalars(select(Response).where(Response.round_id == feedback_round.id)):
        if response.comment_id is not None:
            found[Target("comment", response.comment_id)] = response
        elif response.group_id is not None:
            found[Target("group", response.group_id)] = response
        elif response.theme_id is not None:
            found[Target("theme", response.theme_id)] = response
    return found


def responses_by_target(feedback_round: FeedbackRound) -> dict[Target, Response]:
    """Every response of the round by what it answers."""
    return _responses_by_target(feedback_round)


def effective_responses(feedback_round: FeedbackRound, *, conditions: list[Any] | None = None) -> dict[int, Response]:
    """comment id -> the response that answers it: its own, else its group's, else its theme's."""
    responses = _responses_by_target(feedback_round)
    answers: dict[int, Response] = {}
    if not responses:
        return answers
    for cid, group_id, theme_id in db.session.execute(
        select(Comment.id, Comment.group_id, Comment.theme_id).where(*(conditions or [_live_comments(feedback_round)]))
    ):
        for target in (Target("comment", cid), Target("group", group_id or 0), Target("theme", theme_id or 0)):
            if target in responses:
                answers[cid] = responses[target]
                break
    return answers


def publish_responses(feedback_round: FeedbackRound, by: User, now: datetime | None = None) -> int:
    """Publish the round's responses together: each answered comment takes the response as its
    disposition, and each author is told once. Returns how many comments were answered.

    Raises NotAllowed unless ``by`` is the Office of the code, FeedbackError while the round is
    still open or once it is published.
    """
    code = db.session.get(Code, feedback_round.code_id)
    if code is None or not policy.can_administer_code(by, code):
        raise NotAllowed("Only the Office publishes a round's responses.")
    moment = now or utcnow()
    if feedback_round.responses_published_at is not None:
        raise FeedbackError("The responses of this round are already published.")
    if feedback_round.is_open(moment) or moment < feedback_round.opens_at:
        raise FeedbackError("Close the round before publishing its responses.")
    answers = effective_responses(feedback_round)
    comments = {c.id: c for c in db.session.scalars(select(Comment).where(Comment.id.in_(answers)))}
    authors: set[int] = set()
    for cid, response in answers.items():
        comment = comments[cid]
        comment.disposition = response.disposition
        comment.disposition_reason = response.body
        comment.status = DISPOSITIONS[response.disposition]
        comment.disposed_by_id, comment.disposed_at = response.author_id, moment
        authors.add(comment.author_id)
    feedback_round.responses_published_at = moment
    for author_id in sorted(authors):
        notify(author_id, said.RESPONSES_PUBLISHED, f"/codes/{code.slug}/rounds/{feedback_round.id}/annex",
               round=feedback_round.name)
    db.session.flush()
    return len(answers)


@dataclass
class AnnexEntry:
    """One line of the published annex: a comment, or a group's shared text and signatories."""

    clause: Clause
    text: str
    organisations: list[str]
    by_category: dict[str, int]
    response: str
    disposition: str
    size: int


def annex(feedback_round: FeedbackRound) -> list[AnnexEntry]:
    """The published responses, by clause, a group once with its signatories. Empty until published."""
    if feedback_round.responses_published_at is None:
        return []
    answers = effective_responses(feedback_round)
    rows = db.session.execute(
        select(Comment.id, Comment.clause_id, Comment.group_id, Comment.body, Comment.organisation, Comment.category)
        .where(Comment.id.in_(answers)).order_by(Comment.id)
    ).all()
    entries: dict[tuple[str, int], AnnexEntry] = {}
    clauses = {c.id: c for c in db.session.scalars(select(Clause).where(Clause.id.in_({r.clause_id for r in rows})))}
    for row in rows:
        response = answers[row.id]
        key = ("group", row.group_id) if row.group_id is not None else ("comment", row.id)
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = AnnexEntry(clauses[row.clause_id], row.body, [], {}, response.body,
                                              response.disposition, 0)
        entry.size += 1
        entry.by_category[row.category] = entry.by_category.get(row.category, 0) + 1
        if row.organisation and row.organisation not in entry.organisations:
            entry.organisations.append(row.organisation)
    return sorted(entries.values(), key=lambda e: (e.clause.chapter_id, e.clause.position, e.clause.id, -e.size))


def unanswered_ids(feedback_round: FeedbackRound) -> list[int]:
    answered = effective_responses(feedback_round)
    return [cid for cid in db.session.scalars(select(Comment.id).where(_live_comments(feedback_round)))
            if cid not in answered]


def round_counts(feedback_round: FeedbackRound) -> dict[str, int]:
    total = db.session.scalar(select(func.count()).select_from(Comment).where(_live_comments(feedback_round))) or 0
    grouped = db.session.scalar(select(func.count()).select_from(Comment).where(
        _live_comments(feedback_round), Comment.group_id.is_not(None))) or 0
    return {"comments": total, "grouped": grouped}


# --- themes ----------------------------------------------------------------------------------


@dataclass
class ThemingReport:
    clauses: int = 0
    themes: int = 0


def compute_themes(feedback_round: FeedbackRound, clause_id: int | None = None) -> ThemingReport:
    """Find the themes of each clause's comments in the round again.

    Themes a chair curated (renamed, merged, split) stay, with their comments; only the other
    comments are clustered anew. A campaign group counts as one text, its copies follow it.
    """
    code = db.session.get(Code, feedback_round.code_id)
    conditions = [_live_comments(feedback_round)]
    if clause_id is not None:
        conditions.append(Comment.clause_id == clause_id)
    curated = set(db.session.scalars(select(Theme.id).where(Theme.round_id == feedback_round.id,
                                                            Theme.curated.is_(True))))
    rows = db.session.execute(
        select(Comment.id, Comment.clause_id, Comment.group_id, Comment.theme_id, Comment.body)
        .where(*conditions).order_by(Comment.id)
    ).all()
    stale = select(Theme.id).where(Theme.round_id == feedback_round.id, Theme.curated.is_(False))
    if clause_id is not None:
        stale = stale.where(Theme.clause_id == clause_id)
    stale_ids = list(db.session.scalars(stale))
    if stale_ids:
        db.session.execute(update(Comment).where(Comment.theme_id.in_(stale_ids)).values(theme_id=None))
        db.session.execute(delete(Response).where(Response.theme_id.in_(stale_ids)))
        db.session.execute(delete(Theme).where(Theme.id.in_(stale_ids)))
    by_clause: dict[int, list[Any]] = {}
    for row in rows:
        if row.theme_id not in curated:
            by_clause.setdefault(row.clause_id, []).append(row)
    report = ThemingReport()
    assignments: list[dict[str, int]] = []
    for clause_ref, clause_rows in sorted(by_clause.items()):
        lead: dict[int, int] = {}  # group id -> the comment that stands for it
        texts: list[themes_module.Text] = []
        followers: dict[int, list[int]] = {}
        for row in clause_rows:
            if row.group_id is not None and row.group_id in lead:
                followers[lead[row.group_id]].append(row.id)
                continue
            if row.group_id is not None:
                lead[row.group_id] = row.id
            followers[row.id] = [row.id]
            texts.append(themes_module.Text(row.id, row.body))
        found = themes_module.find_themes(texts, code.language if code else "en")
        for item in found:
            theme = Theme(round_id=feedback_round.id, clause_id=clause_ref, name=item.name[:200],
                          key_terms=", ".join(item.key_terms)[:500])
            db.session.add(theme)
            db.session.flush()
            assignments.extend({"id": cid, "theme_id": theme.id} for key in item.keys for cid in followers[key])
        report.clauses += 1
        report.themes += len(found)
    if assignments:
        db.session.execute(update(Comment), assignments)
    db.session.flush()
    return report


def _theme_of_round(feedback_round: FeedbackRound, theme_id: int) -> Theme:
    theme = db.session.get(Theme, theme_id)
    if theme is None or theme.round_id != feedback_round.id:
        raise FeedbackError("That theme is not part of this round.")
    return theme


def _may_curate(by: User, clause_id: int) -> None:
    clause = db.session.get(Clause, clause_id)
    if clause is None or not policy.can_answer_feedback(by, clause):
        raise NotAllowed("Only chairs of the clause's working group and the Office change its themes.")


def rename_theme(feedback_round: FeedbackRound, by: User, theme_id: int, name: str) -> Theme:
    theme = _theme_of_round(feedback_round, theme_id)
    _may_curate(by, theme.clause_id)
    name = " ".join((name or "").split())
    if not name:
        raise FeedbackError("Give the theme a name.")
    theme.name, theme.curated = name[:200], True
    db.session.flush()
    return theme


def merge_themes(feedback_round: FeedbackRound, by: User, into_id: int, other_ids: list[int]) -> Theme:
    """Move the comments of ``other_ids`` into ``into_id`` and delete the others (same clause)."""
    into = _theme_of_round(feedback_round, into_id)
    _may_curate(by, into.clause_id)
    others = [_theme_of_round(feedback_round, tid) for tid in other_ids if tid != into_id]
    if not others:
        raise FeedbackError("Choose the themes to merge.")
    if any(theme.clause_id != into.clause_id for theme in others):
        raise FeedbackError("Only themes of the same clause can be merged.")
    ids = [theme.id for theme in others]
    db.session.execute(update(Comment).where(Comment.theme_id.in_(ids)).values(theme_id=into.id))
    db.session.execute(delete(Response).where(Response.theme_id.in_(ids)))
    db.session.execute(delete(Theme).where(Theme.id.in_(ids)))
    into.curated = True
    db.session.flush()
    return into


def split_theme(feedback_round: FeedbackRound, by: User, theme_id: int, comment_ids: list[int],
                name: str) -> Theme:
    """Move the chosen comments of a theme (with their campaign copies) into a new theme."""
    source = _theme_of_round(feedback_round, theme_id)
    _may_curate(by, source.clause_id)
    name = " ".join((name or "").split())
    if not name:
        raise FeedbackError("Give the new theme a name.")
    chosen = list(db.session.scalars(select(Comment).where(Comment.id.in_(comment_ids),
                                                           Comment.theme_id == source.id)))
    if not chosen:
        raise FeedbackError("Choose the comments of the theme that form the new one.")
    groups = {c.group_id for c in chosen if c.group_id is not None}
    theme = Theme(round_id=feedback_round.id, clause_id=source.clause_id, name=name[:200], curated=True)
    db.session.add(theme)
    db.session.flush()
    db.session.execute(update(Comment).where(Comment.theme_id == source.id, or_(
        Comment.id.in_([c.id for c in chosen]), Comment.group_id.in_(groups))).values(theme_id=theme.id))
    source.curated = True
    db.session.flush()
    return theme


@dataclass
class ThemeDigest:
    theme: Theme
    size: int
    by_category: dict[str, int]
    quotes: list[Comment]
    response: Response | None


def clause_digest(feedback_round: FeedbackRound, clause: Clause, *, with_quotes: bool = True) -> list[ThemeDigest]:
    """A clause's themes in the round, largest first, with counts by category and up to three
    quotes each (one per campaign group, campaigns first: what most people sent)."""
    return _digests(feedback_round, [clause.id], with_quotes=with_quotes).get(clause.id, [])


def _digests(feedback_round: FeedbackRound, clause_ids: list[int], *,
             with_quotes: bool) -> dict[int, list[ThemeDigest]]:
    """Themes of several clauses in three queries (plus one per theme for its quotes)."""
    themes = {t.id: t for t in db.session.scalars(select(Theme).where(Theme.round_id == feedback_round.id,
                                                                       Theme.clause_id.in_(clause_ids)))}
    if not themes:
        return {}
    counts: dict[int, Counter[str]] = {tid: Counter() for tid in themes}
    for theme_id, category, number in db.session.execute(
        select(Comment.theme_id, Comment.category, func.count()).where(
            _live_comments(feedback_round), Comment.clause_id.in_(clause_ids), Comment.theme_id.is_not(None))
        .group_by(Comment.theme_id, Comment.category)
    ):
        if theme_id in counts:
            counts[theme_id][category] += number
    responses = {r.theme_id: r for r in db.session.scalars(select(Response).where(Response.theme_id.in_(themes)))}
    found: dict[int, list[ThemeDigest]] = {}
    for theme_id, theme in themes.items():
        quotes = _quotes(feedback_round, theme) if with_quotes else []
        found.setdefault(theme.clause_id, []).append(
            ThemeDigest(theme, sum(counts[theme_id].values()), dict(counts[theme_id]), quotes, responses.get(theme_id)))
    for digests in found.values():
        digests.sort(key=lambda d: (-d.size, d.theme.id))
    return found


def _quotes(feedback_round: FeedbackRound, theme: Theme) -> list[Comment]:
    """Up to three comments of the theme, one per campaign group, campaigns first."""
    candidates = db.session.scalars(
        select(Comment).where(_live_comments(feedback_round), Comment.clause_id == theme.clause_id,
                              Comment.theme_id == theme.id)
        .order_by(Comment.group_id.is_(None), Comment.id).limit(40)
    )
    seen: set[int] = set()
    picked: list[Comment] = []
    for comment in candidates:
        key = comment.group_id if comment.group_id is not None else -comment.id
        if key in seen:
            continue
        seen.add(key)
        picked.append(comment)
        if len(picked) == 3:
            break
    return picked


def chapter_digest(feedback_round: FeedbackRound, clauses: list[Clause]) -> list[tuple[Clause, list[ThemeDigest]]]:
    """Each clause's themes without quotes (the chapter page shows names and counts)."""
    found = _digests(feedback_round, [c.id for c in clauses], with_quotes=False)
    return [(clause, found.get(clause.id, [])) for clause in clauses]


def category_totals(feedback_round: FeedbackRound, clause_ids: list[int]) -> dict[int, dict[str, int]]:
    """clause id -> stakeholder category -> comments in the round (one GROUP BY)."""
    totals: dict[int, dict[str, int]] = {}
    for clause_ref, category, number in db.session.execute(
        select(Comment.clause_id, Comment.category, func.count()).where(
            _live_comments(feedback_round), Comment.clause_id.in_(clause_ids)).group_by(Comment.clause_id,
                                                                                        Comment.category)
    ):
        totals.setdefault(clause_ref, {})[category] = number
    return totals
