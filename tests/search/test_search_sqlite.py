"""The SQLite FTS5 backend past its exact-count limit: totals and facets estimated from a
sample (and said to be), hits still only what the searcher may see, clauses still ranked."""

from __future__ import annotations

from pathlib import Path

import pytest

from codedraft.search import sqlite_backend
from codedraft.search.engine import SearchDocument, SearchFilters, SearchQuery
from codedraft.search.sqlite_backend import SqliteSearchEngine


@pytest.fixture
def crowded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteSearchEngine:
    """400 comments about risk (a quarter of them in another code), one clause; limits small
    enough that "risk" is estimated."""
    monkeypatch.setattr(sqlite_backend, "EXACT_LIMIT", 50)
    monkeypatch.setattr(sqlite_backend, "MIN_SAMPLE", 100)
    monkeypatch.setattr(sqlite_backend, "RANK_WINDOW", 40)
    engine = SqliteSearchEngine(tmp_path / "ix")
    docs = [SearchDocument(doc_id="clause:a:live", kind="clause", code_id=1, body="Systemic risk risk risk assessment.",
                           visibility=["code:1"], clause_title="Risk")]
    docs += [
        SearchDocument(doc_id=f"comment:{n}", kind="comment", code_id=2 if n % 4 == 0 else 1,
                       body=f"A remark on risk number {n}.", visibility=["code:2" if n % 4 == 0 else "code:1"],
                       category="academia" if n % 2 else "industry")
        for n in range(400)
    ]
    engine.rebuild(docs)
    yield engine
    engine.close()


def test_a_common_word_is_estimated_and_says_so(crowded: SqliteSearchEngine) -> None:
    results = crowded.search(SearchQuery("risk", ["code:1"], per_page=20))
    assert results.estimated
    assert 250 <= results.total <= 350  # 301 visible
    assert sum(results.facets["kind"].values()) == pytest.approx(results.total, rel=0.2)
    assert all(hit.fields["code_id"] == 1 for hit in results.hits) and len(results.hits) == 20
    # The clause is ranked with everything else, not left out of the window of newest comments.
    assert results.hits[0].doc_id == "clause:a:live"
    assert "<mark>" in results.hits[0].snippet


def test_filters_and_visibility_apply_to_the_estimate(crowded: SqliteSearchEngine) -> None:
    results = crowded.search(SearchQuery("risk", ["code:1"], filters=SearchFilters(category="academia")))
    assert results.estimated and 150 <= results.total <= 250  # 200 academia comments, all in code 1
    assert set(results.facets["category"]) == {"academia"}
    assert {hit.fields["category"] for hit in results.hits} == {"academia"}
    none = crowded.search(SearchQuery("risk", ["code:9"]))
    assert none.total == 0 and none.hits == ()


def test_a_rare_word_is_counted_exactly(crowded: SqliteSearchEngine) -> None:
    results = crowded.search(SearchQuery("systemic", ["code:1"]))
    assert not results.estimated and results.total == 1
