"""Markdown of a consolidated draft, and reading such a file back.

Layout: ``#`` code title, ``##`` chapters, ``###`` top-level clauses (``####`` for a clause under
another...), each clause followed by its Markdown body verbatim. Clause bodies contain headings of
their own ("#### LEGAL TEXT"), so headings alone cannot tell where a clause starts. Before every
chapter and clause heading goes a marker line in the CommonMark "comment" idiom, a link reference
definition that every renderer hides::

    [//]: # (codedraft clause uid=II-1 kind=commitment number=II.1 parent=)

:func:`parse_markdown_export` uses the markers to rebuild the document, so headings, numbers,
uids and bodies round-trip.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote, unquote

from .model import ExportChapter, ExportClause, ExportDocument

_MARKER_RE = re.compile(r"^\[//\]: # \(codedraft (chapter|clause|document)((?: [a-z_]+=[^ ()]*)*)\)$")
_HEADING_RE = re.compile(r"^(#{1,6}) (.*)$")


class MarkdownImportError(ValueError):
    """The text is not a CodeDraft Markdown export (a marker or its heading is missing)."""


def _field(value: str) -> str:
    # Percent-encode everything but unreserved characters, so a value never holds a space, a
    # parenthesis or a newline that would break the marker line.
    return quote(value, safe="")


def _marker(what: str, /, **fields: str) -> str:
    encoded = " ".join(f"{name}={_field(value)}" for name, value in fields.items())
    return f"[//]: # (codedraft {what} {encoded})"


def _heading_text(number: str, title: str) -> str:
    text = " ".join(part for part in (number.strip(), " ".join(title.split())) if part)
    # A trailing run of '#' would be read as the heading's closing sequence.
    return text[:-1] + "\\#" if text.endswith("#") else text


def export_markdown(document: ExportDocument) -> str:
    """The consolidated draft as Markdown text, readable as is and parseable back."""
    depths = document.clause_depths()
    lines = [
        _marker(
            "document",
            label=document.draft_label,
            language=document.language,
            generated=document.generated_at.isoformat(),
        ),
        "",
        f"# {_heading_text('', document.code_title)}",
        "",
        f"*{document.draft_label}*",
        "",
    ]
    for chapter in document.chapters:
        lines += [
            _marker("chapter", key=chapter.key, number=chapter.number),
            "",
            f"## {_heading_text(chapter.number, chapter.title)}",
            "",
        ]
        for clause in chapter.clauses:
            level = min(6, 3 + depths.get(clause.uid, 0))
            lines += [
                _marker(
                    "clause",
                    uid=clause.uid,
                    kind=clause.kind,
                    number=clause.number,
                    parent=clause.parent_uid or "",
                ),
                "",
                f"{'#' * level} {_heading_text(clause.number, clause.title)}",
                "",
            ]
            body = clause.body_markdown.strip("\n")
            if body:
                lines += [body, ""]
    return "\n".join(lines)


def _parse_marker(line: str) -> tuple[str, dict[str, str]] | None:
    match = _MARKER_RE.match(line)
    if match is None:
        return None
    fields = {}
    for pair in match.group(2).split():
        name, _, value = pair.partition("=")
        fields[name] = unquote(value)
    return match.group(1), fields


def _split_heading(line: str, number: str) -> str:
    """The title part of a heading line, given the number the marker recorded."""
    match = _HEADING_RE.match(line)
    if match is None:
        raise MarkdownImportError(f"expected a heading after a marker, found {line[:80]!r}")
    text = match.group(2).strip()
    if text.endswith("\\#"):
        text = text[:-2] + "#"
    if number and (text == number or text.startswith(number + " ")):
        return text[len(number) :].strip()
    return text


def _next_content_line(lines: list[str], start: int) -> int:
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index == len(lines):
        raise MarkdownImportError("a marker is not followed by its heading")
    return index


def parse_markdown_export(text: str) -> ExportDocument:
    """Rebuild an :class:`ExportDocument` from :func:`export_markdown` output.

    Bodies come back without surrounding blank lines. Raises :class:`MarkdownImportError` if the
    markers are missing or out of order.
    """
    lines = text.splitlines()
    code_title, label, language, generated = "", "", "en", datetime.min
    chapters: list[ExportChapter] = []
    chapter_fields: dict[str, str] | None = None
    chapter_title = ""
    clauses: list[ExportClause] = []
    pending: dict[str, str] | None = None  # the clause being read
    pending_title = ""
    body: list[str] = []
    position = 0  # of the clause within its chapter

    def close_clause() -> None:
        nonlocal pending, body, position
        if pending is not None and chapter_fields is not None:
            clauses.append(
                ExportClause(
                    uid=pending["uid"],
                    number=pending.get("number", ""),
                    title=pending_title,
                    kind=pending.get("kind", ""),
                    body_markdown="\n".join(body).strip("\n"),
                    chapter_key=chapter_fields["key"],
                    position=position,
                    parent_uid=pending.get("parent") or None,
                )
            )
            position += 1
        pending, body = None, []

    def close_chapter() -> None:
        nonlocal clauses, position
        close_clause()
        if chapter_fields is not None:
            chapters.append(
                ExportChapter(
                    key=chapter_fields["key"],
                    number=chapter_fields.get("number", ""),
                    title=chapter_title,
                    clauses=tuple(clauses),
                )
            )
        clauses, position = [], 0

    index = 0
    while index < len(lines):
        parsed = _parse_marker(lines[index])
        if parsed is None:
            if pending is not None:
                body.append(lines[index])
            index += 1
            continue
        kind, fields = parsed
        heading_index = _next_content_line(lines, index + 1)
        if kind == "document":
            label = fields.get("label", "")
            language = fields.get("language", "en") or "en"
            generated = datetime.fromisoformat(fields["generated"]) if fields.get("generated") else generated
            code_title = _split_heading(lines[heading_index], "")
        elif kind == "chapter":
            close_chapter()
            chapter_fields = fields
            chapter_title = _split_heading(lines[heading_index], fields.get("number", ""))
        else:
            if chapter_fields is None:
                raise MarkdownImportError("a clause marker comes before any chapter marker")
            close_clause()
            pending = fields
            pending_title = _split_heading(lines[heading_index], fields.get("number", ""))
        index = heading_index + 1
    close_chapter()
    return ExportDocument(
        code_title=code_title,
        draft_label=label,
        language=language,
        chapters=tuple(chapters),
        generated_at=generated,
    )
