"""A word diff of Markdown source laid out as the Markdown it is: paragraphs, lists, headings.

The diff itself is computed on the source text (exact, word level; see ``compare.py``). Splicing
``<ins>``/``<del>`` into HTML rendered by a Markdown parser breaks as soon as a change crosses a
paragraph or a list, so this module reads the structure from each line of the diff instead: a
line's block markup (``#### ``, ``- ``, ``1. ``) decides the element it becomes and is not shown,
and emphasis markers (``**``, ``*``, ``__``, ``_``) become ``<strong>``/``<em>`` around the words
they enclose. Every piece of text is escaped here; the only tags come from this module.

A line's structure is read from the side being shown: the new text for the inline and "new"
views (so a heading that was a paragraph renders as the heading it now is), the old text for a
line that only exists in the old draft.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from html import escape
from itertools import groupby

from .compare import DiffOp, DiffSegment


class Side(StrEnum):
    """Which text a rendering of a diff shows."""

    BOTH = "both"  # inline: kept, inserted and deleted text together
    OLD = "old"  # left column: kept and deleted text
    NEW = "new"  # right column: kept and inserted text


# Up to three spaces (or any indentation for nested list items), then a heading, bullet or
# ordinal marker followed by a space.
_BLOCK_MARKER = re.compile(
    r"^(?P<indent>[ \t]*)(?:(?P<heading>#{1,6})(?:[ \t]+|$)|(?P<bullet>[-*+])[ \t]+|(?P<ordinal>\d{1,9})[.)][ \t]+)"
)
# Emphasis markers: ``**``/``__`` for bold, ``*`` for italic, ``_`` for italic only at a word
# edge (so snake_case and URLs keep their underscores).
_EMPHASIS = re.compile(r"\*\*|__|\*|(?<!\w)_(?=\S)|(?<=\S)_(?!\w)")
# Headings inside a clause body sit below the clause heading (h3 on the page and in exports).
_MIN_BODY_HEADING = 4


@dataclass(frozen=True)
class Piece:
    """Part of one line of a diff: kept, inserted or deleted text, with whatever the caller
    attached to it (the DOCX redline attaches who made the change)."""

    op: DiffOp
    text: str
    credit: object = None


@dataclass(frozen=True)
class StyledText:
    """A run of a line's text with its emphasis decided and its markers removed."""

    op: DiffOp
    text: str
    bold: bool
    italic: bool
    credit: object = None


@dataclass
class _Emphasis:
    """Bold/italic state of one side of the diff while a line is read left to right."""

    bold: bool = False
    italic: bool = False

    def toggle(self, marker: str) -> None:
        if marker in ("**", "__"):
            self.bold = not self.bold
        else:
            self.italic = not self.italic


@dataclass
class _Line:
    """One line of the diff with its block kind decided and its markup stripped."""

    kind: str  # "heading", "bullet", "ordinal", "text" or "blank"
    level: int  # heading level, or the list indentation in columns
    pieces: list[Piece] = field(default_factory=list)
    start: int = 1  # first number of an ordered list


def _shown(op: DiffOp, side: Side) -> bool:
    return not ((op is DiffOp.INSERT and side is Side.OLD) or (op is DiffOp.DELETE and side is Side.NEW))


def split_lines(segments: Iterable[DiffSegment | Piece], side: Side) -> list[list[Piece]]:
    """The diff cut into lines (at every line break of either text), keeping only what ``side``
    shows. A change spanning lines becomes one piece on each line."""
    return [pieces for pieces, _ in split_lines_with_breaks(segments, side)]


def split_lines_with_breaks(segments: Iterable[DiffSegment | Piece],
                            side: Side) -> list[tuple[list[Piece], Piece | None]]:
    """Like :func:`split_lines`, with the line break that ends each line: a one-character
    piece saying whether that break was kept, inserted or deleted (None after the last line)."""
    lines: list[tuple[list[Piece], Piece | None]] = []
    current: list[Piece] = []
    for segment in segments:
        if not _shown(segment.op, side):
            continue
        credit = getattr(segment, "credit", None)
        for index, part in enumerate(segment.text.split("\n")):
            if index:
                lines.append((current, Piece(segment.op, "\n", credit)))
                current = []
            if part:
                current.append(Piece(segment.op, part, credit))
    lines.append((current, None))
    return lines


