"""Importing a document into a code: a new code from a file, or the next version of one.

A later version keeps every clause's stable id where the matcher finds the same clause (by
number and title, then title, then text), adds the new ones and withdraws the dropped ones,
then publishes the result as a draft. Texts of clauses people have co-edited change through
minimal edits on their live documents, so an import never clobbers concurrent work.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Chapter, Clause, Code, DraftersNote, WorkingGroup
from codedraft.collab.store import store_for
from codedraft.drafts.models import Draft
from codedraft.drafts.operations import publish_draft
from codedraft.extensions import db
from codedraft.importer.matching import ClauseMatch, MatchReport, OldClause, match_clauses
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


def existing_clauses(code: Code) -> list[OldClause]:
    """The live clauses of ``code`` as the matcher sees them."""
    return [OldClause(c.uid, c.kind, c.number, c.title, c.body) for c in codes.live_clauses(code)]


def corrected(match: MatchReport, old: list[OldClause], corrections: dict[str, str | None]) -> MatchReport:
    """The matcher's proposal with the Office's corrections: ``new_key -> old stable id`` (None for
    "new"). A correction naming an unknown clause or one that is already taken elsewhere raises
    ImportError_, so nothing is applied on a half-understood request."""
    known = {clause.stable_id for clause in old}
    chosen: dict[str, str | None] = {m.new_key: m.old_id for m in match.matches}
    for key, old_id in corrections.items():
        if key not in chosen:
            raise ImportError_(f"No clause {key!r} in the uploaded file.")
        if old_id is not None and old_id not in known:
            raise ImportError_("A correction names a clause that is not in the code.")
        chosen[key] = old_id
    taken = [old_id for old_id in chosen.values() if old_id is not None]
    if len(taken) != len(set(taken)):
        raise ImportError_("Two clauses of the file would continue the same clause; correct one of them.")
    matches = tuple(
        ClauseMatch(m.new_key, chosen[m.new_key],
                    m.how if chosen[m.new_key] == m.old_id else ("office" if chosen[m.new_key] else "new"))
        for m in match.matches
    )
    dropped = tuple(clause.stable_id for clause in old if clause.stable_id not in set(taken))
    return MatchReport(matches, dropped)


class ImportError_(ValueError):  # noqa: N801  (ImportError is Python's own)
    """An import that cannot be carried out; the message is safe to show."""


def import_document(
    text: str,
    *,
    code: Code | None = None,
    title: str | None = None,
    draft_name: str | None = None,
    by: User | None = None,
    progress: Progress | None = None,
    parsed: ParsedDocument | None = None,
    corrections: dict[str, str | None] | None = None,
    groups: dict[str, WorkingGroup | None] | None = None,
    fresh: bool = False,
    from_word: bool = False,
) -> ImportReport:
    """Import Markdown ``text`` (or an already ``parsed`` document) as a new code, or as the next
    version of ``code``, with the Office's match ``corrections`` and working ``groups`` per
    chapter key.

    ``from_word`` says the text came from Word: a clause whose words are unchanged keeps its live
    Markdown (Word does not carry all of it). ``fresh`` says ``code`` was just created for this
    import (nothing to match against). Publishes a draft named ``draft_name`` when given.
    Mutates and flushes; the caller commits.
    """
    if parsed is None:
        parsed = parse_markdown(text, progress=_scaled(progress, 0, PARSE_SHARE))
    created = code is None or fresh
    if code is None:
        code = codes.create_code(title or parsed.title or "Imported code")
    elif title and title.strip() and title.strip() != code.title:
        code.title = title.strip()
    writer = _ClauseWriter(code, parsed, by, _scaled(progress, PARSE_SHARE, 100 - PARSE_SHARE))
    match = None
    if not created:
        old = existing_clauses(code)
        match = match_clauses(old, parsed)
        if corrections:
            match = corrected(match, old, corrections)
    writer.groups = groups or {}
    writer.keep_markup = from_word
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
        self.groups: dict[str, WorkingGroup | None] = {}
        # A file without any drafters' note (a Word export, which never carries them) leaves the
        # clauses' notes as they are; a file with notes brings its version's notes.
        self.replace_notes = any(clause.notes for clause in parsed.clauses())
        self.keep_markup = False

    def write(self, match: MatchReport | None) -> None:
        continues = {m.new_key: m.old_id for m in match.matches} if match else {}
        by_key: dict[str, Clause] = {}
        parents: list[tuple[Clause, str | None]] = []
        total = sum(len(ch.clauses) for ch in self.parsed.chapters)
        done = 0
        self.written_chapters: list[Chapter] = []
        for position, parsed_chapter in enumerate(self.parsed.chapters):
            chapter = self._chapter_for(parsed_chapter, position)
            self.written_chapters.append(chapter)
            for parsed in parsed_chapter.clauses:
                clause = self._write_clause(chapter, parsed, continues.get(parsed.key), done)
                by_key[parsed.key] = clause
                parents.append((clause, parsed.parent_key))
                done += 1
                if self.progress and done % 25 == 0:
                    self.progress(done, total)
        # Chapters of the earlier version that this one does not have follow the new ones.
        kept = {chapter.id for chapter in self.written_chapters}
        others = db.session.scalars(select(Chapter).where(Chapter.code_id == self.code.id)
                                    .order_by(Chapter.position)).all()
        for offset, chapter in enumerate(c for c in others if c.id not in kept):
            chapter.position = len(self.parsed.chapters) + offset
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
        chapter.import_key = parsed.key
        if parsed.key in self.groups:
            codes.assign_working_group(chapter, self.groups[parsed.key])
        return chapter

    def _write_clause(self, chapter: Chapter, parsed: ParsedClause, old_uid: str | None, position: int) -> Clause:
        if old_uid is None:
            clause = codes.add_clause(chapter, kind=parsed.kind, number=parsed.number, title=parsed.title,
                                      body=parsed.body, position=position, import_key=parsed.key)
            _write_notes(clause, parsed)
            return clause
        clause = self.existing[old_uid]
        if self.replace_notes:
            _write_notes(clause, parsed)
        clause.chapter_id, clause.kind, clause.position = chapter.id, parsed.kind, position
        if not same_label(clause.number, clause.title, parsed.number, parsed.title):
            clause.number, clause.title = parsed.number, parsed.title
            clause.number_manual = False
        clause.import_key = parsed.key
        clause.withdrawn = False
        if self.keep_markup and same_words(clause.body, parsed.body):
            # From Word, whose text lost the Markdown markup: same words, so the live text stays.
            return clause
        clause.updated_at = utcnow()
        if clause.body != parsed.body:
            store_for(current_app).edit_live_text(clause, lambda _live: parsed.body,
                                                  user_id=self.by.id if self.by else None, origin="import")
        return clause


def _write_notes(clause: Clause, parsed: ParsedClause) -> None:
    """The clause's drafters' notes become those of the imported version (a note belongs to one
    version's reasoning; the previous ones stay in the previous file)."""
    for note in list(clause.notes):
        db.session.delete(note)
    clause.notes.clear()
    for position, note in enumerate(parsed.notes):
        clause.notes.append(DraftersNote(title=note.title[:500], body=note.body, position=position))


_WORDS = re.compile(r"\w+")


def same_words(a: str, b: str) -> bool:
    """Whether two texts say the same words in the same order, whatever their Markdown markup."""
    return _WORDS.findall(a.casefold()) == _WORDS.findall(b.casefold())


def same_label(number_a: str, title_a: str, number_b: str, title_b: str) -> bool:
    """Whether "1.1" + "Types" and "" + "1.1 Types" label a clause alike (a section's number is
    part of its heading text in exports)."""
    return same_words(f"{number_a} {title_a}", f"{number_b} {title_b}")
