"""Build the export core's plain documents from the database.

A published draft becomes an :class:`ExportDocument` from its frozen ``DraftClause`` rows; the
live text from the current ``Clause`` rows. Feedback rows come from the comments of the feedback
feature, imported lazily: until that model exists, the dataset is empty rather than an error.

Chapters are keyed by their normalised title in both cases, because a draft keeps no chapter id:
the same key on both sides is what lets a comparison tell "moved to another chapter" apart from
"stayed".
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.dates import format_datetime
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from codedraft.accounts.models import User
from codedraft.codes.models import Chapter, Clause, Code
from codedraft.codes.numbering import KIND_LABELS
from codedraft.drafts.models import Draft, DraftClause
from codedraft.exports.model import ExportChapter, ExportClause, ExportDocument, FeedbackRow
from codedraft.extensions import db
from codedraft.i18n import SOURCE_LANGUAGE
from codedraft.numbers import stored_integer
from codedraft.timeutil import utcnow

#: The selector of the live text wherever a draft number is expected ("?to=live").
LIVE = "live"

DraftSelector = int | str  # a draft number, or LIVE


class UnknownDraft(LookupError):
    """No draft with that number in the code (or the selector is neither a number nor "live")."""


def chapter_key(title: str) -> str:
    """A chapter's key for comparisons: its title, case- and spacing-folded."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return re.sub(r"\s+", " ", folded).strip() or "untitled"


def display_number(kind: str, number: str) -> str:
    """The number as readers see it: "Commitment II.1" for labelled kinds, else the number."""
    number = number.strip()
    label = KIND_LABELS.get(kind, "")
    return f"{label} {number}" if label and number else number


def parse_selector(raw: object) -> DraftSelector:
    """``"live"`` or a positive draft number from user input; raises :class:`UnknownDraft`."""
    text = str(raw).strip().lower()
    if text == LIVE:
        return LIVE
    number = stored_integer(text)
    if number:
        return number
    raise UnknownDraft(f"not a draft number: {str(raw)[:40]!r}")


def find_draft(code: Code, number: int) -> Draft:
    """The code's draft with that number; raises :class:`UnknownDraft`."""
    draft = db.session.scalar(select(Draft).where(Draft.code_id == code.id, Draft.number == number))
    if draft is None:
        raise UnknownDraft(f"{code.slug} has no draft {number}")
    return draft


def draft_label(draft: Draft) -> str:
    """ "Third Draft (draft 2)" — the name, and the number people select it by (in the current
    locale: the reader's on a page, the document's in an export)."""
    return _("%(name)s (draft %(number)d)", name=draft.name, number=draft.number)


def export_language(code: Code) -> str:
    """The language an export of the code writes its own words in: the code's, when the
    interface speaks it, else English. An export is an artefact of the code, the same file for
    every reader, and its headings then match its text (docs/i18n.md)."""
    language = code.language or SOURCE_LANGUAGE
    return language if language in current_app.config["LANGUAGES"] else SOURCE_LANGUAGE


def redline_words() -> dict[str, str]:
    """REDLINE_WORDS in the current locale (the reader's on a page, the document's in an export)."""
    return {
        "inserted": _("inserted"), "deleted": _("deleted"), "index": _("Changed clauses"),
        "previous": _("Previous changed clause"), "next": _("Next changed clause"),
        "added": _("added"), "removed": _("removed"), "changed": _("changed"),
        "not_in_draft": _("Not in this draft"),
        "badge_added": _("Added"), "badge_removed": _("Removed"),
        "badge_moved_from": _("Moved from “%(chapter)s”"), "badge_moved_within": _("Moved within the chapter"),
        "badge_renumbered": _("Renumbered %(old)s → %(new)s"), "badge_no_number": _("(none)"),
        "badge_retitled": _("Retitled"), "badge_text_changed": _("Text changed"),
        "summary_added": _("Clauses added"), "summary_removed": _("Clauses removed"),
        "summary_moved": _("Clauses moved"), "summary_renumbered": _("Clauses renumbered"),
        "summary_retitled": _("Clauses retitled"), "summary_text_changed": _("Clauses with changed text"),
    }


