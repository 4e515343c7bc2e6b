"""DOCX of a consolidated draft, built with python-docx.

Chapters and clauses use Word's own heading styles (so the navigation pane and the outline work),
with the clause number in the heading text; a real Word TOC field lists them and Word is asked to
update fields on opening. Clause bodies go through the app's safe Markdown renderer and the
resulting (sanitised) HTML is mapped onto Word paragraphs, runs, lists and tables, so there is one
Markdown dialect for every format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from html.parser import HTMLParser
from io import BytesIO

from docx import Document as new_word_document
from docx.document import Document as WordDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Pt
from docx.table import _Cell
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from codedraft.numbers import stored_integer

from .model import EXPORT_WORDS, ExportDocument, MarkdownRenderer

# XML 1.0 cannot hold these; lxml refuses them, so a stray control character in a clause would
# otherwise abort the whole export.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")

#: Word heading levels: chapters are Heading 1, top-level clauses Heading 2.
CHAPTER_LEVEL = 1
CLAUSE_LEVEL = 2
MAX_HEADING_LEVEL = 9


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids."""
    return _XML_ILLEGAL.sub("", text)


def _style_id(word: WordDocument, style_name: str) -> str | None:
    """The style id for a style name, looked up once per document (None for the default)."""
    cache: dict[str, str | None] | None = getattr(word, "_codedraft_style_ids", None)
    if cache is None:
        cache = {}
        word._codedraft_style_ids = cache  # type: ignore[attr-defined]
    if style_name not in cache:
        style = word.styles[style_name]
        cache[style_name] = None if style_name == "Normal" else style.style_id
    return cache[style_name]


def styled_paragraph(word: WordDocument, style_name: str = "Normal", text: str = "") -> Paragraph:
    """Append a paragraph in a named style (KeyError if the template lacks it).

    Built directly as ``<w:p><w:pPr><w:pStyle/></w:pPr></w:p>`` before the body's section
    properties: python-docx's ``add_paragraph(style=...)`` resolves the name with XPath over every
    style each time (about 2 ms), and its generic child insertion searched the element's children
    on every paragraph; on a 2,500-paragraph redline those were most of the export's time.
    """
    style_id = _style_id(word, style_name)
    element = OxmlElement("w:p")
    if style_id is not None:
        properties = OxmlElement("w:pPr")
        style = OxmlElement("w:pStyle")
        style.set(qn("w:val"), style_id)
        properties.append(style)
        element.append(properties)
    body = word.element.body
    last = body[-1] if len(body) else None
    if last is not None and last.tag == _SECTION_TAG:
        last.addprevious(element)
    else:
        body.append(element)
    paragraph = Paragraph(element, word._body)
    if text:
        paragraph.add_run(text)
    return paragraph


_SECTION_TAG = qn("w:sectPr")


def _field_char(kind: str) -> BaseOxmlElement:
    run = OxmlElement("w:r")
    field_char = OxmlElement("w:fldChar")
    field_char.set(qn("w:fldCharType"), kind)
    run.append(field_char)
    return run


def _instruction_run(instruction: str) -> BaseOxmlElement:
    run = OxmlElement("w:r")
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = f" {instruction} "
    run.append(instr)
    return run


def _text_run(text: str) -> BaseOxmlElement:
    run = OxmlElement("w:r")
    element = OxmlElement("w:t")
    element.set(qn("xml:space"), "preserve")
    element.text = xml_text(text)
    run.append(element)
    return run


def add_field(paragraph: Paragraph, instruction: str, placeholder: str) -> None:
    """Append a complex field (e.g. ``TOC \\o "1-3" \\h``) showing ``placeholder`` until Word
    updates it."""
    for element in (_field_char("begin"), _instruction_run(instruction), _field_char("separate"),
                    _text_run(placeholder), _field_char("end")):
        paragraph._p.append(element)


#: A table of contents entry: heading level (1 = chapter) and the heading text.
TocEntry = tuple[int, str]
_TOC_INDENT_PT = 12


