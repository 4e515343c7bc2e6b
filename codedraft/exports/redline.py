"""Render a :class:`~codedraft.exports.compare.Comparison` as HTML: inline or side by side.

The redline shows the clause text as drafted (its Markdown source, line breaks kept), not the
rendered Markdown: a diff of source text is exact, whereas splicing ``<ins>``/``<del>`` into
rendered HTML breaks as soon as a change crosses a paragraph or a list. All text is escaped here.

Changes are never marked by colour alone: insertions are underlined, deletions struck through,
and both carry visually hidden "[inserted: ...]" / "[deleted: ...]" text for screen readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from html import escape

from .compare import ClauseComparison, ClauseStatus, Comparison, DiffOp, DiffSegment
from .htmlkit import anchor_id, standalone_page, text_with_breaks


class Side(StrEnum):
    """Which text a rendering of a diff shows."""

    BOTH = "both"  # inline: kept, inserted and deleted text together
    OLD = "old"  # left column: kept and deleted text
    NEW = "new"  # right column: kept and inserted text


def _marked(tag: str, label: str, text: str) -> str:
    return (
        f'<{tag} class="redline-{tag}"><span class="visually-hidden">[{label}: </span>'
        f'{text_with_breaks(text)}<span class="visually-hidden">]</span></{tag}>'
    )


def _segment_html(segment: DiffSegment, text: str, side: Side) -> str:
    if segment.op is DiffOp.EQUAL:
        return text_with_breaks(text)
    if segment.op is DiffOp.INSERT and side is not Side.OLD:
        return _marked("ins", "inserted", text)
    if segment.op is DiffOp.DELETE and side is not Side.NEW:
        return _marked("del", "deleted", text)
    return ""


def render_segments(segments: Iterable[DiffSegment], side: Side = Side.BOTH) -> str:
    """HTML of a word diff on one line: kept text escaped, insertions in ``<ins>``, deletions in
    ``<del>``. Line breaks are left to the caller's ``pre-wrap`` styling."""
    return "".join(_segment_html(segment, segment.text, side) for segment in segments)


def render_segment_lines(segments: Iterable[DiffSegment], side: Side = Side.BOTH) -> str:
    """HTML of a multi-line word diff, one ``<p class="redline-line">`` per line of text.

    A change spanning lines is closed and reopened on each line, so the markup stays valid and
    the PDF renderer lays out short paragraphs rather than one block the size of the clause.
    """
    lines: list[list[str]] = [[]]
    for segment in segments:
        if segment.op is DiffOp.INSERT and side is Side.OLD:
            continue
        if segment.op is DiffOp.DELETE and side is Side.NEW:
            continue
        for index, piece in enumerate(segment.text.split("\n")):
            if index:
                lines.append([])
            if piece:
                lines[-1].append(_segment_html(segment, piece, side))
    return "".join(
        f'<p class="redline-line">{"".join(parts)}</p>' if parts else '<p class="redline-line blank"></p>'
        for parts in lines
    )


def change_badges(clause: ClauseComparison) -> list[str]:
    """Plain-language labels of what happened to a clause, e.g. "Renumbered 1.2 → 1.3"."""
    if clause.old is None:
        return ["Added"]
    if clause.new is None:
        return ["Removed"]
    badges = []
    if clause.moved:
        if clause.old.chapter_key != clause.new.chapter_key:
            badges.append(f"Moved from “{clause.old_chapter_title}”")
        else:
            badges.append("Moved within the chapter")
    if clause.renumbered:
        badges.append(f"Renumbered {clause.old.number or '(none)'} → {clause.new.number or '(none)'}")
    if clause.retitled:
        badges.append("Retitled")
    if clause.text_changed:
        badges.append("Text changed")
    return badges


def _badges_html(clause: ClauseComparison) -> str:
    badges = change_badges(clause)
    if not badges:
        return ""
    spans = "".join(f'<span class="badge">{escape(badge)}</span>' for badge in badges)
    return f'<p class="redline-badges">{spans}</p>'


def _chapter_title(clause: ClauseComparison) -> str:
    return clause.new_chapter_title if clause.new is not None else clause.old_chapter_title


def _shown(comparison: Comparison, changed_only: bool) -> Iterator[tuple[bool, ClauseComparison]]:
    """Clauses to show, each flagged when it opens a new chapter."""
    chapter = None
    for clause in comparison.clauses:
        if changed_only and clause.status is ClauseStatus.UNCHANGED:
            continue
        title = _chapter_title(clause)
        yield title != chapter, clause
        chapter = title


