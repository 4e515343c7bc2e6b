"""Both backends on the real corpus: drafts 2 and 3 and the final chapter (code 1), the AI Act (code 2)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from codedraft.search.engine import SearchDocument, SearchFilters, SearchQuery

Ask = Callable[..., SearchQuery]


def test_corpus_is_indexed_completely(corpus_index) -> None:
    expected = {doc.doc_id for doc in corpus_index.documents}
    assert len(expected) == len(corpus_index.documents) > 400
    assert corpus_index.engine.count() == len(expected)
    assert corpus_index.engine.doc_ids() == expected
    assert corpus_index.build_seconds < 300  # bounded; build speed is bench/search_bench.py's


def test_systemic_risk_is_found_in_draft_3(corpus_index, ask: Ask) -> None:
    results = corpus_index.engine.search(ask('"systemic risk"', filters=SearchFilters(draft="3")))
    assert results.total > 50
    assert all(hit.fields["draft"] == "3" for hit in results.hits)
    assert all("<mark>" in hit.snippet for hit in results.hits)
    unfiltered = corpus_index.engine.search(ask('"systemic risk"'))
    assert unfiltered.facets["draft"]["3"] == results.total


@pytest.mark.parametrize(
    ("phrase", "draft"),
    [
        ('"copyright-related overfitting"', "2"),
        ('"non-retaliation protections"', "3"),
        ('"Key Performance Indicator"', "2"),
    ],
)
def test_phrase_only_in_one_draft_is_attributed_to_it(corpus_index, ask: Ask, phrase: str, draft: str) -> None:
    results = corpus_index.engine.search(ask(phrase))
    assert results.total >= 1
    assert {hit.fields["draft"] for hit in results.hits} == {draft}
    assert set(results.facets["draft"]) == {draft}


@pytest.mark.parametrize("typed", ["evaluat*", "nationa*", "transparancy~", "celine", "CÉLINE"])
def test_prefix_fuzzy_and_folded_words_find_corpus_text(corpus_index, ask: Ask, typed: str) -> None:
    assert corpus_index.engine.search(ask(typed)).total > 0


def test_ai_act_is_invisible_to_code_1_readers(corpus_index, ask: Ask) -> None:
    engine = corpus_index.engine
    act_chapters = {d.chapter for d in corpus_index.documents if d.code_id == 2} - {
        d.chapter for d in corpus_index.documents if d.code_id == 1
    }
    for text in ['"high-risk AI system"', "market surveillance authority", "Article", "notified bod*"]:
        visible = engine.search(ask(text, allowed=["code:1"], per_page=100))
        assert all(hit.fields["code_id"] == 1 for hit in visible.hits)
        assert not set(visible.facets["chapter"]) & act_chapters
    act = engine.search(ask('"high-risk AI system"', allowed=["code:2"]))
    assert act.total > 10 and all(hit.fields["code_id"] == 2 for hit in act.hits)


SECURITY_CASE_21 = [
    "(",
    '"',
    "title:",
    "nofield:x",
    "url: x",
    "*",
    "a*",
    "AND OR NOT",
    "x" * 10_000,
    "s*",
    "th?",
    "pro*",
    "a* b* c* d* e* f* g* h*",
    "risk~3 " * 40,
    '"' * 501,
]


@pytest.mark.parametrize("typed", SECURITY_CASE_21)
def test_hostile_queries_return_within_a_second_on_the_corpus(corpus_index, ask: Ask, typed: str) -> None:
    started = time.perf_counter()
    results = corpus_index.engine.search(ask(typed, allowed=["code:1", "code:2"]))
    # Bounded, not fast: the speed of queries is bench/search_bench.py's to measure.
    assert time.perf_counter() - started < 15.0
    assert results.total >= len(results.hits)


def test_grouping_spans_drafts_on_the_corpus(corpus_index, ask: Ask) -> None:
    results = corpus_index.engine.search(ask('"serious incident"', group_by_clause=True))
    assert results.total_groups > 0
    assert all(len({h.fields["clause_uid"] for h in g.hits}) == 1 for g in results.groups)


def test_rebuild_restores_the_same_doc_ids(corpus_index, make_document) -> None:
    engine = corpus_index.engine
    expected = engine.doc_ids()
    engine.index([make_document("comment:stale", kind="comment", body="stale")])
    engine.delete([corpus_index.documents[0].doc_id])
    assert engine.doc_ids() != expected
    seen: list[tuple[int, int | None]] = []
    count = engine.rebuild(list(corpus_index.documents), progress=lambda done, total: seen.append((done, total)))
    assert count == len(expected)
    assert engine.doc_ids() == expected
    assert seen[0] == (0, len(expected)) and seen[-1] == (len(expected), len(expected))


def test_rebuild_accepts_a_generator(engine, corpus_documents: list[SearchDocument]) -> None:
    totals: list[int | None] = []
    engine.rebuild((d for d in corpus_documents[:50]), progress=lambda done, total: totals.append(total))
    assert engine.count() == 50 and set(totals) == {None}
