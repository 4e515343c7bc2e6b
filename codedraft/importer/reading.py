"""Turn an uploaded file into the Markdown the parser reads, refusing hostile files.

What a file claims (its name, its content type) is not trusted: the bytes decide. Markdown must
be text in UTF-8 (or UTF-16 with a byte-order mark); a Word file must be a modest ZIP package
whose XML declares no document type (so no entity, internal or external, can be expanded) and
whose parts stay small when unpacked (a "zip bomb" is refused before anything is unpacked).
Links to outside files or web addresses inside a Word file are never followed: python-docx reads
only the package's own parts, and images are not read at all. Fields (a table of contents, page
references) are imported as nothing, because their text is computed by Word, not written.

Every refusal raises :class:`UnreadableFile` with a message safe to show in the preview.
"""
from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from flask_babel import gettext as _

# Upload limits; the view may pass its configured size limit instead of the default.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UNPACKED_BYTES = 60 * 1024 * 1024
MAX_PACKAGE_PARTS = 2000
MAX_COMPRESSION_RATIO = 120
_ZIP_MAGIC = b"PK\x03\x04"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_TOC_STYLE = re.compile(r"^(toc\s*\d*|toc heading|table of contents|contents\s*\d+|contents heading)$",
                        re.IGNORECASE)
# Field instructions whose results Word computes (tables of contents, page numbers, references).
_COMPUTED_FIELD = re.compile(r"^\s*(TOC|PAGEREF|PAGE|NUMPAGES|REF|HYPERLINK\s+\\l|SEQ|INDEX|TA|TOA)\b",
                             re.IGNORECASE)


class UnreadableFile(ValueError):
    """An upload that cannot be imported; the message says why and is safe to show."""


@dataclass(frozen=True)
class UploadedText:
    """The Markdown of an upload and what was noticed while reading it."""

    markdown: str
    file_format: str  # "md" | "docx"
    notices: tuple[str, ...] = ()
    outline: bool = False  # CodeDraft's own Word export: headings are exactly the outline


def read_upload(data: bytes, filename: str = "", *, max_bytes: int = MAX_UPLOAD_BYTES) -> UploadedText:
    """Markdown from uploaded bytes, whatever the file claims to be; raises UnreadableFile."""
    if not data:
        raise UnreadableFile(_("The file is empty."))
    if len(data) > max_bytes:
        raise UnreadableFile(_("The file is %(size)s MB; the limit is %(limit)s MB.",
                               size=f"{len(data) / 1048576:.1f}", limit=f"{max_bytes / 1048576:.0f}"))
    claims_word = filename.lower().endswith(".docx")
    if data.startswith(_ZIP_MAGIC):
        markdown, own_export = docx_markdown(data)
        return UploadedText(markdown, "docx", (), own_export)
    if claims_word:
        raise UnreadableFile(_("The file is called .docx but is not a Word document (it is not a ZIP package)."))
    return UploadedText(*_markdown_text(data))


def _markdown_text(data: bytes) -> tuple[str, str, tuple[str, ...]]:
    notices: list[str] = []
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
        notices.append(_("The file was in UTF-16; it was read as such."))
    else:
        if data[:5] == b"%PDF-" or b"\x00" in data[:4096]:
            raise UnreadableFile(_("The file is not a text file (it looks like a binary or PDF file). "
                                   "Upload Markdown (.md) or Word (.docx)."))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise UnreadableFile(_(
                "The file is not UTF-8 text (byte %(position)s cannot be read). Save it as UTF-8 "
                "Markdown, or upload the Word file.", position=error.start + 1
            )) from error
    if "\x00" in text:
        raise UnreadableFile(_("The file holds NUL characters; it is not a text document."))
    return text, "md", tuple(notices)


def _check_package(package: zipfile.ZipFile) -> None:
    """Refuse oversized or bomb-like packages from their directory, before unpacking anything."""
    entries = package.infolist()
    if len(entries) > MAX_PACKAGE_PARTS:
        raise UnreadableFile(_("The Word file has too many parts to be a document."))
    total = 0
    for entry in entries:
        total += entry.file_size
        ratio = entry.file_size / max(entry.compress_size, 1)
        if total > MAX_UNPACKED_BYTES or (entry.file_size > 1048576 and ratio > MAX_COMPRESSION_RATIO):
            raise UnreadableFile(_("The Word file would unpack to far more than its size (a compressed "
                                   "zip bomb); it was not opened."))
    names = {entry.filename for entry in entries}
    if "[Content_Types].xml" not in names or "word/document.xml" not in names:
        raise UnreadableFile(_("The file is a ZIP package but not a Word document."))


