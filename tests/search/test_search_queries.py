"""Query behaviour of both search backends (Whoosh and PostgreSQL) on small hand-made documents."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest

from codedraft.search.engine import (
    MESSAGE_NO_ACCESS,
    MESSAGE_TIME_LIMIT,
    MESSAGE_TOO_MANY_EXPANSIONS,
    MESSAGE_UNAVAILABLE,
    MESSAGE_UNPARSABLE,
    SearchEngine,
    SearchFilters,
    SearchQuery,
    SearchResults,
)
from codedraft.search.postgres_backend import PostgresSearchEngine
from codedraft.search.whoosh_backend import WhooshSearchEngine

Ask = Callable[..., SearchQuery]


def ids(results: SearchResults) -> set[str]:
    return {hit.doc_id for hit in results.hits}


def test_phrase_with_negation_matches_only_the_negative_clause(
    engine: SearchEngine, make_document, ask: Ask
) -> None:
    engine.index(
        [
            make_document("clause:neg:live", body="The provider shall not apply the exemption."),
            make_document("clause:pos:live", body="The provider shall apply the exemption."),
        ]
    )
    assert ids(engine.search(ask('"shall not apply"'))) == {"clause:neg:live"}
    assert ids(engine.search(ask('"shall apply"'))) == {"clause:pos:live"}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("securite", "la sécurité des modèles"),
        ("lodz", "an office in Łódź"),
        ("zolc", "gorzka żółć"),
        ("Sécurité", "la securite des modeles"),
        ("strasse", "die Straße 1"),
    ],
)
def test_accents_are_folded_both_ways(
    engine: SearchEngine, make_document, ask: Ask, typed: str, stored: str
) -> None:
    engine.index(
        [
            make_document("comment:1", kind="comment", body=stored),
            make_document("comment:2", kind="comment", body="unrelated"),
        ]
    )
    assert ids(engine.search(ask(typed))) == {"comment:1"}


def test_prefix_fuzzy_and_stemming(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index(
        [
            make_document("clause:a:live", body="Providers shall evaluate national measures on transparency."),
            make_document("clause:b:live", body="Evaluations were published."),
            make_document("clause:c:live", body="Nothing relevant here."),
        ]
    )
    assert ids(engine.search(ask("evaluat*"))) == {"clause:a:live", "clause:b:live"}
    assert ids(engine.search(ask("nationa*"))) == {"clause:a:live"}
    assert ids(engine.search(ask("transparancy~"))) == {"clause:a:live"}
    assert ids(engine.search(ask("evaluation"))) == {"clause:a:live", "clause:b:live"}  # stemmed


def test_snippets_escape_html_and_mark_matches(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index([make_document("comment:1", kind="comment", body='<script>alert("x")</script> systemic risk & more')])
    hit = engine.search(ask("systemic")).hits[0]
    assert "<script" not in hit.snippet
    assert "&lt;/script&gt;" in hit.snippet and "&amp; more" in hit.snippet
    assert "<mark>systemic</mark>" in hit.snippet
    assert re.sub(r"</?mark>", "", hit.snippet).count("<") == 0


def test_prefix_matches_are_highlighted_in_every_form(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index([make_document("clause:a:live", body="We evaluate, then the evaluation is published.")])
    snippet = engine.search(ask("evaluat*")).hits[0].snippet
    assert "<mark>evaluate</mark>" in snippet and "<mark>evaluation</mark>" in snippet


def test_boolean_operators(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index(
        [
            make_document("clause:a:live", body="copyright policy"),
            make_document("clause:b:live", body="safety policy"),
            make_document("clause:c:live", body="copyright complaints"),
        ]
    )
    assert ids(engine.search(ask("copyright AND policy"))) == {"clause:a:live"}
    assert ids(engine.search(ask("safety OR complaints"))) == {"clause:b:live", "clause:c:live"}
    assert ids(engine.search(ask("policy NOT copyright"))) == {"clause:b:live"}


def test_only_whitelisted_fields_can_be_typed(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index(
        [
            make_document(
                "comment:1",
                kind="comment",
                body="first",
                status="accepted",
                author="Zoë Kowalska",
                category="academia",
                chapter="Safety and Security",
            ),
            make_document("clause:x:live", body="second doc_id visibility", chapter="Copyright"),
            make_document("comment:2", kind="comment", body="hidden", visibility=["code:2"]),
        ]
    )
    assert ids(engine.search(ask("kind:comment"))) == {"comment:1"}
    assert ids(engine.search(ask("status:Accepted"))) == {"comment:1"}
    assert ids(engine.search(ask("author:zoe"))) == {"comment:1"}
    assert ids(engine.search(ask("category:academia"))) == {"comment:1"}
    assert ids(engine.search(ask('chapter:"safety and security"'))) == {"comment:1"}
    # Schema fields that are not whitelisted are plain words, never field searches.
    assert ids(engine.search(ask("visibility:code:2"))) == set()
    assert ids(engine.search(ask("doc_id:comment"))) == set()
    assert ids(engine.search(ask("doc_id visibility"))) == {"clause:x:live"}


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
    ")(",
    '"systemic',
    "chapter:",
    "*:*",
    "[a TO z]",
    "risk~99",
    "?",
    "a?*",
    "NOT",
    "\x00\x01",
]


@pytest.mark.parametrize("typed", SECURITY_CASE_21)
def test_hostile_queries_never_raise(engine: SearchEngine, make_document, ask: Ask, typed: str) -> None:
    engine.index([make_document("clause:a:live", body="a systemic risk clause about x and url")])
    results = engine.search(ask(typed))
    assert isinstance(results, SearchResults)
    assert results.total == len(results.hits)


# Classes of input that reached the "unavailable" guard before (a parser's RecursionError, a
# string where a date belongs) and their neighbours: each must be answered, never be a fault.
HOSTILE_CLASSES = [
    "(" * 200 + "risk" + ")" * 200,  # deeper than Python's stack, in the shared parser
    "(" * 21 + "risk" + ")" * 21,
    "(" * 500,
    ")" * 500,
    "NOT " * 120 + "risk",
    "NOT " * 119 + "risk",
    "(risk OR (policy OR (" * 7 + "x" + ")))" * 7,
    "risk\x00policy",
    "\x00",
    '"""',
    'risk "',
    "chapter: risk",
    "kind:",
    ":risk",
    "'; DROP TABLE search_document; --",
    "risk' OR '1'='1",
    "1; SELECT pg_sleep(10)",
    "%%risk%% ri_k \\ $$ E'\\x00'",
    "risk & policy | !risk <-> policy:A",
    "risk:*",
    "🙂 𝔯𝔦𝔰𝔨 ﬁnance İstanbul ß \u202e risk",
    "zobowiązań* é* ???* *risk ?isk",
    "a~ b~ c~ d~ e~ f~ g~ h~ i~",
    " ".join(f"w{n}*" for n in range(50)),
    " OR ".join(["risk"] * 120),
    "x" * 10_000,
    "a " * 3000,
]