def _side_text(pieces: Iterable[Piece], reading: Side) -> str:
    return "".join(piece.text for piece in pieces if _shown(piece.op, reading))


def _reading_side(pieces: list[Piece], side: Side) -> Side:
    """The side whose text gives the line its structure: the new one unless the line only exists
    in the old draft (or the old side is what is shown)."""
    if side is not Side.BOTH:
        return side
    return Side.NEW if _side_text(pieces, Side.NEW).strip() else Side.OLD


def _strip_markers(pieces: list[Piece], reading: Side, reading_length: int, other_length: int) -> list[Piece]:
    """Drop the first ``reading_length`` characters of the reading side's text and the first
    ``other_length`` of the other side's: the block markers of each (inline, a deleted
    ``#### `` is markup even where the new line is a paragraph)."""
    kept: list[Piece] = []
    reading_at = other_at = 0
    for piece in pieces:
        size = len(piece.text)
        if piece.op is DiffOp.EQUAL:
            start = max(reading_length - reading_at, other_length - other_at, 0)
            reading_at += size
            other_at += size
        elif _shown(piece.op, reading):
            start = max(reading_length - reading_at, 0)
            reading_at += size
        else:
            start = max(other_length - other_at, 0)
            other_at += size
        if start < size:
            kept.append(Piece(piece.op, piece.text[start:], piece.credit))
    return kept


def _marker_length(text: str) -> int:
    match = _BLOCK_MARKER.match(text)
    return match.end() if match is not None else len(text) - len(text.lstrip(" \t"))


def classify_line(pieces: list[Piece], side: Side) -> _Line:
    """Decide what block a line is and strip its block markers."""
    reading = _reading_side(pieces, side)
    text = _side_text(pieces, reading)
    if not "".join(piece.text for piece in pieces).strip():
        return _Line("blank", 0, pieces)
    other_length = 0
    if side is Side.BOTH:
        other_length = _marker_length(_side_text(pieces, Side.OLD if reading is Side.NEW else Side.NEW))
    match = _BLOCK_MARKER.match(text)
    rest = _strip_markers(pieces, reading, _marker_length(text), other_length)
    if match is None:
        return _Line("text", len(text) - len(text.lstrip(" \t")), rest)
    indent = len(match.group("indent").expandtabs(4))
    if match.group("heading"):
        level = min(6, max(_MIN_BODY_HEADING, len(match.group("heading"))))
        return _Line("heading", level, _strip_heading_closer(rest, reading))
    if match.group("bullet"):
        return _Line("bullet", indent, rest)
    return _Line("ordinal", indent, rest, start=int(match.group("ordinal")))


def _strip_heading_closer(pieces: list[Piece], reading: Side) -> list[Piece]:
    """ATX headings may end in ``#``s ("## Title ##"); they are markup too."""
    if not pieces or not _shown(pieces[-1].op, reading):
        return pieces
    last = pieces[-1]
    trimmed = re.sub(r"[ \t]+#+[ \t]*$", "", last.text)
    if trimmed == last.text:
        return pieces
    return [*pieces[:-1], Piece(last.op, trimmed, last.credit)] if trimmed else pieces[:-1]


def _wrap(op: DiffOp, html: str, label: str | None) -> str:
    if op is DiffOp.EQUAL or label is None:
        return html
    tag = "ins" if op is DiffOp.INSERT else "del"
    return (
        f'<{tag} class="redline-{tag}"><span class="visually-hidden">[{label}: </span>'
        f'{html}<span class="visually-hidden">]</span></{tag}>'
    )


def styled_runs(pieces: Iterable[Piece]) -> Iterator[StyledText]:
    """A line's pieces as runs of text with their emphasis, markers (``**``, ``*``, ``__``,
    ``_``) removed.

    Emphasis is tracked separately for the old text (kept + deleted) and the new text (kept +
    inserted), so a ``**`` that was only added makes the new words bold, not the deleted ones.
    """
    new_state, old_state = _Emphasis(), _Emphasis()
    for piece in pieces:
        state = old_state if piece.op is DiffOp.DELETE else new_state
        if "*" not in piece.text and "_" not in piece.text:  # the common case: no marker at all
            yield StyledText(piece.op, piece.text, state.bold, state.italic, piece.credit)
            continue
        position = 0
        for marker in _EMPHASIS.finditer(piece.text):
            if marker.start() > position:
                yield StyledText(piece.op, piece.text[position:marker.start()], state.bold, state.italic, piece.credit)
            if piece.op is not DiffOp.DELETE:
                new_state.toggle(marker.group())
            if piece.op is not DiffOp.INSERT:
                old_state.toggle(marker.group())
            position = marker.end()
        if position < len(piece.text):
            yield StyledText(piece.op, piece.text[position:], state.bold, state.italic, piece.credit)