def render_summary(comparison: Comparison) -> str:
    """A short list of counts: added, removed, moved, renumbered, retitled, re-worded clauses."""
    rows = [
        ("Clauses added", len(comparison.added)),
        ("Clauses removed", len(comparison.removed)),
        ("Clauses moved", len(comparison.moved)),
        ("Clauses renumbered", len(comparison.renumbered)),
        ("Clauses retitled", len(comparison.retitled)),
        ("Clauses with changed text", len(comparison.text_changed)),
    ]
    items = "".join(f"<dt>{label}</dt><dd>{count}</dd>" for label, count in rows)
    return f'<dl class="redline-summary">{items}</dl>'


def render_inline(comparison: Comparison, *, changed_only: bool = False) -> str:
    """Inline redline fragment: each clause's heading and text with insertions and deletions
    marked in place. ``changed_only`` leaves out unchanged clauses."""
    parts = []
    for opens_chapter, clause in _shown(comparison, changed_only):
        if opens_chapter:
            parts.append(f'<h2 class="redline-chapter">{escape(_chapter_title(clause))}</h2>')
        status = clause.status.value
        parts.append(
            f'<section class="redline-clause redline-clause--{status}" '
            f'id="{anchor_id("clause", clause.uid)}">\n'
            f"<h3>{render_segments(clause.title_diff)}</h3>\n{_badges_html(clause)}\n"
            f'<div class="redline-text">{render_segments(clause.body_diff)}</div>\n</section>'
        )
    return "\n".join(parts)


def render_side_by_side(comparison: Comparison, *, changed_only: bool = False) -> str:
    """Two-column redline fragment: the old draft with deletions on the left, the new draft with
    insertions on the right, one table row per clause."""
    old_label = escape(comparison.old.draft_label)
    new_label = escape(comparison.new.draft_label)
    parts = [
        '<table class="redline-sbs">',
        f"<caption>{old_label} compared with {new_label}</caption>",
        f'<thead><tr><th scope="col">{old_label}</th><th scope="col">{new_label}</th></tr></thead>',
        "<tbody>",
    ]
    for opens_chapter, clause in _shown(comparison, changed_only):
        if opens_chapter:
            parts.append(
                f'<tr class="chapter-row"><th colspan="2" scope="colgroup">{escape(_chapter_title(clause))}</th></tr>'
            )
        cells = []
        for side, present in ((Side.OLD, clause.old is not None), (Side.NEW, clause.new is not None)):
            if not present:
                absent = "Not in this draft"
                cells.append(f'<td class="redline-absent"><em>{absent}</em></td>')
                continue
            cells.append(
                f'<td><p class="redline-heading"><strong>{render_segments(clause.title_diff, side)}'
                f"</strong></p>"
                f'<div class="redline-text">{render_segments(clause.body_diff, side)}</div></td>'
            )
        parts.append(
            f'<tr class="redline-clause--{clause.status.value}" id="{anchor_id("clause", clause.uid)}">'
            f"{''.join(cells)}</tr>"
        )
        badges = _badges_html(clause)
        if badges:
            parts.append(f'<tr class="redline-badges-row"><td colspan="2">{badges}</td></tr>')
    parts.append("</tbody></table>")
    return "\n".join(parts)


class RedlineLayout(StrEnum):
    """How a standalone redline lays out the two drafts."""

    INLINE = "inline"
    SIDE_BY_SIDE = "side-by-side"


def export_redline_html(
    comparison: Comparison,
    *,
    layout: RedlineLayout = RedlineLayout.INLINE,
    changed_only: bool = False,
) -> str:
    """A standalone HTML page of the redline between the two drafts of ``comparison``."""
    old, new = comparison.old, comparison.new
    title = f"{new.code_title}: {old.draft_label} → {new.draft_label}"
    content = (
        render_side_by_side(comparison, changed_only=changed_only)
        if layout is RedlineLayout.SIDE_BY_SIDE
        else render_inline(comparison, changed_only=changed_only)
    )
    body = (
        f'<header class="doc-header"><h1>{escape(new.code_title)}</h1>'
        f'<p class="draft-label">Changes from {escape(old.draft_label)} to {escape(new.draft_label)}</p>'
        f'<p class="generated">Generated {escape(new.generated_at.strftime("%d %B %Y, %H:%M"))}. '
        "Inserted text is underlined, deleted text struck through.</p></header>\n"
        f'<section aria-label="Summary of changes">{render_summary(comparison)}</section>\n'
        f'<main class="redline-{layout.value}">\n{content}\n</main>'
    )
    body_class = "redline-sbs-page" if layout is RedlineLayout.SIDE_BY_SIDE else ""
    return standalone_page(title=title, language=new.language, body=body, body_class=body_class)