def _toc_style(word: WordDocument, level: int) -> str:
    """Word's "TOC n" paragraph style, added to the document when its template lacks it."""
    name = f"TOC {level}"
    try:
        word.styles[name]
    except KeyError:
        style = word.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        style.base_style = word.styles["Normal"]
        style.paragraph_format.left_indent = Pt(_TOC_INDENT_PT * (level - 1))
        style.paragraph_format.space_after = Pt(2)
    return name


def add_table_of_contents(word: WordDocument, entries: Sequence[TocEntry] = (), *, levels: str = "1-3",
                          heading: str = EXPORT_WORDS["contents"],
                          placeholder: str = EXPORT_WORDS["toc_update"]) -> None:
    """A "Contents" heading and a Word TOC field over heading levels ``levels``.

    The field's result is filled with ``entries`` (one "TOC n" paragraph per heading), so the
    contents are there when the file is opened anywhere, before any field update; Word is told to
    refresh fields on opening (it asks the user), which adds page numbers: the written entries
    have none, since only a layout engine knows them.
    """
    styled_paragraph(word, "TOC Heading", xml_text(heading))
    deepest = int(levels.rsplit("-", 1)[-1])
    shown = [(level, text) for level, text in entries if level <= deepest and text.strip()]
    instruction = f'TOC \\o "{levels}" \\h \\z \\u'
    if not shown:
        add_field(word.add_paragraph(), instruction, xml_text(placeholder))
    else:
        # Looked up once per level: a style lookup walks every style of the document.
        styles = {level: _toc_style(word, level) for level in {level for level, _ in shown}}
        for index, (level, text) in enumerate(shown):
            paragraph = styled_paragraph(word, styles[level])
            if index == 0:
                for element in (_field_char("begin"), _instruction_run(instruction), _field_char("separate")):
                    paragraph._p.append(element)
            paragraph._p.append(_text_run(text))
            if index == len(shown) - 1:
                paragraph._p.append(_field_char("end"))
    settings = word.settings.element
    if settings.find(qn("w:updateFields")) is None:
        update = OxmlElement("w:updateFields")
        update.set(qn("w:val"), "true")
        settings.append(update)


def document_toc_entries(document: ExportDocument) -> list[TocEntry]:
    """The headings of a consolidated draft as table of contents entries."""
    depths = document.clause_depths()
    entries: list[TocEntry] = []
    for chapter in document.chapters:
        entries.append((CHAPTER_LEVEL, heading_text(chapter.number, chapter.title)))
        for clause in chapter.clauses:
            level = min(MAX_HEADING_LEVEL, CLAUSE_LEVEL + depths.get(clause.uid, 0))
            entries.append((level, heading_text(clause.number, clause.title)))
    return entries


def new_document(title: str, language: str) -> WordDocument:
    """An empty Word document with the code's title and language in its properties."""
    word = new_word_document()
    word.core_properties.title = xml_text(title)[:255]
    word.core_properties.language = language
    return word


def heading_text(number: str, title: str) -> str:
    """Heading text with the number first, as in the HTML export."""
    return xml_text(" ".join(part for part in (number.strip(), " ".join(title.split())) if part))


