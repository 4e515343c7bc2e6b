"""Standalone HTML of a consolidated draft: one self-contained file, readable offline.

The page has a table of contents linking to every chapter and clause, the clause numbers in the
headings, and the export stylesheet inlined (it carries the print rules the PDF uses). Nothing is
fetched when it is opened: no external stylesheet, font or script, and a Content-Security-Policy
that blocks any image a clause might link to. Heading ids are prefixed (``chapter-``,
``clause-``) so clause keys cannot clobber DOM names.
"""

from __future__ import annotations

from html import escape

from .htmlkit import anchor_id, demote_headings, standalone_page
from .model import ExportChapter, ExportClause, ExportDocument, MarkdownRenderer

# Document title is h1 and chapters h2, so a top-level clause is h3.
_CLAUSE_BASE_LEVEL = 3


def chapter_anchor(chapter: ExportChapter) -> str:
    """The DOM id of a chapter's section."""
    return anchor_id("chapter", chapter.key)


def clause_anchor(clause: ExportClause) -> str:
    """The DOM id of a clause's article, ``clause-<uid>``."""
    return anchor_id("clause", clause.uid)


def _heading_html(number: str, title: str) -> str:
    number_html = f'<span class="clause-number">{escape(number)}</span> ' if number.strip() else ""
    return number_html + escape(title)


def render_toc(document: ExportDocument) -> str:
    """The table of contents: chapters, and their clauses nested by parent, as linked lists."""
    depths = document.clause_depths()
    parts = ['<nav class="toc" aria-labelledby="toc-title">',
             f'<h2 id="toc-title">{escape(document.word("contents"))}</h2>', "<ol>"]
    for chapter in document.chapters:
        parts.append(f'<li><a href="#{chapter_anchor(chapter)}">{_heading_html(chapter.number, chapter.title)}</a>')
        # A flat list per chapter, indented by depth: nesting <ol> inside each parent's <li>
        # buys nothing for readers and is easy to get wrong with damaged trees.
        if chapter.clauses:
            parts.append("<ol>")
            for clause in chapter.clauses:
                depth = min(depths.get(clause.uid, 0), 4)
                link = f'<a href="#{clause_anchor(clause)}">{_heading_html(clause.number, clause.title)}</a>'
                parts.append(f'<li class="toc-depth-{depth}">{link}</li>')
            parts.append("</ol>")
        parts.append("</li>")
    parts.append("</ol></nav>")
    return "\n".join(parts)


def render_clause(clause: ExportClause, depth: int, render_markdown: MarkdownRenderer) -> str:
    """One clause as an ``<article>``: its numbered heading and its rendered, safe body."""
    level = min(6, _CLAUSE_BASE_LEVEL + depth)
    body = demote_headings(render_markdown(clause.body_markdown), level)
    kind_class = "".join(char for char in clause.kind.lower() if char.isalnum() or char == "-")
    return (
        f'<article class="clause clause--{kind_class}" id="{clause_anchor(clause)}">\n'
        f"<h{level}>{_heading_html(clause.number, clause.title)}</h{level}>\n"
        f'<div class="clause-body">\n{body}\n</div>\n</article>'
    )


def render_document_body(
    document: ExportDocument, render_markdown: MarkdownRenderer, *, include_toc: bool = True
) -> str:
    """The page body (header, table of contents, chapters) as an HTML fragment."""
    depths = document.clause_depths()
    parts = [
        '<header class="doc-header">',
        f"<h1>{escape(document.code_title)}</h1>",
        f'<p class="draft-label">{escape(document.draft_label)}</p>',
        f'<p class="generated">{escape(document.generated())}</p>',
        "</header>",
    ]
    if include_toc:
        parts.append(render_toc(document))
    parts.append("<main>")
    for chapter in document.chapters:
        parts.append(f'<section class="chapter" id="{chapter_anchor(chapter)}">')
        parts.append(f"<h2>{_heading_html(chapter.number, chapter.title)}</h2>")
        for clause in chapter.clauses:
            parts.append(render_clause(clause, depths.get(clause.uid, 0), render_markdown))
        parts.append("</section>")
    parts.append("</main>")
    return "\n".join(parts)


def export_html(document: ExportDocument, render_markdown: MarkdownRenderer, *, include_toc: bool = True) -> str:
    """The consolidated draft as one standalone HTML page (str, UTF-8 when encoded).

    ``render_markdown`` must return safe HTML (the app's sanitising renderer); this function
    escapes every other piece of user text itself.
    """
    title = f"{document.code_title} — {document.draft_label}"
    body = render_document_body(document, render_markdown, include_toc=include_toc)
    return standalone_page(title=title, language=document.language, body=body)
