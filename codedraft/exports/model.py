"""Plain data handed to the export core: a consolidated document and the feedback dataset.

The app builds these from its database (a published draft or the live text); the export modules
only read them. They are frozen so an export can never change the document it is exporting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: A Markdown renderer returning *safe* HTML (raw HTML off, output sanitised); the app passes
#: ``codedraft.markdown.render_markdown``.
MarkdownRenderer = Callable[[str], str]


@dataclass(frozen=True)
class ExportClause:
    """One clause (commitment, measure, recital, glossary entry...) as it stands in a draft.

    ``uid`` never changes across drafts; ``number`` may (renumbering). ``parent_uid`` names the
    enclosing clause (a measure under its commitment) or is ``None`` for a top-level clause.
    """

    uid: str
    number: str
    title: str
    kind: str
    body_markdown: str
    chapter_key: str
    position: int
    parent_uid: str | None = None

    @property
    def heading(self) -> str:
        """The clause heading as readers see it: number then title."""
        return join_number_and_title(self.number, self.title)


@dataclass(frozen=True)
class ExportChapter:
    """A chapter (owned by a working group) and its clauses, in reading order."""

    key: str
    number: str
    title: str
    clauses: Sequence[ExportClause] = ()

    @property
    def heading(self) -> str:
        """The chapter heading as readers see it: number then title."""
        return join_number_and_title(self.number, self.title)


#: The words an export writes itself, in English; the app translates them (same keys, same
#: ``%(name)s`` parameters) into the document's language.
EXPORT_WORDS: Mapping[str, str] = {
    "contents": "Contents",
    "toc_update": "Right-click and choose Update Field to build the table of contents.",
    "generated": "Generated %(date)s",
    "changes_from": "Changes from %(old)s to %(new)s",
    "changes_print": "Changes from %(old)s to %(new)s, insertions underlined, deletions struck through",
    "changes_tracked": "Changes from %(old)s to %(new)s, shown as tracked changes",
    "legend": "Inserted text is underlined, deleted text struck through.",
    "summary": "Summary of changes",
}


@dataclass(frozen=True)
class ExportDocument:
    """A whole code at one draft (``draft_label`` e.g. "Third Draft") or at the live text."""

    code_title: str
    draft_label: str
    language: str
    chapters: Sequence[ExportChapter]
    generated_at: datetime
    #: The words the export writes around the text, in the document's language (EXPORT_WORDS's
    #: keys; the app fills them from its catalogues, codedraft.exports.builders.export_words).
    words: Mapping[str, str] = field(default_factory=dict)

    def word(self, key: str, **params: str) -> str:
        """One of the export's words, in the document's language (English when not given)."""
        text = self.words.get(key) or EXPORT_WORDS[key]
        try:
            return text % params if params else text
        except (KeyError, ValueError, TypeError):
            return EXPORT_WORDS[key] % params if params else EXPORT_WORDS[key]

    def generated(self) -> str:
        """ "Generated 6 December 2026, 23:05", the date as the app formatted it for the language."""
        return self.word("generated", date=self.words.get("date") or self.generated_at.strftime("%d %B %Y, %H:%M"))

    def iter_clauses(self) -> Iterator[tuple[ExportChapter, ExportClause]]:
        """Yield every clause with its chapter, in reading order."""
        for chapter in self.chapters:
            for clause in chapter.clauses:
                yield chapter, clause

    def clause_depths(self) -> dict[str, int]:
        """Nesting depth of each clause: 0 for top level, 1 for a clause under it, and so on.

        A parent that is missing from the document (or a cycle) counts as top level, so a
        damaged tree still exports.
        """
        parents = {clause.uid: clause.parent_uid for _, clause in self.iter_clauses()}
        depths: dict[str, int] = {}
        for uid in parents:
            depth, seen, current = 0, {uid}, parents[uid]
            while current is not None and current in parents and current not in seen:
                seen.add(current)
                depth += 1
                current = parents[current]
            depths[uid] = depth
        return depths


@dataclass(frozen=True)
class FeedbackRow:
    """One comment of the feedback dataset, flattened for CSV/XLSX/JSON export."""

    comment_id: int | str
    clause_number: str
    clause_title: str
    chapter: str
    category: str
    organisation: str
    author: str
    status: str
    disposition: str
    disposition_reason: str
    created: datetime
    text: str
    quote: str = ""
    kind: str = "comment"  # "comment" | "amendment"
    replacement: str = ""  # an amendment's proposed words for the quoted passage
    supports: int = 0
    round: str = ""  # the feedback round's name
    group: int | str = ""  # the campaign group's id, "" when in none
    theme: str = ""  # the theme's name, "" when in none


def join_number_and_title(number: str, title: str) -> str:
    """ "II.1 Safety framework" from number and title; either may be empty."""
    return " ".join(part for part in (number.strip(), title.strip()) if part)
