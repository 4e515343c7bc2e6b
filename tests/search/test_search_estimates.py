"""Past their exact-count limit (SQLite FTS5 and PostgreSQL): totals and facets estimated
from a sample (and said to be), hits still only what the searcher may see, clauses still
ranked first when they match best. Whoosh counts every match and is not tested here."""

from __future__ import annotations

import datetime as dt

import pytest

from codedraft.search import postgres_backend, sqlite_backend
from codedraft.search.engine import SearchDocument, SearchEngine, SearchFilters, SearchQuery


@pytest.fixture
def crowded(index_site, monkeypatch: pytest.MonkeyPatch) -> SearchEngine:
    """400 comments about risk (a quarter of them in another code), one clause; limits small
    enough that "risk" is estimated."""
    if index_site.backend == "whoosh":
        pytest.skip("Whoosh counts every match")
    for module in (sqlite_backend, postgres_backend):
        monkeypatch.setattr(module, "EXACT_LIMIT", 50)
        monkeypatch.setattr(module, "RANK_WINDOW", 40)
    monkeypatch.setattr(sqlite_backend, "MIN_SAMPLE", 100)
    monkeypatch.setattr(postgres_backend, "FIRST_SAMPLE_PERCENT", 100.0)  # a table of a few pages
    engine = index_site.open()
    docs = [SearchDocument(doc_id="clause:a:live", kind="clause", code_id=1, body="Systemic risk risk risk assessment.",
                           visibility=["code:1"], clause_title="Risk")]
    docs += [
        SearchDocument(doc_id=f"comment:{n}", kind="comment", code_id=2 if n % 4 == 0 else 1,
                       body=f"A remark on risk number {n}.", visibility=["code:2" if n % 4 == 0 else "code:1"],
                       category="academia" if n % 2 else "industry",
                       created=dt.datetime(2025, 1, 1) + dt.timedelta(hours=n))
        for n in range(400)
    ]
    engine.rebuild(docs)
    return engine


def test_a_common_word_is_estimated_and_says_so(crowded: SearchEngine) -> None:
    results = crowded.search(SearchQuery("risk", ["code:1"], per_page=20))
    assert results.estimated
    assert 200 <= results.total <= 400  # 301 visible
    assert sum(results.facets["kind"].values()) == pytest.approx(results.total, rel=0.1)
    assert all(hit.fields["code_id"] == 1 for hit in results.hits) and len(results.hits) == 20
    # The clause is ranked with everything else, not left out of the window of newest comments.
    assert results.hits[0].doc_id == "clause:a:live"
    assert "<mark>" in results.hits[0].snippet


def test_filters_and_visibility_apply_to_the_estimate(crowded: SearchEngine) -> None:
    results = crowded.search(SearchQuery("risk", ["code:1"], filters=SearchFilters(category="academia")))
    assert results.estimated and 120 <= results.total <= 280  # 200 academia comments, all in code 1
    assert set(results.facets["category"]) == {"academia"}
    assert {hit.fields["category"] for hit in results.hits} == {"academia"}
    none = crowded.search(SearchQuery("risk", ["code:9"]))
    assert none.total == 0 and none.hits == ()


def test_a_rare_word_is_counted_exactly(crowded: SearchEngine) -> None:
    results = crowded.search(SearchQuery("systemic", ["code:1"]))
    assert not results.estimated and results.total == 1


def test_a_long_prefix_is_estimated_like_the_word_it_stands_for(crowded: SearchEngine) -> None:
    # FTS5 samples a prefix past its prefix index in one statement, a word in one per window:
    # the same rows either way, so the same estimate, facets and visible hits.
    word = crowded.search(SearchQuery("remark", ["code:1"], per_page=20))
    prefix = crowded.search(SearchQuery("remar*", ["code:1"], per_page=20))
    assert prefix.estimated and word.estimated
    assert prefix.total == word.total and prefix.facets == word.facets
    assert all(hit.fields["code_id"] == 1 for hit in prefix.hits) and len(prefix.hits) == 20
    filtered = crowded.search(SearchQuery("remar*", ["code:1"], filters=SearchFilters(category="academia")))
    assert set(filtered.facets["category"]) == {"academia"}
