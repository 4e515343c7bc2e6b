"""What an upload would do, shown to the Office before anything is written.

``build_preview`` reads the stored upload, parses it and, for a next version, matches it against
the code's live clauses. It writes nothing. The preview names every chapter and clause (kind,
number, title, drafters' notes), the parser's warnings, and for each clause of a next version
the clause it would continue, why, and how alike their texts are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from flask_babel import gettext as _

from codedraft.codes.models import Code
from codedraft.codes.numbering import clause_heading
from codedraft.importer.matching import MatchReport, OldClause, match_clauses, text_similarity
from codedraft.importer.parse import ParsedDocument, parse_markdown
from codedraft.importer.reading import UnreadableFile, read_upload

_WORD = re.compile(r"\w+")
# How many leading words of two texts are compared for the confidence shown beside a match.
CONFIDENCE_WORDS = 300


@dataclass(frozen=True)
class ProposedMatch:
    """The old clause a new one would continue (None: it is new), the reason and the confidence."""

    new_key: str
    old_id: str | None
    how: str
    confidence: int  # 0-100: how alike the two texts are


@dataclass
class ImportPreview:
    """The parsed upload and, for a next version, the proposed matches."""

    document: ParsedDocument | None
    markdown: str = ""
    error: str = ""
    notices: tuple[str, ...] = ()
    matches: dict[str, ProposedMatch] = field(default_factory=dict)
    old: list[OldClause] = field(default_factory=list)
    dropped: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for clause in self.document.clauses() if self.document else ():
            counts[clause.kind] = counts.get(clause.kind, 0) + 1
        return counts

    @cached_property
    def _parents(self) -> dict[str, str | None]:
        return {c.key: c.parent_key for c in self.document.clauses()} if self.document else {}

    def depth(self, key: str) -> int:
        """How deep a clause sits under others (a measure under its commitment: 1). The page asks
        for every clause: the parents are read once (read on every call, a document of 25,000
        clauses took minutes to preview)."""
        depth, parent = 0, self._parents.get(key)
        while parent is not None and depth < 10:
            depth, parent = depth + 1, self._parents.get(parent)
        return depth

    def old_label(self, old_id: str | None) -> str:
        for clause in self.old:
            if clause.stable_id == old_id:
                return clause_heading(clause.kind, clause.number, clause.title)
        return ""

    def candidates(self, kind: str) -> list[OldClause]:
        """The old clauses a clause of ``kind`` may be said to continue (same kind family)."""
        return self._candidates_by_family.get(_family(kind), [])

    @cached_property
    def _candidates_by_family(self) -> dict[str, list[OldClause]]:
        families: dict[str, list[OldClause]] = {}
        for clause in self.old:
            families.setdefault(_family(clause.kind), []).append(clause)
        return families


def _family(kind: str) -> str:
    """The kinds a clause may continue across drafts: a glossary entry was a section before."""
    return {"glossary": "section"}.get(kind, kind)


REASONS = {
    "number+title": "same number and title",
    "title": "same title",
    "text": "alike text",
    "office": "chosen by the Office",
    "new": "no earlier clause is like it",
}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())[:CONFIDENCE_WORDS]


def proposed_matches(old: list[OldClause], document: ParsedDocument, report: MatchReport) -> dict[str, ProposedMatch]:
    bodies = {clause.stable_id: _words(clause.body) for clause in old}
    result: dict[str, ProposedMatch] = {}
    for clause, match in zip(document.clauses(), report.matches, strict=True):
        confidence = 0
        if match.old_id is not None:
            confidence = round(100 * text_similarity(_words(clause.body), bodies[match.old_id]))
        result[clause.key] = ProposedMatch(clause.key, match.old_id, match.how, confidence)
    return result


def preview_text(markdown: str, code: Code | None, old: list[OldClause] | None = None, *,
                 outline: bool = False) -> ImportPreview:
    """Parse ``markdown`` and match it against ``old`` (the live clauses of ``code``)."""
    document = parse_markdown(markdown, outline=outline)
    preview = ImportPreview(document, markdown)
    if code is not None and old is not None:
        report = match_clauses(old, document)
        preview.old = old
        preview.matches = proposed_matches(old, document, report)
        preview.dropped = report.dropped
    return preview


def preview_upload(data: bytes, filename: str, code: Code | None, old: list[OldClause] | None,
                   *, max_bytes: int) -> ImportPreview:
    """The preview of uploaded bytes; a file that cannot be read gives a preview with ``error``."""
    try:
        uploaded = read_upload(data, filename, max_bytes=max_bytes)
    except UnreadableFile as error:
        return ImportPreview(None, error=str(error))
    preview = preview_text(uploaded.markdown, code, old, outline=uploaded.outline)
    preview.notices = uploaded.notices
    if not preview.document or not preview.document.chapters:
        preview.error = _("The file holds no text to import.")
    return preview