@pytest.mark.parametrize("typed", HOSTILE_CLASSES)
def test_hostile_queries_are_answered_not_reported_unavailable(
    engine: SearchEngine, make_document, ask: Ask, typed: str
) -> None:
    engine.index([make_document("clause:a:live", body="risk policy zobowiązanie \\ % _ ' \"")])
    results = engine.search(ask(typed))
    assert MESSAGE_UNAVAILABLE not in (results.message or "")
    assert results.total >= len(results.hits)


def test_nesting_past_the_limit_searches_the_words_literally(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index([make_document("clause:a:live", body="risk policy")])
    deep = engine.search(ask("(" * 200 + "risk" + ")" * 200))
    assert ids(deep) == {"clause:a:live"}
    # Whoosh's own parser reads 200 levels; the parser of FTS5 and PostgreSQL gives up past 20.
    assert deep.message == (None if isinstance(engine, WhooshSearchEngine) else MESSAGE_UNPARSABLE)
    shallow = engine.search(ask("((risk) policy)"))
    assert shallow.message is None and ids(shallow) == {"clause:a:live"}


def test_a_filter_that_is_not_a_date_sets_no_bound(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index([make_document("comment:1", kind="comment", body="risk", created=dt.datetime(2024, 5, 1))])
    results = engine.search(ask("risk", filters=SearchFilters(date_from="2025-01-01", date_to=17)))  # type: ignore[arg-type]
    assert results.message is None and ids(results) == {"comment:1"}


def test_hostile_queries_get_clear_messages(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index([make_document("clause:a:live", body="and or not")])
    assert "wildcard" in (engine.search(ask("*")).message or "").lower()
    assert "3 letters" in (engine.search(ask("a*")).message or "")
    assert "too long" in (engine.search(ask("x" * 10_000)).message or "")
    literal = engine.search(ask("AND OR NOT"))
    assert literal.message == MESSAGE_UNPARSABLE and ids(literal) == {"clause:a:live"}
    assert engine.search(ask('"and or')).message == MESSAGE_UNPARSABLE
    assert engine.search(ask("(")).total == 0 and engine.search(ask("(")).message


def test_visibility_hides_hits_facets_and_snippets(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index(
        [
            make_document("clause:pub:live", body="systemic risk, public", code_id=1, chapter="Open chapter"),
            make_document(
                "clause:sec:live",
                body="systemic risk, secret plan",
                code_id=2,
                visibility=["code:2"],
                chapter="Secret chapter",
                draft="7",
            ),
            make_document(
                "comment:own", kind="comment", body="secret note", visibility=["user:17"], category="industry"
            ),
        ]
    )
    public = engine.search(ask("systemic OR secret", allowed=["code:1"]))
    assert ids(public) == {"clause:pub:live"} and public.total == 1
    assert "Secret chapter" not in public.facets["chapter"] and "7" not in public.facets["draft"]
    assert all("secret" not in h.snippet for h in public.hits)
    assert engine.search(ask("secret", allowed=["code:1"])).total == 0
    assert engine.search(ask("secret", allowed=["code:1"], group_by_clause=True)).groups == ()
    author = engine.search(ask("secret", allowed=["code:1", "user:17"]))
    assert ids(author) == {"comment:own"} and author.facets["category"] == {"industry": 1}
    nobody = engine.search(ask("systemic", allowed=[]))
    assert nobody.total == 0 and nobody.message == MESSAGE_NO_ACCESS


def test_filters_and_facets(engine: SearchEngine, make_document, ask: Ask) -> None:
    when = dt.datetime(2025, 3, 11, 9, 30)
    engine.index(
        [
            make_document("clause:a:draft:2", body="risk tiers", draft="2", chapter="Safety and Security"),
            make_document("clause:a:draft:3", body="risk tiers", draft="3", chapter="Safety and Security"),
            make_document(
                "comment:1",
                kind="comment",
                body="risk tiers are vague",
                category="academia",
                status="open",
                author="Ann Lee",
                created=when,
            ),
            make_document(
                "comment:2",
                kind="comment",
                body="risk tiers",
                category="civil-society",
                status="accepted",
                author="Bo",
                created=when + dt.timedelta(days=30),
            ),
        ]
    )
    everything = engine.search(ask("risk"))
    assert everything.facets["kind"] == {"clause": 2, "comment": 2}
    assert everything.facets["draft"] == {"live": 2, "2": 1, "3": 1}
    assert everything.facets["category"] == {"academia": 1, "civil-society": 1}
    assert everything.facets["chapter"] == {"Transparency": 2, "Safety and Security": 2}

    def only(**filters: object) -> set[str]:
        return ids(engine.search(ask("risk", filters=SearchFilters(**filters))))  # type: ignore[arg-type]

    assert only(draft="3") == {"clause:a:draft:3"}
    assert only(draft=["2", "3"], kind="clause") == {"clause:a:draft:2", "clause:a:draft:3"}
    assert only(chapter="Safety and Security") == {"clause:a:draft:2", "clause:a:draft:3"}
    assert only(category="academia") == {"comment:1"}
    assert only(status="Accepted") == {"comment:2"}
    assert only(author="Ann Lee") == {"comment:1"}
    assert only(code_id=2) == set()
    assert only(date_from=dt.date(2025, 3, 11), date_to=dt.date(2025, 3, 11)) == {"comment:1"}
    assert only(date_from=dt.datetime(2025, 4, 1, tzinfo=dt.UTC)) == {"comment:2"}
    browse = engine.search(ask("", filters=SearchFilters(kind="comment")))
    assert ids(browse) == {"comment:1", "comment:2"}
    assert engine.search(ask("")).total == 0


def test_hit_fields_are_typed(engine: SearchEngine, make_document, ask: Ask) -> None:
    when = dt.datetime(2025, 3, 11, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    engine.index([make_document("comment:1", kind="comment", body="risk", created=when, code_id=1)])
    fields = engine.search(ask("risk")).hits[0].fields
    assert fields["code_id"] == 1
    assert fields["created"] == dt.datetime(2025, 3, 11, 8, 30)
    assert "body" not in fields and "visibility" not in fields


def test_grouping_by_clause_across_drafts(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index(
        [
            make_document("clause:a:draft:2", clause_uid="a", body="serious incident", draft="2"),
            make_document("clause:a:live", clause_uid="a", body="serious incident reporting"),
            make_document("clause:a:draft:3", clause_uid="a", body="serious incident", draft="3"),
            make_document("comment:5", kind="comment", clause_uid="a", body="serious incident?"),
            make_document(
                "clause:b:live", clause_uid="b", clause_number="2.1", body="serious incident serious incident"
            ),
        ]
    )
    results = engine.search(ask("serious incident", group_by_clause=True, per_page=1))
    assert results.total == 5 and results.total_groups == 2 and len(results.groups) == 1
    both = engine.search(ask("serious incident", group_by_clause=True))
    group_a = next(g for g in both.groups if g.clause_uid == "a")
    assert [h.doc_id for h in group_a.hits] == ["clause:a:live", "clause:a:draft:3", "clause:a:draft:2", "comment:5"]


def test_paging(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index([make_document(f"comment:{i}", kind="comment", body=f"risk {i}") for i in range(25)])
    first = engine.search(ask("risk", per_page=10))
    third = engine.search(ask("risk", page=3, per_page=10))
    assert first.total == third.total == 25
    assert len(first.hits) == 10 and len(third.hits) == 5
    assert not ids(first) & ids(third)


def test_delete_count_and_doc_ids(engine: SearchEngine, make_document, ask: Ask) -> None:
    engine.index([make_document(f"comment:{i}", kind="comment", body="risk") for i in range(5)])
    engine.index([make_document("comment:0", kind="comment", body="replaced text")])  # update, not duplicate
    engine.delete(["comment:1", "comment:404"])
    assert engine.count() == 4
    assert engine.doc_ids() == {"comment:0", "comment:2", "comment:3", "comment:4"}
    assert ids(engine.search(ask("replaced"))) == {"comment:0"}
    assert engine.search(ask("risk")).total == 3


def test_searcher_sees_another_engines_commit(index_site, make_document, ask: Ask) -> None:
    reader, writer = index_site.open(), index_site.open()
    assert reader.search(ask("risk")).total == 0
    writer.index([make_document("comment:1", kind="comment", body="risk")])
    assert reader.search(ask("risk")).total == 1


def test_other_language_index_is_replaced_and_flagged(tmp_path, make_document) -> None:
    """Whoosh only: its folder belongs to one process tree, so an index made with another
    language is replaced at once. PostgreSQL keeps it (next test)."""
    english = WhooshSearchEngine(tmp_path / "ix", language="en")
    english.index([make_document("comment:1", kind="comment", body="x")])
    english.close()
    french = WhooshSearchEngine(tmp_path / "ix", language="fr")
    try:
        assert french.needs_rebuild and french.count() == 0
        assert french.rebuild([make_document("comment:2", kind="comment", body="évaluations")]) == 1
        assert not french.needs_rebuild
    finally:
        french.close()


def test_postgres_index_of_another_language_is_flagged_not_dropped(empty_pg_index, make_document, ask: Ask) -> None:
    """The shared PostgreSQL index is never emptied by one misconfigured process: it is only
    flagged until the Office rebuilds it with the new language."""
    english = PostgresSearchEngine(empty_pg_index, language="en")
    french = PostgresSearchEngine(empty_pg_index, language="fr")
    try:
        english.index([make_document("comment:1", kind="comment", body="x")])
        assert not english.needs_rebuild
        assert french.needs_rebuild and french.count() == 1
        assert french.rebuild([make_document("comment:2", kind="comment", body="Les évaluations")]) == 1
        assert not french.needs_rebuild
        assert {h.doc_id for h in french.search(ask("évaluation")).hits} == {"comment:2"}  # French stems
    finally:
        english.close()
        french.close()


def test_a_prefix_matching_too_many_words_is_capped_with_a_message(engine: SearchEngine, make_document,
                                                                     ask: Ask) -> None:
    words = [f"zebra{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(120)]  # zebraaa ... zebrado
    engine.index([make_document(f"comment:{i}", kind="comment", body=word) for i, word in enumerate(words)])
    capped = engine.search(ask("zebra*", per_page=100))
    assert capped.message == MESSAGE_TOO_MANY_EXPANSIONS.format(pattern="zebra*", limit=100)
    assert capped.total == 100  # the first 100 words in alphabetical order, each in one comment
    assert "comment:0" in ids(capped) and "comment:119" not in ids(capped)
    narrow = engine.search(ask("zebrad*"))
    assert narrow.message is None and narrow.total == 26  # zebrada..zebradz: under the cap


@pytest.mark.parametrize(
    "typed",
    ["it's", "risk:*", "risk & policy", "risk | policy", "!risk", "risk <-> policy", "'risk':A", "risk\\",
     "'); DROP TABLE search_document; --", "risk:*AB", "chapter:'x'", "kind:'); --", "(risk) & (!policy)"],
)
def test_tsquery_and_sql_syntax_typed_by_a_user_is_literal(engine: SearchEngine, make_document, ask: Ask,
                                                             typed: str) -> None:
    engine.index([make_document("clause:a:live", body="It's the risk policy.")])
    results = engine.search(ask(typed))
    assert results.message is None or "unavailable" not in results.message
    assert results.total == len(results.hits)
    assert engine.count() == 1


def test_postgres_statement_timeout_becomes_the_time_limit_message(empty_pg_index, make_document, ask: Ask) -> None:
    """PostgreSQL cancels a search past ``search_time_limit`` (statement_timeout); the user is
    told the results may be incomplete, and the next search works."""
    writer = PostgresSearchEngine(empty_pg_index)
    hasty = PostgresSearchEngine(empty_pg_index, search_time_limit=0.001)
    try:
        writer.index([make_document(f"comment:{i}", kind="comment", body=f"risk policy {i} " * 40)
                      for i in range(3000)])
        slow = hasty.search(ask('"risk policy" OR polic* OR risk~', per_page=100))
        assert slow.message == MESSAGE_TIME_LIMIT and slow.hits == ()
        assert writer.search(ask("risk")).total == 3000
    finally:
        writer.close()
        hasty.close()


@pytest.mark.parametrize(
    ("typed", "field", "searched"),
    [("tile:foo", "tile", "foo"), ("title:", "title", ""), ("nofield:x risk", "nofield", "x risk")],
)
def test_an_unknown_field_gets_a_message_naming_the_fields(
    engine: SearchEngine, make_document, ask: Ask, typed: str, field: str, searched: str
) -> None:
    engine.index([make_document("clause:a:live", body="foo x risk")])
    results = engine.search(ask(typed))
    assert results.message is not None
    assert f"“{field}:” is not a field you can search" in results.message
    assert "chapter, clause, draft, kind, category, status, author" in results.message
    # The words after the unknown name are still searched.
    assert ids(results) == ({"clause:a:live"} if searched else set())


@pytest.mark.parametrize("typed", ["chapter:", "risk status:", "(kind:) risk"])
def test_an_empty_field_gets_a_message_with_an_example(engine: SearchEngine, make_document, ask: Ask,
                                                       typed: str) -> None:
    engine.index([make_document("clause:a:live", body="risk")])
    results = engine.search(ask(typed))
    assert results.message is not None and "needs a value right after the colon" in results.message


def test_field_like_text_inside_quotes_and_urls_is_left_alone(engine: SearchEngine, make_document,
                                                             ask: Ask) -> None:
    engine.index([make_document("clause:a:live", body="see note: https://example.eu/a for details")])
    assert ids(engine.search(ask('"note: https"'))) == {"clause:a:live"}
    assert "not a field" not in (engine.search(ask("https://example.eu/a")).message or "")


def test_postgres_rebuild_leaves_no_rows_pending_in_the_word_indexes(empty_pg_index, make_document,
                                                                     ask: Ask) -> None:
    """Every scan of a GIN index reads its pending list whole: a rebuild moves what it queued
    there into the indexes proper (a second flush finds no page left to move)."""
    import psycopg

    from codedraft.search.postgres_backend import GIN_INDEXES

    engine = PostgresSearchEngine(empty_pg_index)
    try:
        engine.rebuild([make_document(f"comment:{i}", kind="comment", body=f"risk policy {i}") for i in range(300)])
        with psycopg.connect(empty_pg_index.replace("+psycopg", ""), autocommit=True) as connection:
            for index in GIN_INDEXES:
                assert connection.execute("SELECT gin_clean_pending_list(%s::regclass)", (index,)).fetchone() == (0,)
        assert engine.search(ask("polic*")).total == 300
    finally:
        engine.close()
