"""Render a :class:`~codedraft.exports.compare.Comparison` as HTML: inline or side by side.

The diff is exact on the clause's Markdown source; :mod:`.redline_blocks` lays it out as the
Markdown it is (paragraphs, lists and headings, emphasis), so a change never runs paragraphs
together and no ``####`` is shown. All text is escaped.

Changes are never marked by colour alone: insertions are underlined, deletions struck through,
and both carry visually hidden "[inserted: ...]" / "[deleted: ...]" text for screen readers.
Every changed clause is listed in an index at the top, and each links to the previous and next
changed clause, so the redline can be read change by change without any script (the on-screen
page adds change-by-change buttons and keys on top).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from html import escape

from .compare import ClauseComparison, ClauseStatus, Comparison, DiffOp, DiffSegment
from .htmlkit import anchor_id, standalone_page, text_with_breaks
from .redline_blocks import Side, render_markdown_diff

__all__ = [
    "Side", "RedlineLayout", "render_segments", "render_segment_lines", "render_inline", "render_side_by_side",
    "render_summary", "render_clause_index", "change_badges", "export_redline_html", "REDLINE_WORDS",
]

#: The words a redline shows around the text; the app passes translated ones for its pages.
REDLINE_WORDS: Mapping[str, str] = {
    "inserted": "inserted",
    "deleted": "deleted",
    "index": "Changed clauses",
    "previous": "Previous changed clause",
    "next": "Next changed clause",
    "added": "added",
    "removed": "removed",
    "changed": "changed",
    "not_in_draft": "Not in this draft",
    "badge_added": "Added",
    "badge_removed": "Removed",
    "badge_moved_from": "Moved from “%(chapter)s”",
    "badge_moved_within": "Moved within the chapter",
    "badge_renumbered": "Renumbered %(old)s → %(new)s",
    "badge_no_number": "(none)",
    "badge_retitled": "Retitled",
    "badge_text_changed": "Text changed",
    "summary_added": "Clauses added",
    "summary_removed": "Clauses removed",
    "summary_moved": "Clauses moved",
    "summary_renumbered": "Clauses renumbered",
    "summary_retitled": "Clauses retitled",
    "summary_text_changed": "Clauses with changed text",
}


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


def _said(words: Mapping[str, str], key: str, **params: str) -> str:
    """A word of ``words`` (REDLINE_WORDS's when missing) with its parameters."""
    text = words.get(key) or REDLINE_WORDS[key]
    try:
        return text % params if params else text
    except (KeyError, ValueError, TypeError):
        return REDLINE_WORDS[key] % params if params else REDLINE_WORDS[key]


def change_badges(clause: ClauseComparison, words: Mapping[str, str] | None = None) -> list[str]:
    """Plain-language labels of what happened to a clause, e.g. "Renumbered 1.2 → 1.3"."""
    labels = _words(words)
    if clause.old is None:
        return [_said(labels, "badge_added")]
    if clause.new is None:
        return [_said(labels, "badge_removed")]
    badges = []
    if clause.moved:
        if clause.old.chapter_key != clause.new.chapter_key:
            badges.append(_said(labels, "badge_moved_from", chapter=clause.old_chapter_title))
        else:
            badges.append(_said(labels, "badge_moved_within"))
    if clause.renumbered:
        none = _said(labels, "badge_no_number")
        badges.append(_said(labels, "badge_renumbered", old=clause.old.number or none, new=clause.new.number or none))
    if clause.retitled:
        badges.append(_said(labels, "badge_retitled"))
    if clause.text_changed:
        badges.append(_said(labels, "badge_text_changed"))
    return badges


def _badges_html(clause: ClauseComparison, words: Mapping[str, str] | None = None) -> str:
    badges = change_badges(clause, words)
    if not badges:
        return ""
    spans = " ".join(f'<span class="badge">{escape(badge)}</span>' for badge in badges)
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


def render_summary(comparison: Comparison, *, words: Mapping[str, str] | None = None) -> str:
    """A short list of counts: added, removed, moved, renumbered, retitled, re-worded clauses."""
    labels = _words(words)
    rows = [
        ("summary_added", len(comparison.added)),
        ("summary_removed", len(comparison.removed)),
        ("summary_moved", len(comparison.moved)),
        ("summary_renumbered", len(comparison.renumbered)),
        ("summary_retitled", len(comparison.retitled)),
        ("summary_text_changed", len(comparison.text_changed)),
    ]
    items = "".join(f"<dt>{escape(_said(labels, key))}</dt><dd>{count}</dd>" for key, count in rows)
    return f'<dl class="redline-summary">{items}</dl>'


def _words(words: Mapping[str, str] | None) -> Mapping[str, str]:
    return {**REDLINE_WORDS, **(words or {})}


def _changed_neighbours(shown: list[ClauseComparison]) -> dict[str, tuple[str | None, str | None]]:
    """For each changed clause, the uids of the changed clauses before and after it."""
    changed = [clause.uid for clause in shown if clause.status is not ClauseStatus.UNCHANGED]
    return {
        uid: (changed[index - 1] if index else None, changed[index + 1] if index + 1 < len(changed) else None)
        for index, uid in enumerate(changed)
    }


def _neighbour_links(uid: str, neighbours: Mapping[str, tuple[str | None, str | None]],
                     words: Mapping[str, str]) -> str:
    """"Previous/next changed clause" links, so a reader can go change by change without script."""
    if uid not in neighbours:
        return ""
    before, after = neighbours[uid]
    links = []
    if before is not None:
        links.append(f'<a class="redline-prev" href="#{anchor_id("clause", before)}">← {escape(words["previous"])}</a>')
    if after is not None:
        links.append(f'<a class="redline-next" href="#{anchor_id("clause", after)}">{escape(words["next"])} →</a>')
    return f'<p class="redline-step">{" ".join(links)}</p>' if links else ""


def _count_changes(clause: ClauseComparison) -> int:
    """How many separate changes (runs of inserted and/or deleted words) a clause's text has."""
    count, in_change = 0, False
    for segment in (*clause.title_diff, *clause.body_diff):
        if segment.op is DiffOp.EQUAL:
            in_change = False
        elif not in_change:
            count, in_change = count + 1, True
    return count


def render_clause_index(comparison: Comparison, *, words: Mapping[str, str] | None = None) -> str:
    """A linked list of every clause that changed, with what happened to it and how many changes
    its text holds: the way into a long redline."""
    labels = _words(words)
    items = []
    for clause in comparison.changed:
        status = labels.get(clause.status.value, clause.status.value)
        changes = _count_changes(clause)
        detail = f"{status}, {changes}" if clause.status is ClauseStatus.CHANGED and changes else status
        items.append(
            f'<li class="redline-index--{clause.status.value}"><a href="#{anchor_id("clause", clause.uid)}">'
            f"{escape(clause.current.heading or clause.uid)}</a> <span class=\"meta\">({escape(detail)})</span></li>"
        )
    return (
        f'<nav class="redline-index" aria-labelledby="redline-index-title">'
        f'<h2 id="redline-index-title">{escape(labels["index"])} ({len(items)})</h2>'
        f'<ol>{"".join(items)}</ol></nav>'
    )


def _body_html(clause: ClauseComparison, side: Side, words: Mapping[str, str]) -> str:
    return render_markdown_diff(clause.body_diff, side, labels=(words["inserted"], words["deleted"]))


def render_inline(
    comparison: Comparison, *, changed_only: bool = False, words: Mapping[str, str] | None = None
) -> str:
    """Inline redline fragment: each clause's heading and text with insertions and deletions
    marked in place, the text laid out as paragraphs, lists and headings. ``changed_only``
    leaves out unchanged clauses."""
    labels = _words(words)
    shown = list(_shown(comparison, changed_only))
    neighbours = _changed_neighbours([clause for _, clause in shown])
    parts = []
    for opens_chapter, clause in shown:
        if opens_chapter:
            parts.append(f'<h2 class="redline-chapter">{escape(_chapter_title(clause))}</h2>')
        status = clause.status.value
        parts.append(
            f'<section class="redline-clause redline-clause--{status}" '
            f'id="{anchor_id("clause", clause.uid)}">\n'
            f"<h3>{render_segments(clause.title_diff)}</h3>\n{_badges_html(clause, labels)}\n"
            f'<div class="redline-text">{_body_html(clause, Side.BOTH, labels)}</div>\n'
            f"{_neighbour_links(clause.uid, neighbours, labels)}</section>"
        )
    return "\n".join(parts)


def render_side_by_side(
    comparison: Comparison, *, changed_only: bool = False, words: Mapping[str, str] | None = None
) -> str:
    """Two-column redline fragment: the old draft with deletions on the left, the new draft with
    insertions on the right, one table row per clause."""
    labels = _words(words)
    old_label = escape(comparison.old.draft_label)
    new_label = escape(comparison.new.draft_label)
    parts = [
        '<table class="redline-sbs">',
        f"<caption>{old_label} compared with {new_label}</caption>",
        f'<thead><tr><th scope="col">{old_label}</th><th scope="col">{new_label}</th></tr></thead>',
        "<tbody>",
    ]
    shown = list(_shown(comparison, changed_only))
    neighbours = _changed_neighbours([clause for _, clause in shown])
    for opens_chapter, clause in shown:
        if opens_chapter:
            parts.append(
                f'<tr class="chapter-row"><th colspan="2" scope="colgroup">{escape(_chapter_title(clause))}</th></tr>'
            )
        cells = []
        for side, present in ((Side.OLD, clause.old is not None), (Side.NEW, clause.new is not None)):
            if not present:
                cells.append(f'<td class="redline-absent"><em>{escape(labels["not_in_draft"])}</em></td>')
                continue
            cells.append(
                f'<td><p class="redline-heading"><strong>{render_segments(clause.title_diff, side)}'
                f"</strong></p>"
                f'<div class="redline-text">{_body_html(clause, side, labels)}</div></td>'
            )
        parts.append(
            f'<tr class="redline-clause--{clause.status.value}" id="{anchor_id("clause", clause.uid)}">'
            f"{''.join(cells)}</tr>"
        )
        badges = _badges_html(clause, labels) + _neighbour_links(clause.uid, neighbours, labels)
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
    words = new.words  # the document's words include the redline's (codedraft.exports.builders)
    content = (
        render_side_by_side(comparison, changed_only=changed_only, words=words)
        if layout is RedlineLayout.SIDE_BY_SIDE
        else render_inline(comparison, changed_only=changed_only, words=words)
    )
    body = (
        f'<header class="doc-header"><h1>{escape(new.code_title)}</h1>'
        f'<p class="draft-label">{escape(new.word("changes_from", old=old.draft_label, new=new.draft_label))}</p>'
        f'<p class="generated">{escape(new.generated())}. {escape(new.word("legend"))}</p></header>\n'
        f'<section aria-label="{escape(new.word("summary"))}">{render_summary(comparison, words=words)}</section>\n'
        f"{render_clause_index(comparison, words=words)}\n"
        f'<main class="redline-{layout.value}">\n{content}\n</main>'
    )
    body_class = "redline-sbs-page" if layout is RedlineLayout.SIDE_BY_SIDE else ""
    return standalone_page(title=title, language=new.language, body=body, body_class=body_class)
