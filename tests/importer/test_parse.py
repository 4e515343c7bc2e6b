"""Tests of the Markdown importer's parser: synthetic documents for the rules, the real corpus
(../shared/corpus) for the irregular headings of the Code drafts and the AI Act."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest

from codedraft.importer.parse import CLAUSE_KINDS, ParsedDocument, parse_markdown
from tests.conftest import SHARED

CORPUS = SHARED / "corpus"
DRAFT2 = "gpai-cop-draft2-2024-12.md"
DRAFT3 = "gpai-cop-draft3-2025-03.md"
FINAL_SAFETY = "gpai-cop-final-2025-07-safety-security.md"
AI_ACT = "eu-ai-act-regulation-2024-1689.md"
HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")


def read_corpus(name: str) -> str:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"../shared/corpus not present: {path}")
    return path.read_text(encoding="utf-8")


def corpus_index() -> dict:
    return json.loads(read_corpus("corpus-structure-index.json"))


LIST_MARKER = re.compile(r"^[-*+][ \t]+(?=\([a-z]{1,2}\) )")


def body_lines(document: ParsedDocument) -> Counter[str]:
    """Every line of every clause body and drafters' note, with a recital's "(n) " marker put back."""
    lines: Counter[str] = Counter()
    for clause in document.clauses():
        for position, line in enumerate(clause.body.split("\n")):
            if clause.kind == "recital" and position == 0:
                line = f"({clause.number}) {line}"
            lines[LIST_MARKER.sub("", line)] += 1
        for note in clause.notes:
            lines.update(note.body.split("\n"))
    return lines


def source_lines(source: str) -> Counter[str]:
    """Non-blank source lines as the parser keeps them: no HTML comments, no list marker before "(a)"."""
    lines = (LIST_MARKER.sub("", line) for line in source.replace("\r\n", "\n").split("\n"))
    return Counter(line for line in lines if line.strip() and not line.startswith("<!--"))


def assert_no_text_lost(source: str, document: ParsedDocument) -> None:
    """Every non-blank source line is in exactly one body, except headings that became titles."""
    in_source = source_lines(source)
    in_bodies = Counter({line: n for line, n in body_lines(document).items() if line.strip()})
    invented = in_bodies - in_source
    assert not invented, f"body lines not in the source: {list(invented)[:3]}"
    missing = in_source - in_bodies
    titles = {c.title for c in document.clauses()}
    # A FAQ's "Q:" lines became the titles of its questions.
    not_headings = [line for line in missing if not HEADING.match(line)
                    and not (line.startswith("Q:") and any(t and t in line for t in titles))]
    assert not not_headings, f"source lines in no clause body: {not_headings[:3]}"
    # A heading missing from the bodies must have become a document, chapter, clause or note title.
    names = [document.title] + [c.title for c in document.chapters]
    names += [c.title for c in document.clauses()] + [f"{c.kind} {c.number}" for c in document.clauses()]
    names += [n.title for c in document.clauses() for n in c.notes]
    for heading in missing:
        text = heading.lstrip("# ").strip().lower()
        if not text:
            continue  # an empty heading ("#") opens an untitled section; it has no text to keep
        assert any(name and name.lower() in text for name in names), f"heading lost: {heading!r}"


# --- synthetic documents -------------------------------------------------------------------

SMALL_CODE = """\
<!-- a source note -->
# A Small Code

Chairs: Ada, Grace

## Opening statement

We present the code.

### Why

Because.

## I. Transparency

Intro to transparency.

### Commitment 1. Documentation

Signatories document.

#### Measure 1.1: Keep records

Keep them.

##### Key Performance Indicators

- KPI 1.1.1: records kept.

#### Summary of changes

Nothing changed.

#### Measure 1.2 Share records

Share them.

### Whereas:

Some recitals.

### Commitment 2 Copyright policy

Respect copyright.

#### Measure 2.1. Policy

Write one.

## Glossary

