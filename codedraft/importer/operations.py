"""Importing a document into a code: a new code from a file, or the next version of one.

A later version keeps every clause's stable id where the matcher finds the same clause (by
number and title, then title, then text), adds the new ones and withdraws the dropped ones,
then publishes the result as a draft. Texts of clauses people have co-edited change through
minimal edits on their live documents, so an import never clobbers concurrent work.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Chapter, Clause, Code
from codedraft.collab.store import store_for
from codedraft.drafts.models import Draft
from codedraft.drafts.operations import publish_draft
from codedraft.extensions import db
from codedraft.importer.matching import MatchReport, OldClause, match_clauses
from codedraft.importer.parse import ParsedChapter, ParsedClause, ParsedDocument, parse_markdown
from codedraft.signals import announce_rights_changed
from codedraft.timeutil import utcnow

Progress = Callable[[int, int], None]
# Share of the progress bar taken by parsing; the rest is writing clauses.
PARSE_SHARE = 20


@dataclass
class ImportReport:
    """What an import found and did, for the CLI and the Office."""

    code: Code
    draft: Draft | None
    created_code: bool
    counts: dict[str, int]
    chapters: int
    matched: int = 0
    new: int = 0
    dropped: int = 0
    matched_by: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        kinds = ", ".join(f"{count} {_plural(kind, count)}" for kind, count in sorted(self.counts.items()))
        lines = [f"Code: {self.code.title} ({self.code.slug})",
                 f"Found {self.chapters} chapters and {sum(self.counts.values())} clauses: {kinds}."]
        if not self.created_code:
            how = ", ".join(f"{n} by {way}" for way, n in sorted(self.matched_by.items()) if way != "new")
            lines.append(f"Against the previous text: {self.matched} matched ({how}), {self.new} new, "
                         f"{self.dropped} dropped.")
        if self.draft is not None:
            lines.append(f"Published as draft {self.draft.number}: {self.draft.name}.")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warnings, first: {self.warnings[0]}")
        return "\n".join(lines)


def _plural(kind: str, count: int) -> str:
    if count == 1:
        return kind
    return kind + ("es" if kind.endswith(("x", "s")) else "s")


def _scaled(progress: Progress | None, start: int, span: int) -> Progress | None:
    if progress is None:
        return None
    return lambda done, total: progress(start + span * done // max(total, 1), 100)


def import_document(
    text: str,
    *,
    code: Code | None = None,
    title: str | None = None,
    draft_name: str | None = None,
    by: User | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import Markdown ``text`` as a new code, or as the next version of ``code``.

    Publishes a draft named ``draft_name`` when given. Mutates and flushes; the caller commits.
    """
    parsed = parse_markdown(text, progress=_scaled(progress, 0, PARSE_SHARE))
    created = code is None
    if code is None:
        code = codes.create_code(title or parsed.title or "Imported code")
    writer = _ClauseWriter(code, parsed, by, _scaled(progress, PARSE_SHARE, 100 - PARSE_SHARE))
    match = None if created else writer.match_existing()
    writer.write(match)
    counts: dict[str, int] = {}
    for clause in parsed.clauses():
        counts[clause.kind] = counts.get(clause.kind, 0) + 1
    draft = publish_draft(code, draft_name, by=by) if draft_name else None
    if progress:
        progress(100, 100)
    report = ImportReport(code=code, draft=draft, created_code=created, counts=counts,
                          chapters=len(parsed.chapters), warnings=parsed.warnings)
    if match is not None:
        report.matched, report.new, report.dropped = match.matched, match.new, len(match.dropped)
        report.matched_by = match.by_how()
    return report


class _ClauseWriter:
    """Writes one parsed document into a code, reusing chapters and clauses where they match."""

    def __init__(self, code: Code, parsed: ParsedDocument, by: User | None, progress: Progress | None) -> None:
        self.code = code
        self.parsed = parsed
        self.by = by
        self.progress = progress
        self.existing = {c.uid: c for c in db.session.scalars(select(Clause).where(Clause.code_id == code.id))}

    def match_existing(self) -> MatchReport:
        old = [OldClause(c.uid, c.kind, c.number, c.title, c.body) for c in codes.live_clauses(self.code)]
        return match_clauses(old, self.parsed)

    def write(self, match: MatchReport | None) -> None:
        continues = {m.new_key: m.old_id for m in match.matches} if match else {}
        by_key: dict[str, Clause] = {}
        parents: list[tuple[Clause, str | None]] = []
        total = sum(len(ch.clauses) for ch in self.parsed.chapters)
        done = 0
        for position, parsed_chapter in enumerate(self.parsed.chapters):
            chapter = self._chapter_for(parsed_chapter, position)
            for parsed in parsed_chapter.clauses:
                clause = self._write_clause(chapter, parsed, continues.get(parsed.key), done)
                by_key[parsed.key] = clause
                parents.append((clause, parsed.parent_key))
                done += 1
                if self.progress and done % 25 == 0:
                    self.progress(done, total)
        for clause, parent_key in parents:
            parent = by_key.get(parent_key) if parent_key else None
            clause.parent_id = parent.id if parent else None
        if match is not None:
            for uid in match.dropped:
                self.existing[uid].withdrawn = True
        db.session.flush()
        announce_rights_changed()  # clauses withdrawn or moved to another chapter's working group

    def _chapter_for(self, parsed: ParsedChapter, position: int) -> Chapter:
        chapter = db.session.scalar(
            select(Chapter).where(Chapter.code_id == self.code.id, Chapter.import_key == parsed.key)
        ) or db.session.scalar(select(Chapter).where(Chapter.code_id == self.code.id, Chapter.title == parsed.title))
        if chapter is None:
            chapter = codes.add_chapter(self.code, parsed.title, number=parsed.number, import_key=parsed.key)
        chapter.position = position
        chapter.number, chapter.title = parsed.number, parsed.title or chapter.title
        return chapter

    def _write_clause(self, chapter: Chapter, parsed: ParsedClause, old_uid: str | None, position: int) -> Clause:
        if old_uid is None:
            return codes.add_clause(chapter, kind=parsed.kind, number=parsed.number, title=parsed.title,
                                    body=parsed.body, position=position, import_key=parsed.key)
        clause = self.existing[old_uid]
        clause.chapter_id, clause.kind, clause.position = chapter.id, parsed.kind, position
        clause.number, clause.title, clause.import_key = parsed.number, parsed.title, parsed.key
        clause.withdrawn = False
        clause.updated_at = utcnow()
        if clause.body != parsed.body:
            store_for(current_app).edit_live_text(clause, lambda _live: parsed.body,
                                                  user_id=self.by.id if self.by else None, origin="import")
        return clause
