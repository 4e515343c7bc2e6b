"""Redline between two drafts as DOCX with real Word tracked changes.

Every inserted word is a run inside ``<w:ins>``, every deleted word a run inside ``<w:del>`` whose
text is ``<w:delText>``, each with ``w:author`` and ``w:date``; line breaks that were inserted or
deleted are tracked on the paragraph mark. Word and LibreOffice therefore show the redline as
changes to accept or reject: accepting all gives the new draft's text, rejecting all the old.
python-docx has no API for revisions, so they are built with its low-level oxml helpers.

Each change carries the real author and time of the edit that made it (``credits``, from the
co-editing log, accepted amendments and imports; see :mod:`.attribution`); a change nobody is
known for is credited to the draft's publisher at its publication.

For the PDF, LibreOffice colours tracked changes by author, so insertions and deletions by one
person came out in one colour: ``marks="print"`` writes the same redline as plain formatting
instead, insertions green and underlined, deletions red and struck through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from itertools import count

from docx.document import Document as WordDocument
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Pt
from docx.text.paragraph import Paragraph

from .attribution import ClauseCredits, Credit, CreditedSegment, credit_segments
from .compare import ClauseComparison, Comparison, DiffOp
from .docx_export import (
    CHAPTER_LEVEL,
    CLAUSE_LEVEL,
    MAX_HEADING_LEVEL,
    TocEntry,
    add_table_of_contents,
    heading_text,
    new_document,
    save_docx,
    styled_paragraph,
    xml_text,
)
from .redline import change_badges
from .redline_blocks import Piece, Side, classify_line, split_lines_with_breaks, styled_runs


def word_date(moment: datetime) -> str:
    """``w:date`` value (xsd:dateTime in UTC, no fractions); a naive time is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


_SPACE_ATTRIBUTE = qn("xml:space")
_PARAGRAPH_PROPERTIES = qn("w:pPr")
_RUN_PROPERTIES = qn("w:rPr")

# Print colours (hex RGB, no '#'): the same green and red as the HTML redline's ink.
_INSERT_COLOUR = "0B5A13"
_DELETE_COLOUR = "8A1010"


class _Revisions:
    """Writes kept, inserted and deleted text: as tracked changes (``print_marks`` False), each
    mark with a unique id and its credit's author and date, or as coloured, underlined and
    struck-through runs for a printed redline."""

    def __init__(self, fallback: Credit, *, print_marks: bool = False) -> None:
        self.fallback = fallback
        self.print_marks = print_marks
        self._ids = count(1)
        self._dates: dict[object, str] = {}

    def mark(self, tag: str, credit: Credit | None = None) -> BaseOxmlElement:
        credit = credit or self.fallback
        element = OxmlElement(tag)
        element.set(qn("w:id"), str(next(self._ids)))
        element.set(qn("w:author"), xml_text(credit.author) or "CodeDraft")
        date = self._dates.get(credit.at)
        if date is None:
            date = self._dates[credit.at] = word_date(credit.at)
        element.set(qn("w:date"), date)
        return element

    def _run(self, op: DiffOp, text: str, *, bold: bool, italic: bool) -> BaseOxmlElement:
        """A run of text: deleted text is ``w:delText`` when tracked; printed changes carry
        their colour, underline or strike-through. ``w:rPr`` children keep the schema order."""
        printed = self.print_marks and op is not DiffOp.EQUAL
        run = OxmlElement("w:r")
        if bold or italic or printed:
            properties = OxmlElement("w:rPr")
            if bold:
                properties.append(OxmlElement("w:b"))
            if italic:
                properties.append(OxmlElement("w:i"))
            if printed:
                if op is DiffOp.DELETE:
                    properties.append(OxmlElement("w:strike"))
                colour = OxmlElement("w:color")
                colour.set(qn("w:val"), _INSERT_COLOUR if op is DiffOp.INSERT else _DELETE_COLOUR)
                properties.append(colour)
                if op is DiffOp.INSERT:
                    underline = OxmlElement("w:u")
                    underline.set(qn("w:val"), "single")
                    properties.append(underline)
            run.append(properties)
        content = OxmlElement("w:delText" if op is DiffOp.DELETE and not printed else "w:t")
        content.set(_SPACE_ATTRIBUTE, "preserve")
        content.text = xml_text(text)
        run.append(content)
        return run

    def append_text(self, paragraph: Paragraph, op: DiffOp, text: str, credit: Credit | None = None,
                    *, bold: bool = False, italic: bool = False) -> None:
        """Append ``text`` to the paragraph as kept, inserted or deleted."""
        if not text:
            return
        run = self._run(op, text, bold=bold, italic=italic)
        if op is DiffOp.EQUAL or self.print_marks:
            paragraph._p.append(run)
            return
        wrapper = self.mark("w:ins" if op is DiffOp.INSERT else "w:del", credit)
        wrapper.append(run)
        paragraph._p.append(wrapper)

    def track_paragraph_mark(self, paragraph: Paragraph, op: DiffOp, credit: Credit | None = None) -> None:
        """Mark the paragraph's end as inserted or deleted, so accepting or rejecting the change
        joins or splits paragraphs as the drafts do."""
        if op is DiffOp.EQUAL or self.print_marks:
            return
        element = paragraph._p
        if len(element) and element[0].tag == _PARAGRAPH_PROPERTIES:
            properties = element[0]
        else:
            properties = OxmlElement("w:pPr")
            element.insert(0, properties)
        run_properties = properties.find(_RUN_PROPERTIES)
        if run_properties is None:
            run_properties = OxmlElement("w:rPr")
            # w:rPr comes after the other paragraph properties but before a section break.
            section = properties.find(qn("w:sectPr"))
            if section is None:
                properties.append(run_properties)
            else:
                section.addprevious(run_properties)
        run_properties.append(self.mark("w:ins" if op is DiffOp.INSERT else "w:del", credit))