def feedback_words(language: str) -> dict[str, str]:
    """FEEDBACK_WORDS (codedraft.exports.feedback_export) said in ``language``."""
    with force_locale(language):
        return {
            "feedback_on": _("Feedback on %(draft)s"), "title": _("%(code)s: feedback on %(draft)s"),
            "comments": _("Comments: %(num)s."), "comments_sheet": _("Comments"),
            "per_clause": _("Comments per clause"), "legend": _("Legend"),
            "counts_caption": _("Comments per clause by stakeholder category"), "clause": _("Clause"),
            "total": _("Total"), "annex": _("Annex: disposition of comments"),
            "annex_caption": _("Disposition of comments"), "comment": _("Comment"),
            "organisation": _("Organisation"), "text": _("Text"), "status": _("Status"),
            "disposition": _("Disposition"), "reason": _("Reason"),
            "no_dispositions": _("No dispositions recorded yet."),
        }


def export_words(language: str, generated_at: datetime) -> dict[str, str]:
    """EXPORT_WORDS and the redline's words said in ``language``, and the date as that language
    writes it."""
    with force_locale(language):
        return {
            **redline_words(),
            "contents": _("Contents"),
            "toc_update": _("Right-click and choose Update Field to build the table of contents."),
            "generated": _("Generated %(date)s"),
            "changes_from": _("Changes from %(old)s to %(new)s"),
            "changes_print": _("Changes from %(old)s to %(new)s, insertions underlined, deletions struck through"),
            "changes_tracked": _("Changes from %(old)s to %(new)s, shown as tracked changes"),
            "legend": _("Inserted text is underlined, deleted text struck through."),
            "summary": _("Summary of changes"),
            "date": format_datetime(generated_at, "d MMMM y, HH:mm", locale=language),
        }


def document_from_draft(code: Code, draft: Draft) -> ExportDocument:
    """The published draft as it was frozen, in reading order."""
    rows: Sequence[DraftClause] = db.session.scalars(
        select(DraftClause).where(DraftClause.draft_id == draft.id).order_by(DraftClause.position)
    ).all()
    grouped: dict[tuple[int, str, str], list[DraftClause]] = {}
    for row in rows:
        grouped.setdefault((row.chapter_position, row.chapter_number, row.chapter_title), []).append(row)
    chapters = []
    for (_position, number, title), members in sorted(grouped.items(), key=lambda item: item[0][0]):
        key = chapter_key(title)
        clauses = tuple(
            ExportClause(
                uid=row.clause_uid, number=display_number(row.kind, row.number), title=row.title, kind=row.kind,
                body_markdown=row.body, chapter_key=key, position=index, parent_uid=row.parent_uid,
            )
            for index, row in enumerate(members)
        )
        chapters.append(ExportChapter(key=key, number=number, title=title, clauses=clauses))
    language = export_language(code)
    with force_locale(language):
        label = draft_label(draft)
    return ExportDocument(
        # A draft carries the title it was published under, even after the code is renamed.
        code_title=draft.code_title or code.title, draft_label=label, language=code.language or "en",
        chapters=tuple(chapters), generated_at=draft.published_at,
        words=export_words(language, draft.published_at),
    )


def document_from_live(code: Code) -> ExportDocument:
    """The live text as it stands now: every chapter, and its clauses that are not withdrawn.

    Reads chapters and clauses in one statement, so a clause being typed into is read once, at
    one moment, and never half from before and half from after a commit.
    """
    rows = db.session.execute(
        select(Chapter, Clause)
        .join(Clause, Clause.chapter_id == Chapter.id)
        .where(Chapter.code_id == code.id, Clause.withdrawn.is_(False))
        .order_by(Chapter.position, Clause.position)
    ).all()
    uid_of: dict[int, str] = {
        clause_id: uid
        for clause_id, uid in db.session.execute(select(Clause.id, Clause.uid).where(Clause.code_id == code.id))
    }
    grouped: dict[int, tuple[Chapter, list[Clause]]] = {}
    for chapter, clause in rows:
        grouped.setdefault(chapter.id, (chapter, []))[1].append(clause)
    chapters = []
    for chapter, members in grouped.values():
        key = chapter_key(chapter.title)
        clauses = tuple(
            ExportClause(
                uid=clause.uid, number=display_number(clause.kind, clause.number), title=clause.title,
                kind=clause.kind, body_markdown=clause.body, chapter_key=key, position=index,
                parent_uid=uid_of.get(clause.parent_id) if clause.parent_id else None,
            )
            for index, clause in enumerate(members)
        )
        chapters.append(ExportChapter(key=key, number=chapter.number, title=chapter.title, clauses=clauses))
    language, now = export_language(code), utcnow()
    with force_locale(language):
        label = _("Live text")
    return ExportDocument(
        code_title=code.title, draft_label=label, language=code.language or "en",
        chapters=tuple(chapters), generated_at=now, words=export_words(language, now),
    )


