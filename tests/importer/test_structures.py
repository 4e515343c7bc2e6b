"""The importer holds to the structure of each real document as a person reads it.

Each file in ``structures/`` was written by reading one corpus document (its headings, its own
sections, where its drafters' notes sit); the parse of that document, drawn in the same outline,
must be exactly that file. See ``structures/README.md`` for the format.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from codedraft.importer.parse import ParsedDocument, parse_markdown
from tests.conftest import shared_file

STRUCTURES = Path(__file__).parent / "structures"


def outline(document: ParsedDocument) -> list[str]:
    """The document drawn as the structure files are written: title, chapters, indented clauses."""
    lines = [f"title: {document.title}"]
    for chapter in document.chapters:
        lines.append(f"chapter: {chapter.title}")
        depth: dict[str, int] = {}
        for clause in chapter.clauses:
            depth[clause.key] = depth.get(clause.parent_key or "", 0) + 1
            indent = "  " * depth[clause.key]
            number = f" {clause.number} " if clause.number else " "
            lines.append(f"{indent}{clause.kind} |{number}| {clause.title}".rstrip())
            lines.extend(f"{indent}  > {note.title}" for note in clause.notes)
    return lines


def expected_outline(name: str) -> list[str]:
    text = (STRUCTURES / name).read_text(encoding="utf-8")
    return [line.rstrip() for line in text.split("\n") if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "name",
    [
        "gpai-cop-draft2-2024-12",
        "gpai-cop-draft3-2025-03",
        "gpai-cop-final-2025-07-safety-security",
        "eu-ai-act-regulation-2024-1689",
    ],
)
def test_import_matches_the_structure_read_from_the_document(name: str) -> None:
    expected = expected_outline(f"{name}.txt")
    document = parse_markdown(shared_file("corpus", f"{name}.md").read_text(encoding="utf-8"))
    assert "\n".join(outline(document)) == "\n".join(expected)


@pytest.mark.parametrize(
    "name", ["gpai-cop-draft2-2024-12", "gpai-cop-draft3-2025-03", "gpai-cop-final-2025-07-safety-security"]
)
def test_drafters_notes_and_html_comments_never_reach_clause_text(name: str) -> None:
    document = parse_markdown(shared_file("corpus", f"{name}.md").read_text(encoding="utf-8"))
    for clause in document.clauses():
        assert "<!--" not in clause.body
        for marker in ("Explanation of changes", "Explanation of the changes", "Summary of changes",
                       "Summary of Changes", "Potential material for future Recital"):
            assert f"# {marker}" not in clause.body, (clause.key, marker)
    assert any("HTML comment" in warning for warning in document.warnings)


def test_second_draft_has_its_explanations_as_notes() -> None:
    document = parse_markdown(shared_file("corpus", "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8"))
    notes = [note for clause in document.clauses() for note in clause.notes]
    assert len(notes) == 19 and all(note.title.startswith("Explanation of") for note in notes)
    on_measures = [c.number for c in document.clauses() if c.kind == "measure" and c.notes]
    assert on_measures == ["16.1", "16.2", "19.1", "19.4"]