def _refuse_doctypes(package: zipfile.ZipFile) -> None:
    """Word never writes a DOCTYPE; one in any XML part can only be there to expand entities."""
    for entry in package.infolist():
        if not entry.filename.endswith((".xml", ".rels")):
            continue
        with package.open(entry) as part:
            head = part.read(MAX_UNPACKED_BYTES)
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            raise UnreadableFile(_("The Word file declares entities in %(part)s; such files are refused "
                                   "because entities can read other files or the network.", part=entry.filename))


def _drop_computed_text(body: Any) -> None:
    """Remove tables of contents and the computed results of fields from a document body."""
    w = f"{{{_W}}}"
    for sdt in list(body.iter(f"{w}sdt")):
        gallery = sdt.find(f".//{w}docPartGallery")
        if gallery is not None and "content" in str(gallery.get(f"{w}val", "")).lower():
            sdt.getparent().remove(sdt)
    for paragraph in list(body.iter(f"{w}p")):
        style = paragraph.find(f"{w}pPr/{w}pStyle")
        style_id = re.sub(r"(?<=[a-z])(?=[A-Z0-9])", " ", str(style.get(f"{w}val", ""))) if style is not None else ""
        if _TOC_STYLE.match(style_id.replace("TOC", "TOC ").replace("  ", " ").strip()):
            paragraph.getparent().remove(paragraph)
            continue
        _drop_field_results(paragraph, w)
    for simple in list(body.iter(f"{w}fldSimple")):
        if _COMPUTED_FIELD.match(str(simple.get(f"{w}instr", ""))):
            simple.getparent().remove(simple)


def _drop_field_results(paragraph: Any, w: str) -> None:
    """Runs of a computed field (its code and the result Word shows) are Word's, not the author's."""
    open_fields: list[bool] = []  # per nested field: is it computed?
    for run in list(paragraph.iter(f"{w}r")):
        mark = run.find(f"{w}fldChar")
        kind = mark.get(f"{w}fldCharType") if mark is not None else None
        if kind == "begin":
            open_fields.append(False)
        instruction = run.find(f"{w}instrText")
        if instruction is not None and open_fields and _COMPUTED_FIELD.match(instruction.text or ""):
            open_fields[-1] = True
        inside_computed = any(open_fields)
        if kind == "end" and open_fields:
            open_fields.pop()
        if inside_computed:
            run.getparent().remove(run)


def _own_export(word: Any) -> bool:
    """CodeDraft's Word export: a Title and a Subtitle (the draft's label) that together make the
    document's title property. Its Subtitle is a label, not text, and is removed here."""
    paragraphs = word.paragraphs[:2]
    if len(paragraphs) < 2:
        return False
    title, subtitle = paragraphs
    names = [p.style.name if p.style is not None else "" for p in paragraphs]
    if names != ["Title", "Subtitle"] or word.core_properties.title != f"{title.text} \u2014 {subtitle.text}"[:255]:
        return False
    subtitle._p.getparent().remove(subtitle._p)
    return True


def docx_markdown(data: bytes) -> tuple[str, bool]:
    """Markdown of a Word file after the package checks, and whether it is CodeDraft's own export
    (whose headings are exactly its outline); raises UnreadableFile."""
    from docx import Document as open_word_document

    from codedraft.exports.docx_import import word_to_markdown

    try:
        with zipfile.ZipFile(BytesIO(data)) as package:
            _check_package(package)
            _refuse_doctypes(package)
    except zipfile.BadZipFile as error:
        raise UnreadableFile(_("The file looks like a ZIP package but is damaged.")) from error
    try:
        word = open_word_document(BytesIO(data))
    except Exception as error:  # python-docx raises zipfile, KeyError or lxml errors alike
        raise UnreadableFile(_("The Word file cannot be read (%(reason)s).", reason=type(error).__name__)) from error
    _drop_computed_text(word.element.body)
    own = _own_export(word)
    return word_to_markdown(word), own
