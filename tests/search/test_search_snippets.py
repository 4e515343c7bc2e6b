"""Snippets mark through a WordMarker, which decides each distinct word of a page once."""

from __future__ import annotations

from codedraft.search.postgres_backend import WordMarker, snippet


class CountingMarker(WordMarker):
    """Marks words starting with "risk"; remembers every word it was asked to decide."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def _decide(self, word: str) -> bool:
        self.asked.append(word)
        return word.startswith("risk")


def test_each_distinct_word_is_decided_once_per_page() -> None:
    marker = CountingMarker()
    first = snippet("a risk and risks, and the risk of a risk.", marker)
    second = snippet("the risk is a risk.", marker)
    assert first == "a <mark>risk</mark> and <mark>risks</mark>, and the <mark>risk</mark> of a <mark>risk</mark>."
    assert second == "the <mark>risk</mark> is a <mark>risk</mark>."
    assert sorted(marker.asked) == sorted({"a", "risk", "and", "risks", "the", "of", "is"})


def test_a_marker_answers_one_word_too() -> None:
    marker = CountingMarker()
    assert marker("risky") and not marker("safe")
    assert marker.among({"risky", "safe", "risk"}) == {"risky", "risk"}
    assert marker.asked == ["risky", "safe", "risk"]


def test_nothing_marked_gives_the_opening() -> None:
    assert snippet("Safe & sound.", CountingMarker()) == "Safe &amp; sound."
