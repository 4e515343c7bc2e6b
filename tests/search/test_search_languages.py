"""Each code's text analysed in its own language, on every backend: a word is found through
another of its forms in Polish, German, French and English; Polish is never stemmed as English;
a query is analysed in the languages it searches. The texts are written for these tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from codedraft.search import analysis
from codedraft.search.engine import SearchDocument, SearchEngine, SearchQuery

Ask = Callable[..., SearchQuery]
MakeDocument = Callable[..., SearchDocument]

POLISH = (
    "Dostawca modelu ogólnego przeznaczenia wypełnia zobowiązanie do przejrzystości wobec "
    "Urzędu i prowadzi rejestr poważnych incydentów."
)
GERMAN = (
    "Der Anbieter erfüllt seine Verpflichtungen gegenüber dem Amt und meldet schwerwiegende "
    "Vorfälle unverzüglich."
)
FRENCH = (
    "Le fournisseur évalue les risques systémiques et publie les évaluations de sécurité "
    "avant la mise sur le marché."
)
ENGLISH = "The provider shall assess systemic risks and keep the documentation up to date."

# (code id, language, body): one code per language.
CODES = ((11, "pl", POLISH), (12, "de", GERMAN), (13, "fr", FRENCH), (14, "en", ENGLISH))


def ids(results: object) -> set[str]:
    return {hit.doc_id for hit in results.hits}  # type: ignore[attr-defined]


@pytest.fixture
def multilingual(engine: SearchEngine, make_document: MakeDocument) -> SearchEngine:
    engine.index(
        make_document(f"clause:{language}:live", code_id=code_id, body=body, language=language,
                      visibility=[f"code:{code_id}"], clause_title="")
        for code_id, language, body in CODES
    )
    return engine


EVERY_CODE = [f"code:{code_id}" for code_id, _language, _body in CODES]


@pytest.mark.parametrize(
    ("language", "other_form", "doc_id"),
    [
        ("pl", "zobowiązania", "clause:pl:live"),  # genitive of "zobowiązanie"
        ("pl", "zobowiązaniem", "clause:pl:live"),  # instrumental
        ("pl", "incydent", "clause:pl:live"),  # text has the genitive plural "incydentów"
        ("de", "Verpflichtung", "clause:de:live"),  # text has the plural
        ("de", "Vorfall", "clause:de:live"),  # text has "Vorfälle"
        ("fr", "évaluation", "clause:fr:live"),  # text has "évaluations"
        ("fr", "risque", "clause:fr:live"),
        ("en", "assessing", "clause:en:live"),
        ("en", "risk", "clause:en:live"),
    ],
)
def test_a_word_is_found_through_another_of_its_forms(
    multilingual: SearchEngine, ask: Ask, language: str, other_form: str, doc_id: str
) -> None:
    scoped = multilingual.search(ask(other_form, allowed=EVERY_CODE, languages=[language]))
    assert doc_id in ids(scoped)
    # Without naming a language the query is analysed in every language the index holds.
    assert doc_id in ids(multilingual.search(ask(other_form, allowed=EVERY_CODE)))


def test_polish_is_not_stemmed_as_english(multilingual: SearchEngine, ask: Ask) -> None:
    # The Polish code's index holds Polish lemmas: "zobowiązanie" for the text's "zobowiązanie",
    # so its instrumental "zobowiązaniem" finds it when the query is analysed in Polish ...
    assert analysis.index_term("zobowiązaniem", "pl") == analysis.index_term("zobowiązanie", "pl")
    assert "clause:pl:live" in ids(multilingual.search(ask("zobowiązaniem", allowed=EVERY_CODE, languages=["pl"])))
    # ... while English stemming leaves the Polish endings on, so as English it is another word.
    assert analysis.index_term("zobowiązaniem", "en") != analysis.index_term("zobowiązanie", "en")
    assert ids(multilingual.search(ask("zobowiązaniem", allowed=EVERY_CODE, languages=["en"]))) == set()


def test_a_phrase_in_another_form_is_found_in_its_language(multilingual: SearchEngine, ask: Ask) -> None:
    found = multilingual.search(ask('"poważny incydent"', allowed=EVERY_CODE, languages=["pl"]))
    assert ids(found) == {"clause:pl:live"}
    assert "<mark>" in found.hits[0].snippet


def test_accents_fold_before_stemming_in_german_and_french(multilingual: SearchEngine, ask: Ask) -> None:
    assert "clause:de:live" in ids(multilingual.search(ask("gegenuber", allowed=EVERY_CODE)))
    assert "clause:fr:live" in ids(multilingual.search(ask("securite", allowed=EVERY_CODE)))


def test_stop_words_are_kept_in_every_language(multilingual: SearchEngine, ask: Ask) -> None:
    assert "clause:de:live" in ids(multilingual.search(ask('"und meldet"', allowed=EVERY_CODE)))
    assert "clause:fr:live" in ids(multilingual.search(ask('"avant la mise"', allowed=EVERY_CODE)))


def test_index_terms_are_one_per_word_in_every_language() -> None:
    for _code_id, language, body in CODES:
        assert len(analysis.index_terms(body, language)) == len(analysis.WORD_PATTERN.findall(body))
