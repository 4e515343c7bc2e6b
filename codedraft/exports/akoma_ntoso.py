"""A published draft as Akoma Ntoso 3.0 XML, in the manner of the AKN4EU profile.

The shape follows what the Commission's LEOS editor writes for its documents: FRBR
identification in ``meta``, the title and stage in a ``preface``, and a body of chapters as
``section``s holding clauses as ``article``s. A clause under another clause (a measure under
its commitment) is a ``point`` of it, the parent's own text then being its ``intro``. Every
clause's ``eId`` is made from its stable id, so a link to a clause keeps working across drafts.

Pure: it reads an :class:`ExportDocument` and returns bytes; the tests validate the output
against the OASIS Akoma Ntoso 3.0 schema.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree
from markdown_it import MarkdownIt
from markdown_it.token import Token

from .model import ExportChapter, ExportClause, ExportDocument

AKN_NS = "http://docs.oasis-open.org/legaldocml/ns/akn/3.0"
_E = "{" + AKN_NS + "}"  # lxml's {namespace}tag spelling

# ISO 639-2 codes, as FRBR expression languages are written in AKN4EU.
_LANGUAGES = {"en": "eng", "pl": "pol", "fr": "fra", "de": "deu", "es": "spa", "it": "ita", "nl": "nld"}

# Characters XML 1.0 cannot carry at all; clause text comes from people and may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


@dataclass(frozen=True)
class Identity:
    """Where the document sits in the FRBR model: the code's slug, draft number and date, and the
    author's name as the document's language says it."""

    code_slug: str
    draft_number: int
    published_at: datetime
    draft_name: str
    office_name: str = "The Office"


def _el(parent: Any, tag: str, text: str | None = None, **attributes: str) -> Any:
    element = etree.SubElement(parent, _E + tag, {k.rstrip("_"): v for k, v in attributes.items()})
    if text:
        element.text = _NOT_XML.sub("", text)
    return element


def _eid_part(text: str) -> str:
    """A value safe inside an eId: letters, digits, hyphens."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-") or "x"


def export_akoma_ntoso(document: ExportDocument, identity: Identity) -> bytes:
    """The draft ``document`` as an Akoma Ntoso XML document (UTF-8, with declaration)."""
    root = etree.Element(_E + "akomaNtoso", nsmap={None: AKN_NS})
    doc = _el(root, "doc", name="codeOfPractice")
    _meta(doc, document, identity)
    preface = _el(doc, "preface")
    long_title = _el(preface, "longTitle")
    _el(_el(long_title, "p"), "docTitle", document.code_title)
    stage = _el(preface, "p")
    _el(stage, "docStage", identity.draft_name)
    _el(stage, "docDate", identity.published_at.strftime("%d %B %Y"), date=identity.published_at.date().isoformat())
    body = _el(doc, "mainBody")
    depths = document.clause_depths()
    for index, chapter in enumerate(document.chapters, start=1):
        _chapter(body, chapter, index, depths)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _meta(doc: Any, document: ExportDocument, identity: Identity) -> None:
    language = _LANGUAGES.get(document.language, "eng")
    day = identity.published_at.date().isoformat()
    work = f"/akn/eu/doc/codeOfPractice/{_eid_part(identity.code_slug)}"
    expression = f"{work}/{language}@{day}"
    meta = _el(doc, "meta")
    identification = _el(meta, "identification", source="#codedraft")
    for level, this, uri, date_name in (
        ("FRBRWork", f"{work}/!main", work, "publication"),
        ("FRBRExpression", f"{expression}/!main", expression, "publication"),
        ("FRBRManifestation", f"{expression}/!main.xml", f"{expression}.akn", "generation"),
    ):
        frbr = _el(identification, level)
        _el(frbr, "FRBRthis", value=this)
        _el(frbr, "FRBRuri", value=uri)
        if level == "FRBRExpression":
            _el(frbr, "FRBRdate", date=day, name=date_name)
            _el(frbr, "FRBRauthor", href="#office")
            _el(frbr, "FRBRlanguage", language=language)
        elif level == "FRBRWork":
            _el(frbr, "FRBRdate", date=day, name=date_name)
            _el(frbr, "FRBRauthor", href="#office")
            _el(frbr, "FRBRcountry", value="eu")
            _el(frbr, "FRBRnumber", value=str(identity.draft_number))
        else:
            _el(frbr, "FRBRdate", date=day, name=date_name)
            _el(frbr, "FRBRauthor", href="#codedraft")
    references = _el(meta, "references", source="#codedraft")
    _el(references, "TLCOrganization", eId="office", href="/ontology/organization/office", showAs=identity.office_name)
    _el(references, "TLCOrganization", eId="codedraft", href="/ontology/organization/codedraft", showAs="CodeDraft")