class _HtmlToWord(HTMLParser):
    """Maps the renderer's sanitised HTML onto Word content appended via ``new_paragraph``.

    Handles what CommonMark produces (paragraphs, headings, lists, quotes, code, rules, tables,
    emphasis, links, images as their alt text); any other tag contributes its text only.
    """

    _BLOCKS = {"p", "li", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "div"}

    def __init__(self, word: WordDocument, heading_offset: int) -> None:
        super().__init__(convert_charrefs=True)
        self.word = word
        self.heading_offset = heading_offset
        self.paragraph: Paragraph | None = None
        self.lists: list[list[int | None]] = []  # per open list: [next number] or [None] for bullets
        self.quote_depth = 0
        self.in_pre = False
        self.bold = self.italic = self.code = self.strike = self.underline = 0
        self.link_stack: list[str] = []
        self.table_rows: list[list[tuple[str, bool]]] | None = None
        self.cell: list[str] | None = None
        self.cell_is_header = False
        self.pending_style = "Normal"
        self.pending_prefix = ""

    # Paragraph management -------------------------------------------------------------------
    def _start_paragraph(self, style: str, prefix: str = "") -> None:
        self.paragraph = None
        self.pending_style = style
        self.pending_prefix = prefix

    def _ensure_paragraph(self) -> Paragraph:
        if self.paragraph is None:
            self.paragraph = styled_paragraph(self.word, self.pending_style)
            if self.pending_prefix:
                self.paragraph.add_run(self.pending_prefix)
        return self.paragraph

    def _body_style(self) -> str:
        return "Quote" if self.quote_depth else "Normal"

    def _list_style(self) -> tuple[str, str]:
        depth = min(len(self.lists), 3)
        suffix = "" if depth <= 1 else f" {depth}"
        counter = self.lists[-1]
        if counter[0] is None:
            return f"List Bullet{suffix}", ""
        number = counter[0]
        counter[0] = number + 1
        # Numbers are written as text: python-docx's single "List Number" numbering would run on
        # across lists instead of restarting, and numbering matters in a legal text.
        return f"List Continue{suffix}", f"{number}. "

    # Parser callbacks -----------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self.table_rows is not None:
            self._table_start(tag)
            return
        if tag in ("strong", "b"):
            self.bold += 1
        elif tag in ("em", "i"):
            self.italic += 1
        elif tag == "code":
            self.code += 1
        elif tag in ("del", "s", "strike"):
            self.strike += 1
        elif tag in ("ins", "u"):
            self.underline += 1
        elif tag == "a":
            self.link_stack.append(attributes.get("href") or "")
        elif tag == "br":
            self._ensure_paragraph().add_run().add_break()
        elif tag == "img":
            alt = attributes.get("alt") or "image"
            self._add_text(f"[{alt}]", keep_space=True)
        elif tag in ("ul", "ol"):
            start = stored_integer(attributes.get("start") or "1")
            self.lists.append([(start if start is not None else 1) if tag == "ol" else None])
            self.paragraph = None
        elif tag == "li" and self.lists:
            self._start_paragraph(*self._list_style())
        elif tag == "blockquote":
            self.quote_depth += 1
            self._start_paragraph(self._body_style())
        elif tag == "pre":
            self.in_pre = True
            self._start_paragraph("No Spacing")
        elif re.fullmatch(r"h[1-6]", tag):
            level = min(MAX_HEADING_LEVEL, int(tag[1]) + self.heading_offset)
            self._start_paragraph(f"Heading {level}")
        elif tag == "hr":
            styled_paragraph(self.word, self._body_style(), "* * *")
            self.paragraph = None
        elif tag == "table":
            self.table_rows = []
            self.paragraph = None
        elif tag in self._BLOCKS:
            self._start_paragraph(self._body_style())

    def handle_endtag(self, tag: str) -> None:
        if self.table_rows is not None:
            self._table_end(tag)
            return
        if tag in ("strong", "b"):
            self.bold = max(0, self.bold - 1)
        elif tag in ("em", "i"):
            self.italic = max(0, self.italic - 1)
        elif tag == "code":
            self.code = max(0, self.code - 1)
        elif tag in ("del", "s", "strike"):
            self.strike = max(0, self.strike - 1)
        elif tag in ("ins", "u"):
            self.underline = max(0, self.underline - 1)
        elif tag == "a" and self.link_stack:
            self._close_link(self.link_stack.pop())
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self.paragraph = None
        elif tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
            self._start_paragraph(self._body_style())
        elif tag == "pre":
            self.in_pre = False
            self._start_paragraph(self._body_style())
        elif tag in self._BLOCKS:
            self._start_paragraph(self._body_style())

    def handle_data(self, data: str) -> None:
        if self.table_rows is not None:
            if self.cell is not None:
                self.cell.append(data)
            return
        self._add_text(data)

    # Text and links -------------------------------------------------------------------------
    def _add_text(self, data: str, *, keep_space: bool = False) -> Run | None:
        if self.in_pre:
            text = data.rstrip("\n") if data.endswith("\n") else data
            paragraph = self._ensure_paragraph()
            run = None
            for index, line in enumerate(text.split("\n")):
                if index:
                    paragraph.add_run().add_break()
                run = paragraph.add_run(xml_text(line))
                run.font.name = "Courier New"
                run.font.size = Pt(9)
            return run
        text = _WHITESPACE.sub(" ", data)
        if not keep_space and self.paragraph is None:
            text = text.lstrip()
        if not text:
            return None
        run = self._ensure_paragraph().add_run(xml_text(text))
        run.bold = bool(self.bold) or None
        run.italic = bool(self.italic) or None
        run.font.strike = bool(self.strike) or None
        run.underline = bool(self.underline or self.link_stack) or None
        if self.code:
            run.font.name = "Courier New"
        return run

    def _close_link(self, href: str) -> None:
        # A visible URL rather than a hyperlink relationship: the printed text stays verifiable
        # and python-docx has no public API for hyperlinks.
        if href and not href.startswith("#") and self.paragraph is not None:
            if href not in "".join(run.text for run in self.paragraph.runs[-3:]):
                self.paragraph.add_run(xml_text(f" ({href})"))

    # Tables ---------------------------------------------------------------------------------
    def _table_start(self, tag: str) -> None:
        if tag == "tr" and self.table_rows is not None:
            self.table_rows.append([])
        elif tag in ("td", "th"):
            self.cell = []
            self.cell_is_header = tag == "th"

    def _table_end(self, tag: str) -> None:
        rows = self.table_rows
        assert rows is not None
        if tag in ("td", "th") and self.cell is not None:
            if rows:
                rows[-1].append((_WHITESPACE.sub(" ", "".join(self.cell)).strip(), self.cell_is_header))
            self.cell = None
        elif tag == "table":
            self.table_rows = None
            self._write_table([row for row in rows if row])

    def _write_table(self, rows: list[list[tuple[str, bool]]]) -> None:
        if not rows:
            return
        columns = max(len(row) for row in rows)
        table = self.word.add_table(rows=len(rows), cols=columns)
        table.style = "Table Grid"
        for row_index, row in enumerate(rows):
            for column, (text, is_header) in enumerate(row):
                cell: _Cell = table.cell(row_index, column)
                run = cell.paragraphs[0].add_run(xml_text(text))
                run.bold = is_header or None
        self._start_paragraph(self._body_style())


