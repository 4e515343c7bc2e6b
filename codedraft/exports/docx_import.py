"""Reading a draft written in Word: .docx to the Markdown the importer parses.

Mapping (python-docx): a paragraph styled "Title" or "Heading N" becomes ``#`` * N (Title is a
level-1 heading); a list paragraph ("List Bullet", "List Number", "List Paragraph" or any
paragraph with Word numbering) becomes ``- item`` (indented by its list level); every other
non-empty paragraph becomes a paragraph; bold and italic runs become ``**`` and ``*``; tables
become pipe tables. Characters that Markdown would read as syntax are escaped in body text, so a
line starting "1." or "#" in Word stays text. Pure: no Flask, no database.
"""
from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

from docx import Document as open_word_document
from docx.document import Document as WordDocument
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from codedraft.numbers import stored_integer

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_LIST_STYLE = re.compile(r"^list(\s|$)", re.IGNORECASE)
_LEVEL_IN_STYLE = re.compile(r"\s([2-9])$")
# Markdown syntax that must stay literal inside body text.
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")
_BLOCK_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")
MAX_DOCX_BYTES = 50 * 1024 * 1024


class DocxImportError(ValueError):
    """The file is not a readable .docx document."""


def _escape(text: str) -> str:
    return _INLINE_SPECIAL.sub(r"\\\1", text)


def _escape_block_start(line: str) -> str:
    # "1. Scope" typed as plain text in Word is not a numbered list.
    return _BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), line, count=1)


def _runs_markdown(paragraph: Paragraph) -> str:
    """The paragraph's text with bold/italic runs marked; emphasis never wraps spaces, which
    CommonMark would not read as emphasis."""
    parts: list[str] = []
    for run in paragraph.runs:
        text = run.text.replace("\t", " ")
        if not text:
            continue
        core = text.strip()
        if not core:
            parts.append(text)
            continue
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()) :]
        body = _escape(core).replace("\n", " ")
        if run.bold and run.italic:
            body = f"***{body}***"
        elif run.bold:
            body = f"**{body}**"
        elif run.italic:
            body = f"*{body}*"
        parts.append(lead + body + trail)
    return " ".join("".join(parts).split())


def _list_level(paragraph: Paragraph) -> int | None:
    """0-based list level, or None if the paragraph is not a list item."""
    properties = paragraph._p.pPr
    numbering = properties.find(qn("w:numPr")) if properties is not None else None
    style = paragraph.style.name if paragraph.style is not None else ""
    if numbering is None and not _LIST_STYLE.match(style or ""):
        return None
    if numbering is not None:
        level = numbering.find(qn("w:ilvl"))
        number = stored_integer(level.get(qn("w:val"), "0")) if level is not None else None
        if number is not None:
            return number
    match = _LEVEL_IN_STYLE.search(style or "")
    return int(match.group(1)) - 1 if match else 0


def _heading_level(paragraph: Paragraph) -> int | None:
    style = paragraph.style.name if paragraph.style is not None else ""
    if style == "Title":
        return 1
    match = _HEADING_STYLE.match(style or "")
    return int(match.group(1)) if match else None


def paragraph_markdown(paragraph: Paragraph) -> str:
    """One Word paragraph as one Markdown block ("" when it holds no text)."""
    text = _runs_markdown(paragraph)
    if not text:
        return ""
    level = _heading_level(paragraph)
    if level is not None:
        # Headings carry no emphasis markers: the importer reads numbers and titles from them.
        plain = " ".join(paragraph.text.split())
        return f"{'#' * min(level, 6)} {plain}"
    list_level = _list_level(paragraph)
    if list_level is not None:
        return f"{'  ' * min(list_level, 8)}- {text}"
    return _escape_block_start(text)


def table_markdown(table: Table) -> str:
    """A Word table as a pipe table; the first row is the header."""
    rows = [[_escape(" ".join(cell.text.split())) for cell in row.cells] for row in table.rows]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def word_to_markdown(word: WordDocument) -> str:
    """The whole document body, in order, as Markdown. Consecutive list items stay one list."""
    blocks: list[tuple[str, bool]] = []  # (markdown, is list item)
    for element in word.element.body.iterchildren():
        if element.tag == qn("w:p"):
            paragraph = Paragraph(element, word)
            markdown = paragraph_markdown(paragraph)
            if markdown:
                blocks.append((markdown, _list_level(paragraph) is not None and _heading_level(paragraph) is None))
        elif element.tag == qn("w:tbl"):
            markdown = table_markdown(Table(element, word))
            if markdown:
                blocks.append((markdown, False))
    out: list[str] = []
    for index, (markdown, is_item) in enumerate(blocks):
        if index:
            out.append("\n" if is_item and blocks[index - 1][1] else "\n\n")
        out.append(markdown)
    return "".join(out) + ("\n" if out else "")


def docx_to_markdown(data: bytes) -> str:
    """Markdown of .docx bytes; raises :class:`DocxImportError` if they are not a Word document."""
    if len(data) > MAX_DOCX_BYTES:
        raise DocxImportError("the .docx file is larger than 50 MB")
    try:
        word = open_word_document(BytesIO(data))
    except Exception as error:  # python-docx raises zipfile, KeyError or lxml errors alike
        raise DocxImportError(f"not a readable .docx file ({type(error).__name__})") from error
    return word_to_markdown(word)


def read_document(path: str | Path) -> str:
    """The Markdown text of a draft file, for ``codedraft import``: ``.md``/``.markdown``/``.txt``
    are read as UTF-8, ``.docx`` is converted. Raises :class:`DocxImportError` for another
    suffix or an unreadable Word file, and OSError if the file cannot be read."""
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".docx":
        return docx_to_markdown(source.read_bytes())
    if suffix in (".md", ".markdown", ".txt"):
        return source.read_text(encoding="utf-8")
    raise DocxImportError(f"cannot import {suffix or 'a file without suffix'}: use .md or .docx")
