"""Analyzers: folding before stemming, stop words kept, Polish letters folded."""

from __future__ import annotations

import pytest

from codedraft.search import analysis


def terms(analyzer: object, text: str) -> list[str]:
    return [t.text for t in analyzer(text)]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Łódź", "lodz"),
        ("żółć", "zolc"),
        ("Sécurité", "securite"),
        ("Straße", "strasse"),
        ("Æble", "aeble"),
        ("ﬁnance", "finance"),
        ("İstanbul", "istanbul"),
        ("Ørsted", "orsted"),
        ("e\u0301te\u0301", "ete"),  # decomposed accents
        ("PLAIN ascii", "plain ascii"),
    ],
)
def test_fold_text_removes_case_accents_and_ligatures(raw: str, folded: str) -> None:
    assert analysis.fold_text(raw) == folded


def test_decomposed_accents_stay_inside_one_word() -> None:
    assert terms(analysis.folding_analyzer(), "cafe\u0301 ouvert") == ["cafe", "ouvert"]


def test_stemming_analyzer_keeps_stop_words() -> None:
    assert terms(analysis.stemming_analyzer("en"), "shall not apply") == ["shall", "not", "appli"]


def test_folding_happens_before_stemming() -> None:
    stem = analysis.stemming_analyzer("en")
    assert terms(stem, "sécurités") == terms(stem, "securites")


def test_folding_analyzer_does_not_stem() -> None:
    assert terms(analysis.folding_analyzer(), "Evaluations evaluating") == ["evaluations", "evaluating"]


def test_language_without_stemmer_still_folds() -> None:
    assert not analysis.language_has_stemmer("mt")  # Maltese: neither Snowball nor simplemma
    assert terms(analysis.stemming_analyzer("mt"), "Żółć Łodzi") == ["zolc", "lodzi"]


def test_french_stemmer_is_available() -> None:
    stem = analysis.stemming_analyzer("fr")
    assert terms(stem, "évaluations") == terms(stem, "evaluation")


def test_key_analyzer_folds_whole_value() -> None:
    assert terms(analysis.key_analyzer(), "Safety and Security") == ["safety and security"]
    assert analysis.fold_key("  Société Civile ") == "societe civile"
