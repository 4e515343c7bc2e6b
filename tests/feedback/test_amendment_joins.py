"""Joins keep their spaces and punctuation when an amendment replaces a passage of real text."""
from __future__ import annotations

import pytest

from codedraft.feedback.joins import fit_replacement, splice_amendment
from tests.conftest import shared_file

SENTENCE = "quality standards of scientific peer review in machine learning and the natural and social sciences"


def _replace(text: str, quote: str, replacement: str) -> str:
    start = text.index(quote)
    return splice_amendment(text, start, start + len(quote), replacement).text


@pytest.mark.parametrize(("quote", "replacement", "expected"), [
    (" and the natural", "training and the natural", "machine learning training and the natural and social"),
    (" and", "training", "machine learning training the natural"),
    ("machine learning ", "AI", "review in AI and the natural"),
    ("peer review", "peer-review", "scientific peer-review in machine"),
    ("sciences", "sciences and law", "social sciences and law"),
    (" in machine learning", "", "peer review and the natural"),
    ("in machine learning", "", "peer review and the natural"),
])
def test_real_sentence_joins(quote: str, replacement: str, expected: str) -> None:
    corpus = shared_file("corpus", "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8")
    start = corpus.index(SENTENCE)
    paragraph = corpus[start: corpus.index("\n", start)]
    result = _replace(paragraph, quote, replacement)
    assert expected in result, result
    assert "learningtraining" not in result and "  " not in result


def test_punctuation_at_the_end_of_a_passage_is_kept() -> None:
    assert _replace("Keep the training data. Then", "training data.", "training datasets") == \
        "Keep the training datasets. Then"
    # A replacement that brings its own punctuation, or removes it before other punctuation, wins.
    assert _replace("Keep the data. Then", "data.", "data!") == "Keep the data! Then"
    assert _replace("Keep the data.", "data.", "records;") == "Keep the records;"


def test_emoji_and_accents_are_words_too() -> None:
    assert fit_replacement(" 📄", "🧾", "a", "") == " 🧾"
    assert _replace("zażółć gęślą jaźń", " gęślą", "jaźni") == "zażółć jaźni jaźń"


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(ValueError):
        splice_amendment("abc", 2, 1, "x")
    with pytest.raises(ValueError):
        splice_amendment("abc", 0, 9, "x")