def render_inline_pieces(pieces: Iterable[Piece], labels: tuple[str, str] = ("inserted", "deleted")) -> str:
    """HTML of one line's pieces: emphasis as ``<strong>``/``<em>`` (see :func:`styled_runs`),
    insertions ``<ins>`` and deletions ``<del>``, each with hidden words for screen readers."""
    parts: list[str] = []
    for op, runs in groupby(styled_runs(pieces), key=lambda run: run.op):
        label = labels[0] if op is DiffOp.INSERT else labels[1] if op is DiffOp.DELETE else None
        content = "".join(_styled(run.text, run) for run in runs)
        if content:
            parts.append(_wrap(op, content, label))
    return "".join(parts)


def _styled(text: str, state: StyledText) -> str:
    if not text:
        return ""
    html = escape(text, quote=False)
    if state.italic:
        html = f"<em>{html}</em>"
    if state.bold:
        html = f"<strong>{html}</strong>"
    return html


class _ListStack:
    """Open ``<ul>``/``<ol>`` elements by indentation, so nested items nest in valid HTML."""

    def __init__(self, out: list[str]) -> None:
        self.out = out
        self.open: list[tuple[int, str]] = []  # (indentation, "ul" or "ol"), each with an open <li>

    def item(self, indent: int, tag: str, start: int) -> None:
        while self.open and self.open[-1][0] > indent:
            self._close_one()
        if self.open and self.open[-1][0] == indent:
            if self.open[-1][1] == tag:
                self.out.append("</li>")
            else:
                self._close_one()
        if not self.open or self.open[-1][0] < indent:
            start_attr = f' start="{start}"' if tag == "ol" and start != 1 else ""
            self.out.append(f"<{tag}{start_attr}>")
            self.open.append((indent, tag))
        self.out.append("<li>")

    def inside_item(self) -> bool:
        return bool(self.open)

    def _close_one(self) -> None:
        _, tag = self.open.pop()
        self.out.append(f"</li></{tag}>")

    def close(self) -> None:
        while self.open:
            self._close_one()


def iter_blocks(segments: Iterable[DiffSegment], side: Side) -> Iterator[_Line]:
    """The diff's lines, classified, blank lines included (they separate paragraphs)."""
    for pieces in split_lines(segments, side):
        yield classify_line(pieces, side)


def render_markdown_diff(
    segments: Iterable[DiffSegment],
    side: Side = Side.BOTH,
    *,
    labels: tuple[str, str] = ("inserted", "deleted"),
) -> str:
    """HTML of a word diff of Markdown source with its structure kept.

    Each non-blank line becomes a paragraph, a heading (``<h4>``-``<h6>``) or a list item
    (nested by indentation), so a change never runs paragraphs together and no ``####`` is
    shown. ``labels`` are the words screen readers hear for an insertion and a deletion.
    """
    out: list[str] = []
    lists = _ListStack(out)
    for line in iter_blocks(segments, side):
        if line.kind == "blank":
            continue
        content = render_inline_pieces(line.pieces, labels)
        if line.kind in ("bullet", "ordinal"):
            lists.item(line.level, "ul" if line.kind == "bullet" else "ol", line.start)
            out.append(content)
            continue
        if line.kind == "text" and line.level >= 2 and lists.inside_item():
            # An indented line under a list item continues that item (Markdown's lazy lines).
            out.append(f"<br>{content}")
            continue
        lists.close()
        if line.kind == "heading":
            out.append(f'<h{line.level} class="redline-body-heading">{content}</h{line.level}>')
        else:
            out.append(f"<p>{content}</p>")
    lists.close()
    return "".join(out)
