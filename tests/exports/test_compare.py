"""Clause-by-clause comparison and the word-level diff."""

from __future__ import annotations

import time

import pytest

from codedraft.exports.compare import (
    ClauseStatus,
    DiffOp,
    compare_documents,
    diff_words,
    tokenize_words,
)


def _old_text(segments) -> str:
    return "".join(s.text for s in segments if s.op is not DiffOp.INSERT)


def _new_text(segments) -> str:
    return "".join(s.text for s in segments if s.op is not DiffOp.DELETE)


@pytest.mark.parametrize(
    "old, new",
    [
        ("Signatories shall keep documentation.", "Signatories shall keep up-to-date documentation."),
        ("", "A new measure."),
        ("An old measure.", ""),
        ("Emoji 👩‍👩‍👧 and café (NFC)\r\nline", "Emoji 👩‍👩‍👧‍👦 and cafe\u0301 (NFD)\nline"),
        ("same", "same"),
    ],
)
def test_word_diff_reproduces_both_texts(old: str, new: str) -> None:
    segments = diff_words(old, new)
    assert _old_text(segments) == old
    assert _new_text(segments) == new


def test_word_diff_never_splits_a_word() -> None:
    segments = diff_words("The provider shall assess systemic risks.", "The providers shall reassess systemic risk.")
    changed = [s.text.strip() for s in segments if s.op is not DiffOp.EQUAL]
    # Whole words change, never "provider" -> "provider"+"s".
    assert "providers" in " ".join(changed)
    assert all(not text or text[0].isalnum() or not text[0].isspace() for text in changed)
    assert "s" not in changed and "re" not in changed


def test_tokenizer_round_trips_text() -> None:
    text = "Measure II.1.2:  keep\n\n  records — don't stop; state-of-the-art 😀"
    assert "".join(tokenize_words(text)) == text


def test_compare_classifies_every_kind_of_change(make_clause, make_document) -> None:
    old = make_document(
        (
            "transparency",
            [
                make_clause("keep", number="1.1", title="Keep records", position=0),
                make_clause("drop", number="1.2", title="Dropped", position=1),
                make_clause("renum", number="1.3", title="Renumbered", position=2),
                make_clause("wander", number="1.4", title="Wanders", position=3),
            ],
        ),
        ("copyright", [make_clause("retitle", number="2.1", title="Old title", chapter_key="copyright")]),
        label="Second Draft",
    )
    new = make_document(
        (
            "transparency",
            [
                make_clause(
                    "keep",
                    number="1.1",
                    title="Keep records",
                    body_markdown="Signatories shall keep full documentation.",
                ),
                make_clause("renum", number="1.2", title="Renumbered"),
                make_clause("fresh", number="1.3", title="Fresh"),
            ],
        ),
        (
            "copyright",
            [
                make_clause("retitle", number="2.1", title="New title", chapter_key="copyright"),
                make_clause("wander", number="2.2", title="Wanders", chapter_key="copyright"),
            ],
        ),
        label="Third Draft",
    )
    comparison = compare_documents(old, new)
    by_uid = {c.uid: c for c in comparison.clauses}
    assert [c.uid for c in comparison.added] == ["fresh"]
    assert [c.uid for c in comparison.removed] == ["drop"]
    assert {c.uid for c in comparison.moved} == {"wander"}
    assert {c.uid for c in comparison.renumbered} == {"renum", "wander"}
    assert [c.uid for c in comparison.retitled] == ["retitle"]
    assert [c.uid for c in comparison.text_changed] == ["keep"]
    assert by_uid["keep"].status is ClauseStatus.CHANGED
    inserted = [s.text for s in by_uid["keep"].body_diff if s.op is DiffOp.INSERT]
    assert inserted == ["full "]
    # The removed clause stays where it was in the old draft: after "keep".
    order = [c.uid for c in comparison.clauses]
    assert order.index("drop") == order.index("keep") + 1


def test_inserting_a_clause_does_not_mark_later_clauses_moved(make_clause, make_document) -> None:
    clauses = [make_clause(f"c{i}", number=str(i)) for i in range(6)]
    old = make_document(("ch", clauses))
    new = make_document(("ch", [clauses[0], make_clause("new"), *clauses[1:]]))
    comparison = compare_documents(old, new)
    assert comparison.moved == []
    swapped = make_document(("ch", [clauses[0], clauses[2], clauses[1], *clauses[3:]]))
    assert len(compare_documents(old, swapped).moved) == 1


def test_unchanged_documents_compare_as_unchanged(draft3) -> None:
    comparison = compare_documents(draft3, draft3)
    assert comparison.changed == []
    assert all(c.status is ClauseStatus.UNCHANGED for c in comparison.clauses)


def test_comparing_real_drafts_is_fast_and_exact(draft2, draft3) -> None:
    started = time.perf_counter()
    comparison = compare_documents(draft2, draft3)
    elapsed = time.perf_counter() - started
    print(
        f"\ncompare draft 2 -> 3: {elapsed:.3f} s, {len(comparison.clauses)} clauses, {len(comparison.changed)} changed"
    )
    matched = [c for c in comparison.clauses if c.old is not None and c.new is not None]
    assert len(matched) >= 20  # the test splitter's uids match a good share of clauses
    for clause in matched:
        assert _old_text(clause.body_diff) == clause.old.body_markdown
        assert _new_text(clause.body_diff) == clause.new.body_markdown


def test_timeout_bounds_a_pathological_clause() -> None:
    old = " ".join(f"w{i}" for i in range(20000))
    new = " ".join(f"w{i}" for i in range(19999, -1, -1))
    started = time.perf_counter()
    segments = diff_words(old, new, timeout=0.05)
    # Bounded by the timeout, not by the machine: without it this diff runs for minutes.
    assert time.perf_counter() - started < 30.0
    assert _old_text(segments) == old and _new_text(segments) == new
