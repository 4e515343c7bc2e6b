"""Fixtures for the export core: a safe Markdown renderer and real drafts split into clauses."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import nh3
import pytest
from markdown_it import MarkdownIt

from codedraft.exports.model import ExportChapter, ExportClause, ExportDocument
from tests.conftest import SHARED

CORPUS = SHARED / "corpus"
DRAFT_2 = CORPUS / "gpai-cop-draft2-2024-12.md"
DRAFT_3 = CORPUS / "gpai-cop-draft3-2025-03.md"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# "Commitment II.1:", "Measure 2.1.", "3.4.1", "I." — the numbering that precedes a title.
_NUMBERED = re.compile(r"^(?:(commitment|measure)\s+)?((?:[IVX]+|\d+)(?:\.\d+)*)\.?:?\s+(.*)$", re.IGNORECASE)


def make_safe_renderer() -> Callable[[str], str]:
    """A renderer like the app's: CommonMark with raw HTML off, output sanitised by nh3."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")

    def render(text: str) -> str:
        return nh3.clean(parser.render(text))

    return render


@pytest.fixture(scope="session")
def render_markdown() -> Callable[[str], str]:
    return make_safe_renderer()


def normalise_title(title: str) -> str:
    """Lower-case words of a title without numbering or punctuation: the uid of the test splitter."""
    words = re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFKC", title).lower()).split()
    return "-".join(words) or "untitled"


def split_number(heading: str) -> tuple[str, str, str]:
    """(kind, number, title) from a heading such as "Measure II.1.2. Systemic risk..."."""
    match = _NUMBERED.match(heading)
    if match is None:
        return "section", "", heading
    kind = (match.group(1) or "section").lower()
    return kind, match.group(2), match.group(3)


def split_draft(path: Path, draft_label: str) -> ExportDocument:
    """A tiny importer for the tests: ``##`` headings open chapters, deeper headings open
    clauses (nested by heading level), text before the first ``##`` is dropped."""
    chapters: list[ExportChapter] = []
    chapter: dict | None = None
    clauses: list[ExportClause] = []
    current: dict | None = None
    stack: list[tuple[int, str]] = []  # (heading level, uid) of the open clauses
    used: dict[str, int] = {}

    def close_clause() -> None:
        nonlocal current
        if current is not None:
            clauses.append(ExportClause(body_markdown="\n".join(current.pop("body")).strip("\n"), **current))
            current = None

    def close_chapter() -> None:
        nonlocal clauses
        close_clause()
        if chapter is not None:
            chapters.append(ExportChapter(clauses=tuple(clauses), **chapter))
        clauses = []

    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADING.match(line)
        if match is None:
            if current is not None:
                current["body"].append(line)
            continue
        level, heading = len(match.group(1)), match.group(2)
        if level == 1:  # the document title
            continue
        kind, number, title = split_number(heading)
        if level == 2:
            close_chapter()
            chapter = {"key": normalise_title(title), "number": number, "title": title}
            stack = []
            continue
        if chapter is None:
            continue
        close_clause()
        uid = normalise_title(title)
        used[uid] = used.get(uid, 0) + 1
        if used[uid] > 1:
            uid = f"{uid}-{used[uid]}"
        while stack and stack[-1][0] >= level:
            stack.pop()
        current = {
            "uid": uid,
            "number": number,
            "title": title,
            "kind": kind,
            "chapter_key": chapter["key"],
            "position": len(clauses),
            "parent_uid": stack[-1][1] if stack else None,
            "body": [],
        }
        stack.append((level, uid))
    close_chapter()
    return ExportDocument(
        code_title="General-Purpose AI Code of Practice",
        draft_label=draft_label,
        language="en",
        chapters=tuple(chapters),
        generated_at=datetime(2025, 3, 11, 12, 0),
    )


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"../shared/corpus not present: {path}")
    return path


@pytest.fixture(scope="session")
def draft2() -> ExportDocument:
    return split_draft(_require(DRAFT_2), "Second Draft")


@pytest.fixture(scope="session")
def draft3() -> ExportDocument:
    return split_draft(_require(DRAFT_3), "Third Draft")


@pytest.fixture()
def make_clause() -> Callable[..., ExportClause]:
    """Factory for a clause with defaults; override any field by keyword."""

    def make(uid: str = "c1", **overrides: object) -> ExportClause:
        fields: dict[str, object] = {
            "uid": uid,
            "number": "1",
            "title": f"Clause {uid}",
            "kind": "measure",
            "body_markdown": "Signatories shall keep documentation.",
            "chapter_key": "transparency",
            "position": 0,
            "parent_uid": None,
        }
        fields.update(overrides)
        return ExportClause(**fields)  # type: ignore[arg-type]

    return make


@pytest.fixture()
def make_document() -> Callable[..., ExportDocument]:
    """Factory for a document from (chapter key, clauses) pairs."""

    def make(
        *chapters: tuple[str, list[ExportClause]], label: str = "Draft", title: str = "Test Code"
    ) -> ExportDocument:
        return ExportDocument(
            code_title=title,
            draft_label=label,
            language="en",
            chapters=tuple(
                ExportChapter(key=key, number=str(index + 1), title=key.title(), clauses=tuple(clauses))
                for index, (key, clauses) in enumerate(chapters)
            ),
            generated_at=datetime(2025, 3, 11, 12, 0),
        )

    return make
