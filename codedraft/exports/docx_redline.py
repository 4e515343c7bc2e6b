"""Redline between two drafts as DOCX with real Word tracked changes.

Every inserted word is a run inside ``<w:ins>``, every deleted word a run inside ``<w:del>`` whose
text is ``<w:delText>``, each with ``w:author`` and ``w:date``; line breaks that were inserted or
deleted are tracked on the paragraph mark. Word and LibreOffice therefore show the redline as
changes to accept or reject: accepting all gives the new draft's text, rejecting all the old.
python-docx has no API for revisions, so they are built with its low-level oxml helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from itertools import count

from docx.document import Document as WordDocument
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Pt
from docx.text.paragraph import Paragraph

from .compare import ClauseComparison, Comparison, DiffOp, DiffSegment
from .docx_export import (
    CHAPTER_LEVEL,
    CLAUSE_LEVEL,
    MAX_HEADING_LEVEL,
    add_table_of_contents,
    new_document,
    save_docx,
    styled_paragraph,
    xml_text,
)
from .redline import change_badges


def word_date(moment: datetime) -> str:
    """``w:date`` value (xsd:dateTime in UTC, no fractions); a naive time is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


class _Revisions:
    """Creates revision marks with unique ids, one author and one date."""

    def __init__(self, author: str, date: str) -> None:
        self.author = author
        self.date = date
        self._ids = count(1)

    def mark(self, tag: str) -> BaseOxmlElement:
        element = OxmlElement(tag)
        element.set(qn("w:id"), str(next(self._ids)))
        element.set(qn("w:author"), self.author)
        element.set(qn("w:date"), self.date)
        return element

    def append_text(self, paragraph: Paragraph, op: DiffOp, text: str) -> None:
        """Append ``text`` to the paragraph as kept, inserted or deleted."""
        if not text:
            return
        run = OxmlElement("w:r")
        content = OxmlElement("w:delText" if op is DiffOp.DELETE else "w:t")
        content.set(qn("xml:space"), "preserve")
        content.text = xml_text(text)
        run.append(content)
        if op is DiffOp.EQUAL:
            paragraph._p.append(run)
            return
        wrapper = self.mark("w:ins" if op is DiffOp.INSERT else "w:del")
        wrapper.append(run)
        paragraph._p.append(wrapper)

    def track_paragraph_mark(self, paragraph: Paragraph, op: DiffOp) -> None:
        """Mark the paragraph's end as inserted or deleted, so accepting or rejecting the change
        joins or splits paragraphs as the drafts do."""
        if op is DiffOp.EQUAL:
            return
        properties = paragraph._p.get_or_add_pPr()
        run_properties = properties.find(qn("w:rPr"))
        if run_properties is None:
            run_properties = OxmlElement("w:rPr")
            # w:rPr comes after the other paragraph properties but before a section break.
            section = properties.find(qn("w:sectPr"))
            if section is None:
                properties.append(run_properties)
            else:
                section.addprevious(run_properties)
        run_properties.append(self.mark("w:ins" if op is DiffOp.INSERT else "w:del"))


def _write_tracked_lines(
    word: WordDocument,
    segments: Iterable[DiffSegment],
    revisions: _Revisions,
    *,
    style: str,
    first: Paragraph | None = None,
    clause_op: DiffOp = DiffOp.EQUAL,
) -> Paragraph:
    """Write diff segments as paragraphs, one per line; returns the last paragraph.

    A line break inside an inserted or deleted segment becomes a tracked paragraph mark.
    ``clause_op`` marks every paragraph mark (for a wholly added or removed clause).
    """
    paragraph = first if first is not None else styled_paragraph(word, style)
    for segment in segments:
        lines = segment.text.split("\n")
        for index, line in enumerate(lines):
            if index:
                mark_op = segment.op if clause_op is DiffOp.EQUAL else clause_op
                revisions.track_paragraph_mark(paragraph, mark_op)
                paragraph = styled_paragraph(word, style)
            revisions.append_text(paragraph, segment.op, line)
    return paragraph


def _clause_op(clause: ClauseComparison) -> DiffOp:
    if clause.old is None:
        return DiffOp.INSERT
    if clause.new is None:
        return DiffOp.DELETE
    return DiffOp.EQUAL


def _write_clause(word: WordDocument, clause: ClauseComparison, level: int, revisions: _Revisions) -> None:
    op = _clause_op(clause)
    heading = styled_paragraph(word, f"Heading {level}")
    _write_tracked_lines(word, clause.title_diff, revisions, style=f"Heading {level}", first=heading, clause_op=op)
    revisions.track_paragraph_mark(heading, op)
    if op is DiffOp.EQUAL and (clause.moved or clause.renumbered):
        # What a text diff cannot show (a move, a renumbering) is said in a plain note.
        note = styled_paragraph(word, "Normal")
        note_run = note.add_run(xml_text("; ".join(change_badges(clause))))
        note_run.italic = True
        note_run.font.size = Pt(9)
    if clause.body_diff:
        last = _write_tracked_lines(word, clause.body_diff, revisions, style="Normal", clause_op=op)
        revisions.track_paragraph_mark(last, op)


def export_redline_docx(
    comparison: Comparison,
    *,
    author: str = "CodeDraft",
    date: datetime | None = None,
    include_toc: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The redline from ``comparison.old`` to ``comparison.new`` as .docx bytes with tracked
    changes attributed to ``author`` at ``date`` (default: the new draft's ``generated_at``)."""
    old, new = comparison.old, comparison.new
    revisions = _Revisions(xml_text(author), word_date(date or new.generated_at))
    word = new_document(f"{new.code_title}: {old.draft_label} → {new.draft_label}", new.language)
    styled_paragraph(word, "Title", xml_text(new.code_title))
    word.add_paragraph(
        xml_text(f"Changes from {old.draft_label} to {new.draft_label}, shown as tracked changes"),
        style="Subtitle",
    )
    if include_toc:
        add_table_of_contents(word)

    depths = {**old.clause_depths(), **new.clause_depths()}
    old_chapters = {chapter.key for chapter in old.chapters}
    new_chapters = {chapter.key for chapter in new.chapters}
    chapter_key: str | None = None
    total = len(comparison.clauses)
    for done, clause in enumerate(comparison.clauses, start=1):
        current = clause.current
        if current.chapter_key != chapter_key:
            chapter_key = current.chapter_key
            title = clause.new_chapter_title if clause.new is not None else clause.old_chapter_title
            heading = styled_paragraph(word, f"Heading {CHAPTER_LEVEL}")
            # A chapter only in one draft is itself an insertion or a deletion.
            chapter_op = (
                DiffOp.INSERT
                if chapter_key not in old_chapters
                else DiffOp.DELETE
                if chapter_key not in new_chapters
                else DiffOp.EQUAL
            )
            revisions.append_text(heading, chapter_op, title)
            revisions.track_paragraph_mark(heading, chapter_op)
        level = min(MAX_HEADING_LEVEL, CLAUSE_LEVEL + depths.get(clause.uid, 0))
        _write_clause(word, clause, level, revisions)
        if progress is not None:
            progress(done, total)
    return save_docx(word)