def _write_tracked_lines(
    word: WordDocument,
    segments: Iterable[CreditedSegment],
    revisions: _Revisions,
    *,
    style: str,
    first: Paragraph | None = None,
    clause_op: DiffOp = DiffOp.EQUAL,
    clause_credit: Credit | None = None,
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
                if clause_op is DiffOp.EQUAL:
                    revisions.track_paragraph_mark(paragraph, segment.op, segment.credit)
                else:
                    revisions.track_paragraph_mark(paragraph, clause_op, clause_credit or segment.credit)
                paragraph = styled_paragraph(word, style)
            revisions.append_text(paragraph, segment.op, line, segment.credit)
    return paragraph


def _line_op(pieces: list[Piece]) -> DiffOp:
    """INSERT or DELETE when the whole line was inserted or deleted, else EQUAL."""
    ops = {piece.op for piece in pieces}
    return ops.pop() if len(ops) == 1 else DiffOp.EQUAL


def _line_style(kind: str, level: int, clause_level: int) -> str:
    if kind == "heading":
        return f"Heading {min(MAX_HEADING_LEVEL, clause_level + level - 3)}"
    if kind in ("bullet", "ordinal"):
        depth = min(3, level // 2 + 1)
        base = "List Bullet" if kind == "bullet" else "List Continue"
        return base if depth == 1 else f"{base} {depth}"
    return "Normal"


def _write_body(word: WordDocument, segments: list[CreditedSegment], revisions: _Revisions, *,
                clause_level: int, clause_op: DiffOp, clause_credit: Credit | None) -> None:
    """Write a clause body as the Markdown it is: each line a paragraph in the style of its block
    (heading, bulleted or numbered item, text), markers removed, emphasis as bold and italic.

    A line break that was inserted or deleted is tracked on the paragraph mark, so accepting or
    rejecting every change gives each draft's paragraphs; blank lines only separate paragraphs.
    """
    for pieces, line_break in split_lines_with_breaks(segments, Side.BOTH):
        line = classify_line(pieces, Side.BOTH)
        if line.kind == "blank":
            continue
        paragraph = styled_paragraph(word, _line_style(line.kind, line.level, clause_level))
        if line.kind == "ordinal":
            # Numbers are written as text (as in the consolidated DOCX): a legal text's numbering
            # must not be renumbered by Word.
            whole = _line_op(line.pieces)
            credit = next((piece.credit for piece in line.pieces if piece.credit is not None), None)
            revisions.append_text(paragraph, whole, f"{line.start}. ", credit)  # type: ignore[arg-type]
        for run in styled_runs(line.pieces):
            revisions.append_text(paragraph, run.op, run.text, run.credit,  # type: ignore[arg-type]
                                  bold=run.bold, italic=run.italic)
        if clause_op is not DiffOp.EQUAL:
            revisions.track_paragraph_mark(paragraph, clause_op, clause_credit)
        elif line_break is not None:
            revisions.track_paragraph_mark(paragraph, line_break.op, line_break.credit)  # type: ignore[arg-type]


def _clause_op(clause: ClauseComparison) -> DiffOp:
    if clause.old is None:
        return DiffOp.INSERT
    if clause.new is None:
        return DiffOp.DELETE
    return DiffOp.EQUAL


def _write_clause(word: WordDocument, clause: ClauseComparison, level: int, revisions: _Revisions,
                  credits: ClauseCredits | None, words: Mapping[str, str] | None = None) -> None:
    op = _clause_op(clause)
    fallback = revisions.fallback
    body = credit_segments(clause.body_diff, credits, fallback)
    # A wholly added or removed clause is one change: credit it to whoever wrote (or struck)
    # most of its text.
    clause_credit = _main_credit(body) if op is not DiffOp.EQUAL else None
    title = [CreditedSegment(segment.op, segment.text,
                             None if segment.op is DiffOp.EQUAL else clause_credit or fallback)
             for segment in clause.title_diff]
    heading = styled_paragraph(word, f"Heading {level}")
    _write_tracked_lines(word, title, revisions, style=f"Heading {level}", first=heading, clause_op=op,
                         clause_credit=clause_credit)
    revisions.track_paragraph_mark(heading, op, clause_credit)
    if op is DiffOp.EQUAL and (clause.moved or clause.renumbered):
        # What a text diff cannot show (a move, a renumbering) is said in a plain note.
        note = styled_paragraph(word, "Normal")
        note_run = note.add_run(xml_text("; ".join(change_badges(clause, words))))
        note_run.italic = True
        note_run.font.size = Pt(9)
    if body:
        _write_body(word, body, revisions, clause_level=level, clause_op=op, clause_credit=clause_credit)


def _main_credit(segments: Iterable[CreditedSegment]) -> Credit | None:
    weights: dict[Credit, int] = {}
    for segment in segments:
        if segment.credit is not None:
            weights[segment.credit] = weights.get(segment.credit, 0) + len(segment.text)
    return max(weights, key=lambda credit: weights[credit]) if weights else None


def redline_toc_entries(comparison: Comparison) -> list[TocEntry]:
    """Chapters and clauses of the redline as they read in the new draft (or the old one for a
    removed clause), for the filled table of contents."""
    depths = {**comparison.old.clause_depths(), **comparison.new.clause_depths()}
    entries: list[TocEntry] = []
    chapter_key: str | None = None
    for clause in comparison.clauses:
        current = clause.current
        if current.chapter_key != chapter_key:
            chapter_key = current.chapter_key
            title = clause.new_chapter_title if clause.new is not None else clause.old_chapter_title
            entries.append((CHAPTER_LEVEL, xml_text(title)))
        level = min(MAX_HEADING_LEVEL, CLAUSE_LEVEL + depths.get(clause.uid, 0))
        entries.append((level, heading_text(current.number, current.title)))
    return entries


def export_redline_docx(
    comparison: Comparison,
    *,
    author: str = "CodeDraft",
    date: datetime | None = None,
    credits: Mapping[str, ClauseCredits] | None = None,
    include_toc: bool = True,
    marks: str = "tracked",
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The redline from ``comparison.old`` to ``comparison.new`` as .docx bytes.

    Each change is credited from ``credits`` (per clause uid, see :mod:`.attribution`); what
    they do not cover goes to ``author`` at ``date`` (default: the new draft's
    ``generated_at``). ``marks`` is ``"tracked"`` (Word tracked changes) or ``"print"``
    (coloured underline and strike-through, for laying out as PDF). Raises ValueError for
    another ``marks``.
    """
    if marks not in ("tracked", "print"):
        raise ValueError(f"unknown marks: {marks!r}")
    old, new = comparison.old, comparison.new
    revisions = _Revisions(Credit(author, date or new.generated_at), print_marks=marks == "print")
    word = new_document(f"{new.code_title}: {old.draft_label} → {new.draft_label}", new.language)
    styled_paragraph(word, "Title", xml_text(new.code_title))
    word.add_paragraph(
        xml_text(new.word("changes_print" if marks == "print" else "changes_tracked", old=old.draft_label,
                          new=new.draft_label)),
        style="Subtitle",
    )
    if include_toc:
        add_table_of_contents(word, redline_toc_entries(comparison), heading=new.word("contents"),
                              placeholder=new.word("toc_update"))

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
        _write_clause(word, clause, level, revisions, (credits or {}).get(clause.uid), new.words)
        if progress is not None:
            progress(done, total)
    return save_docx(word)