def _chapter(body: Any, chapter: ExportChapter, index: int, depths: dict[str, int]) -> None:
    section = _el(body, "section", eId=f"sec_{index}")
    if chapter.number:
        _el(section, "num", chapter.number)
    _el(section, "heading", chapter.title or chapter.heading)
    children: dict[str | None, list[ExportClause]] = {}
    present = {clause.uid for clause in chapter.clauses}
    for clause in chapter.clauses:
        # A parent outside this chapter (or missing) leaves the clause at the top of it.
        parent = clause.parent_uid if clause.parent_uid in present and depths.get(clause.uid, 0) else None
        children.setdefault(parent, []).append(clause)
    top = children.get(None, [])
    if not top:
        _el(_el(section, "content"), "p")
        return
    seen: set[str] = set()
    for clause in top:
        _clause(section, clause, children, "article", seen)


def _clause(parent: Any, clause: ExportClause, children: dict[str | None, list[ExportClause]], tag: str,
            seen: set[str]) -> None:
    seen.add(clause.uid)
    prefix = "art" if tag == "article" else "point"
    element = _el(parent, tag, eId=f"{prefix}_{_eid_part(clause.uid)}", class_=clause.kind)
    if clause.number:
        _el(element, "num", clause.number)
    if clause.title:
        _el(element, "heading", clause.title)
    below = [child for child in children.get(clause.uid, []) if child.uid not in seen]
    if below:
        intro = _el(element, "intro")
        _blocks(intro, clause.body_markdown, paragraphs_only=True)
        for child in below:
            _clause(element, child, children, "point", seen)
    else:
        _blocks(_el(element, "content"), clause.body_markdown)


def _blocks(container: Any, markdown: str, *, paragraphs_only: bool = False) -> None:
    """Markdown blocks as AKN blocks: paragraphs as ``p``, lists as ``blockList``; headings,
    quotes and tables inside a clause as plain paragraphs (their words kept, not their layout).
    ``intro`` holds only paragraphs, so lists there are flattened too."""
    tokens = _markdown.parse(_NOT_XML.sub("", markdown))
    stack = [container]
    wrote = False
    for token in tokens:
        if token.type in ("bullet_list_open", "ordered_list_open") and not paragraphs_only:
            stack.append(_el(stack[-1], "blockList"))
        elif token.type in ("bullet_list_close", "ordered_list_close") and not paragraphs_only:
            stack.pop()
        elif token.type == "list_item_open" and not paragraphs_only and stack[-1].tag == _E + "blockList":
            stack.append(_el(stack[-1], "item"))
        elif token.type == "list_item_close" and not paragraphs_only and stack[-1].tag == _E + "item":
            stack.pop()
        elif token.type == "inline":
            _inline(_el(stack[-1], "p"), token.children or [])
            wrote = True
        elif token.type in ("fence", "code_block"):
            _el(stack[-1], "p", token.content)
            wrote = True
    if not wrote:
        _el(container, "p")


def _inline(paragraph: Any, children: Sequence[Token]) -> None:
    """Inline Markdown into ``paragraph``: bold, italics and line breaks kept, the rest as text."""
    stack = [paragraph]
    for child in children:
        if child.type in ("strong_open", "em_open"):
            stack.append(etree.SubElement(stack[-1], _E + ("b" if child.type == "strong_open" else "i")))
        elif child.type in ("strong_close", "em_close") and len(stack) > 1:
            stack.pop()
        elif child.type in ("softbreak", "hardbreak"):
            _append_text(stack[-1], " " if child.type == "softbreak" else "")
            if child.type == "hardbreak":
                etree.SubElement(stack[-1], _E + "eol")
        elif child.type in ("text", "code_inline"):
            _append_text(stack[-1], child.content)


def _append_text(element: Any, text: str) -> None:
    """Text after the element's last child (its tail) or, with no children, its own text."""
    text = _NOT_XML.sub("", text)
    if len(element):
        last = element[-1]
        last.tail = (last.tail or "") + text
    else:
        element.text = (element.text or "") + text