def append_markdown(
    word: WordDocument, markdown: str, render_markdown: MarkdownRenderer, *, heading_offset: int
) -> None:
    """Append a clause body: Markdown rendered safely, then mapped onto Word content. Headings
    inside the body are shifted down by ``heading_offset`` levels so they sit under the clause."""
    converter = _HtmlToWord(word, heading_offset)
    converter.feed(render_markdown(markdown))
    converter.close()


def save_docx(word: WordDocument) -> bytes:
    """The document as .docx bytes."""
    buffer = BytesIO()
    word.save(buffer)
    return buffer.getvalue()


def export_docx(
    document: ExportDocument,
    render_markdown: MarkdownRenderer,
    *,
    include_toc: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The consolidated draft as .docx bytes: Title, TOC field, chapters as Heading 1, clauses as
    Heading 2 (a clause under another one level deeper), numbers in the heading text.

    ``progress(done, total)`` is called after each clause, for long exports run as a job.
    """
    word = new_document(f"{document.code_title} — {document.draft_label}", document.language)
    styled_paragraph(word, "Title", xml_text(document.code_title))
    styled_paragraph(word, "Subtitle", xml_text(document.draft_label))
    if include_toc:
        add_table_of_contents(word, document_toc_entries(document), heading=document.word("contents"),
                              placeholder=document.word("toc_update"))
    depths = document.clause_depths()
    total = sum(len(chapter.clauses) for chapter in document.chapters)
    done = 0
    for chapter in document.chapters:
        styled_paragraph(word, f"Heading {CHAPTER_LEVEL}", heading_text(chapter.number, chapter.title))
        for clause in chapter.clauses:
            level = min(MAX_HEADING_LEVEL, CLAUSE_LEVEL + depths.get(clause.uid, 0))
            styled_paragraph(word, f"Heading {level}", heading_text(clause.number, clause.title))
            append_markdown(word, clause.body_markdown, render_markdown, heading_offset=level)
            done += 1
            if progress is not None:
                progress(done, total)
    return save_docx(word)