Term: meaning.
"""


def test_small_code_splits_into_chapters_and_clauses() -> None:
    document = parse_markdown(SMALL_CODE)
    assert document.title == "A Small Code"
    assert [c.title for c in document.chapters] == ["A Small Code", "Opening statement", "Transparency", "Glossary"]
    # A chapter's heading is its title, never repeated as a clause: its opening text is untitled.
    assert [c.title for c in document.chapters[1].clauses] == [""]
    assert document.chapters[2].number == "I"
    keys = [c.key for c in document.clauses()]
    assert keys == [
        "section:front-matter",
        "section:opening-statement",
        "section:i-transparency",
        "commitment:1",
        "measure:1.1",
        "measure:1.2",
        "section:whereas",
        "commitment:2",
        "measure:2.1",
        "glossary:glossary",
    ]
    clauses = {c.key: c for c in document.clauses()}
    assert clauses["measure:1.1"].title == "Keep records"
    assert clauses["measure:1.2"].title == "Share records"
    assert clauses["measure:2.1"].parent_key == "commitment:2"
    assert clauses["measure:1.1"].parent_key == "commitment:1"
    # Deeper sub-headings stay in the body, and so does a same-level heading inside a commitment.
    assert clauses["measure:1.1"].body.startswith("Keep them.")
    assert "##### Key Performance Indicators" in clauses["measure:1.1"].body
    # A drafters' note is not the measure's text: it is attached beside it.
    assert "Summary of changes" not in clauses["measure:1.1"].body
    assert [(n.title, n.body) for n in clauses["measure:1.1"].notes] == [("Summary of changes", "Nothing changed.")]
    assert "<!--" not in "".join(c.body for c in document.clauses())
    assert "### Why" in clauses["section:opening-statement"].body
    # The heading line itself is not in the body; line numbers are 1-based heading lines.
    assert "Commitment 1" not in clauses["commitment:1"].body
    assert SMALL_CODE.split("\n")[clauses["commitment:1"].line - 1] == "### Commitment 1. Documentation"
    assert clauses["glossary:glossary"].kind == "glossary"
    assert document.count("measure") == 3 and document.count("commitment") == 2
    assert set(c.kind for c in document.clauses()) <= set(CLAUSE_KINDS)
    assert_no_text_lost(SMALL_CODE, document)


def test_commitments_at_top_level_make_one_chapter() -> None:
    text = "# Code\n\n## Objectives\n\nObj.\n\n## Commitment 1 Safety\n\nC1.\n\n### Measure 1.1 Framework\n\nM.\n"
    document = parse_markdown(text)
    assert len(document.chapters) == 1
    assert [c.key for c in document.clauses()] == ["section:objectives", "commitment:1", "measure:1.1"]


def test_weird_headings() -> None:
    text = "\n".join(
        [
            "# **Code** #",
            "## **Commitment II.3: Risk**",
            "Risk text.",
            "#hashtag is not a heading",
            "```",
            "# inside a fence, not a heading",
            "```",
            "### Measure II.3.1",
            "Untitled measure.",
            "### Measure II.3.2 — Dash title ###",
            "Dashed.",
            "### Explanation of changes to Measure II.3.2",
            "Explained.",
            "## Article 5(1) is not an article heading",
            "Text.",
            "#",
            "Empty heading above.",
        ]
    )
    document = parse_markdown(text)
    assert document.title == "Code"
    clauses = {c.key: c for c in document.clauses()}
    assert clauses["commitment:II.3"].title == "Risk"
    assert "#hashtag is not a heading" in clauses["commitment:II.3"].body
    assert "# inside a fence, not a heading" in clauses["commitment:II.3"].body
    assert clauses["measure:II.3.1"].title == ""
    assert clauses["measure:II.3.2"].title == "Dash title"
    assert clauses["measure:II.3.2"].body == "Dashed."
    assert [n.title for n in clauses["measure:II.3.2"].notes] == ["Explanation of changes to Measure II.3.2"]
    assert document.count("article") == 0
    assert "section:article-5-1-is-not-an-article-heading" in clauses
    assert_no_text_lost(text, document)


def test_empty_and_blank_documents_have_no_chapters() -> None:
    for text in ("", "\n\n   \n", "\ufeff"):
        document = parse_markdown(text)
        assert document.chapters == ()
        assert document.title == ""
        assert list(document.clauses()) == []


def test_document_without_headings_is_one_section() -> None:
    text = "First paragraph.\n\nSecond paragraph.\n"
    document = parse_markdown(text)
    clauses = list(document.clauses())
    assert len(document.chapters) == 1 and len(clauses) == 1
    assert clauses[0].kind == "section"
    assert clauses[0].body == "First paragraph.\n\nSecond paragraph."
    assert clauses[0].line == 1


def test_crlf_and_lf_parse_alike() -> None:
    lf = parse_markdown(SMALL_CODE)
    crlf = parse_markdown(SMALL_CODE.replace("\n", "\r\n"))
    cr = parse_markdown(SMALL_CODE.replace("\n", "\r"))
    assert crlf == lf
    assert cr == lf
    assert all("\r" not in c.body for c in crlf.clauses())


def test_emoji_and_non_latin_titles() -> None:
    text = (
        "# Kodex 🚀\n\n## Commitment 1. Sicherheit 🔒 für alle\n\nText mit Emoji 😀.\n\n"
        "## Überblick 🌍\n\nΚείμενο.\n\n## 🎉\n\nParty.\n"
    )
    document = parse_markdown(text)
    assert document.title == "Kodex 🚀"
    clauses = {c.key: c for c in document.clauses()}
    assert clauses["commitment:1"].title == "Sicherheit 🔒 für alle"
    assert clauses["commitment:1"].body == "Text mit Emoji 😀."
    assert "section:überblick" in clauses
    assert "section:untitled" in clauses  # a heading of emoji only still gets a key
    assert_no_text_lost(text, document)


def test_repeated_keys_get_suffixes_and_repeated_commitment_counts_once() -> None:
    text = "\n".join(
        [
            "# Code",
            "## Summary",
            "### Commitment 1. Safety",
            "Short summary.",
            "## Full text",
            "## Whereas:",
            "First recitals.",
            "## Whereas:",
            "Second recitals.",
            "### Commitment 1 Safety",
            "The full commitment.",
            "#### Measure 1.1 Do it",
            "Do it well.",
        ]
    )
    document = parse_markdown(text)
    assert document.count("commitment") == 1
    commitment = next(c for c in document.clauses() if c.kind == "commitment")
    assert commitment.body == "The full commitment."
    summary = next(c for c in document.clauses() if c.key == "section:summary")
    assert "### Commitment 1. Safety" in summary.body and "Short summary." in summary.body
    keys = [c.key for c in document.clauses()]
    assert "section:whereas" in keys and "section:whereas#2" in keys
    assert [c.key for c in document.chapters][-2:] == ["chapter:whereas", "chapter:whereas#2"]
    assert len(keys) == len(set(keys))
    assert any("repeated" in w for w in document.warnings)
    assert_no_text_lost(text, document)


def test_measure_without_commitment_is_warned_about() -> None:
    document = parse_markdown("# C\n\n## Measure 3.1 Alone\n\nText.\n")
    assert next(document.clauses()).parent_key is None
    assert any("measure 3.1 has no commitment" in w for w in document.warnings)


def test_regulation_shape_on_a_small_act() -> None:
    text = "\n".join(
        [
            "# REGULATION X",
            "# of 1 May 2030",
            "THE PARLIAMENT,",
            "Whereas:",
            "(1) First recital.",
            "(2) Second recital.",
            "Continued second recital.",
            "HAVE ADOPTED THIS REGULATION:",
            "## CHAPTER I: GENERAL",
            "### SECTION 1: Scope",
            "#### Article 1: Subject matter",
            "1. Text.",
            "#### Article 2: Definitions",
            "Defs.",
            "Done at Brussels, 1 May 2030.",
            "(1) OJ C 1, a footnote.",
            "# ANNEX I",
            "**List of things**",
            "## Section A. Things",
            "Thing.",
        ]
    )
    document = parse_markdown(text)
    assert [c.title for c in document.chapters] == ["Recitals", "GENERAL", "Annexes"]
    clauses = {c.key: c for c in document.clauses()}
    assert document.count("recital") == 2
    assert clauses["recital:2"].body == "Second recital.\nContinued second recital."
    assert "# of 1 May 2030" in clauses["section:preamble"].body
    assert clauses["article:1"].parent_key == "section:I.1"
    assert clauses["article:2"].body == "Defs."
    assert "(1) OJ C 1, a footnote." in clauses["section:done-at-brussels-1-may-2030"].body
    assert clauses["annex:I"].title == "List of things"
    assert "## Section A. Things" in clauses["annex:I"].body
    assert_no_text_lost(text, document)


def test_progress_is_reported_up_to_the_total() -> None:
    calls: list[tuple[int, int]] = []
    text = "".join(f"## Heading {i}\n\nLine {i}\n\n" for i in range(600))
    parse_markdown(text, progress=lambda done, total: calls.append((done, total)))
    total = len(text.split("\n")) - 1
    assert calls[-1] == (total, total)
    assert len(calls) >= 3
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


# --- the real corpus -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "index_key", "commitments", "measures"),
    [
        (DRAFT3, "gpai_cop_draft3_2025_03_11", 18, 71),
        (DRAFT2, "gpai_cop_draft2_2024_12_19", 21, 65),
        (FINAL_SAFETY, "gpai_cop_final_2025_07_10_safety_security", 10, 32),
    ],
)
def test_code_drafts_match_the_structure_index(name: str, index_key: str, commitments: int, measures: int) -> None:
    document = parse_markdown(read_corpus(name))
    expected = corpus_index()[index_key]
    assert document.count("commitment") == commitments == expected["n_commitments"]
    assert document.count("measure") == measures == expected["n_measures"]
    parsed_commitments = [(c.number, c.title) for c in document.clauses() if c.kind == "commitment"]
    assert parsed_commitments == [(c["id"], c["title"]) for c in expected["commitments"]]
    parsed_measures = [(c.number, c.title) for c in document.clauses() if c.kind == "measure"]
    assert parsed_measures == [(m["id"], m["title"]) for c in expected["commitments"] for m in c["measures"]]
    clauses = {c.key: c for c in document.clauses()}
    for measure in (c for c in clauses.values() if c.kind == "measure"):
        parent = clauses[measure.parent_key or ""]
        assert parent.kind == "commitment" and measure.number.startswith(parent.number + ".")


def test_draft3_summary_list_is_text_and_full_commitment_wins() -> None:
    document = parse_markdown(read_corpus(DRAFT3))
    clauses = {c.key: c for c in document.clauses()}
    documentation = clauses["commitment:I.1"]
    assert documentation.line == 232  # "### Commitment I.1 Documentation", not the summary at 103
    assert "#### LEGAL TEXT" in documentation.body
    summary = clauses["section:i-commitments-by-providers-of-general-purpose-ai-models"]
    assert "#### Commitment I.1. Documentation" in summary.body
    assert sum("is repeated" in w for w in document.warnings) == 18
    measure = clauses["measure:II.4.1"]
    assert "Summary of changes" not in measure.body
    assert [n.title for n in measure.notes] == ["Summary of changes from the second draft"]
    assert document.count("glossary") == 1


def test_ai_act_matches_the_structure_index_quickly() -> None:
    text = read_corpus(AI_ACT)
    started = time.perf_counter()
    document = parse_markdown(text)
    elapsed = time.perf_counter() - started
    print(f"AI Act ({len(text) // 1024} KB) parsed in {elapsed:.3f} s")
    assert elapsed < 30.0  # bounded; a backtracking pattern once took minutes here
    expected = corpus_index()["eu_ai_act_2024_1689"]
    assert document.count("article") == 113 == expected["n_articles"]
    assert document.count("annex") == 13 == expected["n_annexes"]
    assert document.count("recital") == 180 == expected["n_recitals"]
    articles = [(c.number, c.title) for c in document.clauses() if c.kind == "article"]
    assert articles == [(a["id"], a["title"]) for a in expected["articles"]]
    annexes = [(f"ANNEX {c.number}", c.title) for c in document.clauses() if c.kind == "annex"]
    assert annexes == [(a["id"], a["title"]) for a in expected["annexes"]]
    recitals = [c.number for c in document.clauses() if c.kind == "recital"]
    assert recitals == [str(n) for n in range(1, 181)]
    act_chapters = [c for c in document.chapters if c.number]
    assert len(act_chapters) == 13 == expected["n_chapters"]
    assert [f"CHAPTER {c.number}: {c.title}" for c in act_chapters] == expected["chapters"]
    assert document.chapters[0].title == "Recitals" and document.chapters[-1].title == "Annexes"
    assert all(c.kind == "annex" for c in document.chapters[-1].clauses)
    clauses = {c.key: c for c in document.clauses()}
    assert clauses["article:6"].parent_key == "section:III.1"
    assert clauses["article:5"].parent_key is None
    assert clauses["recital:1"].body.startswith("The purpose of this Regulation")
    assert len(clauses) == len(list(document.clauses()))


@pytest.mark.parametrize("name", [DRAFT2, DRAFT3, FINAL_SAFETY, AI_ACT])
def test_no_text_is_lost_and_keys_are_unique(name: str) -> None:
    text = read_corpus(name)
    document = parse_markdown(text)
    assert_no_text_lost(text, document)
    keys = [c.key for c in document.clauses()]
    assert len(keys) == len(set(keys))
    chapter_keys = [c.key for c in document.chapters]
    assert len(chapter_keys) == len(set(chapter_keys))
    assert parse_markdown(text) == document  # deterministic