def load_document(code: Code, selector: DraftSelector) -> ExportDocument:
    """The document for a selector: a draft number or ``"live"``; raises :class:`UnknownDraft`."""
    if selector == LIVE:
        return document_from_live(code)
    if not isinstance(selector, int):
        raise UnknownDraft(f"not a draft number: {selector!r}")
    return document_from_draft(code, find_draft(code, selector))


def selector_label(code: Code, selector: DraftSelector) -> str:
    """A short human label for a selector ("Third Draft (draft 2)" or "Live text")."""
    if selector == LIVE:
        return _("Live text")
    assert isinstance(selector, int)
    return draft_label(find_draft(code, selector))


# Feedback ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackScope:
    """Which comments a feedback export holds: the Office alone sees hidden ones."""

    include_hidden: bool


def feedback_scope(viewer: User | None) -> FeedbackScope:
    """Hidden (moderated) comments go to the Office only."""
    return FeedbackScope(include_hidden=bool(viewer is not None and viewer.is_office))


def _comment_model() -> Any | None:
    """The feedback feature's Comment model, or None where it is not installed."""
    try:
        from codedraft.feedback.models import Comment
    except ImportError:
        return None
    return Comment


def feedback_row(comment: Any, clause: Clause, chapter_title: str, category_labels: dict[str, str],
                 round_names: dict[int, str] | None = None, theme_names: dict[int, str] | None = None) -> FeedbackRow:
    """One comment flattened for the dataset. The organisation and category are those copied
    onto the comment when it was written (who spoke for whom then)."""
    amendment = getattr(comment, "amendment", None)
    return FeedbackRow(
        comment_id=comment.id,
        clause_number=display_number(clause.kind, clause.number),
        clause_title=clause.title,
        chapter=chapter_title,
        category=category_labels.get(comment.category, comment.category),
        organisation=comment.organisation or "",
        author=comment.author.name if comment.author is not None else "",
        status=comment.status,
        disposition=comment.disposition or "",
        disposition_reason=comment.disposition_reason or "",
        created=comment.created_at,
        text=comment.body,
        quote=comment.quote or "",
        kind=comment.kind,
        replacement=amendment.replacement if amendment is not None else "",
        supports=comment.support_count or 0,
        round=(round_names or {}).get(comment.round_id, "") if comment.round_id else "",
        group=getattr(comment, "group_id", None) or "",
        theme=(theme_names or {}).get(comment.theme_id, "") if getattr(comment, "theme_id", None) else "",
    )


def feedback_rows(code: Code, scope: FeedbackScope, category_labels: dict[str, str] | None = None) -> list[FeedbackRow]:
    """Every comment (and amendment) on the code's clauses, in reading order then by time;
    hidden ones only when ``scope`` allows. Replies are not rows: one row per submission.

    Returns ``[]`` where the feedback feature is not installed.
    """
    comment_model = _comment_model()
    if comment_model is None:
        return []
    query = (
        select(comment_model, Clause, Chapter.title)
        .join(Clause, Clause.id == comment_model.clause_id)
        .join(Chapter, Chapter.id == Clause.chapter_id)
        .where(comment_model.code_id == code.id, Clause.code_id == code.id)
        .order_by(Chapter.position, Clause.position, comment_model.created_at, comment_model.id)
    )
    if not scope.include_hidden:
        query = query.where(comment_model.hidden.is_(False))
    labels = category_labels or {}
    round_names, theme_names = _round_and_theme_names(code)
    query = query.options(selectinload(comment_model.amendment), selectinload(comment_model.author))
    return [
        feedback_row(comment, clause, chapter_title, labels, round_names, theme_names)
        for comment, clause, chapter_title in db.session.execute(query)
    ]


def _round_and_theme_names(code: Code) -> tuple[dict[int, str], dict[int, str]]:
    """Names of the code's feedback rounds and themes, loaded once for the whole dataset."""
    from codedraft.feedback.models import FeedbackRound, Theme

    rounds = dict(db.session.execute(select(FeedbackRound.id, FeedbackRound.name)
                                     .where(FeedbackRound.code_id == code.id)).all())
    themes = dict(db.session.execute(select(Theme.id, Theme.name).where(Theme.round_id.in_(list(rounds)))).all())
    return rounds, themes


def feedback_categories(configured: Iterable[tuple[str, str]]) -> list[str]:
    """Category labels in the configured order, for stable chart colours."""
    return [label for _key, label in configured]
