"""Pure validation shared by every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from codedraft.search import engine as e


def test_long_query_is_cut_with_a_message() -> None:
    cleaned = e.clean_query_text("risk " * 3000)
    assert len(cleaned.text) <= e.MAX_QUERY_CHARS
    assert not cleaned.text.endswith(" ")
    assert cleaned.messages == (e.MESSAGE_TRUNCATED.format(limit=e.MAX_QUERY_CHARS),)


def test_control_characters_and_whitespace_are_normalised() -> None:
    cleaned = e.clean_query_text("sys\x00temic\u200b  risk\n\t")
    assert cleaned.text == "sys temic risk"
    assert cleaned.messages == ()


@pytest.mark.parametrize("raw", [None, 12, b"bytes", ["list"]])
def test_non_text_query_is_empty(raw: object) -> None:
    assert e.clean_query_text(raw) == e.CleanQueryText("", ())


@pytest.mark.parametrize(
    ("page", "per_page", "expected"),
    [
        (0, 0, (1, e.DEFAULT_PER_PAGE)),
        (-5, 10_000, (1, e.MAX_PER_PAGE)),
        ("2", None, (1, e.DEFAULT_PER_PAGE)),
        (10**9, 5, (e.MAX_PAGE, 5)),
        (True, 3, (1, 3)),
    ],
)
def test_paging_is_clamped(page: object, per_page: object, expected: tuple[int, int]) -> None:
    assert e.clamp_paging(page, per_page) == expected


def test_allowed_tokens_are_cleaned() -> None:
    assert e.clean_allowed_tokens(["code:1", " ", 3, "code:1 "]) == frozenset({"code:1"})
    assert e.clean_allowed_tokens("code:2") == frozenset({"code:2"})
    assert e.clean_allowed_tokens(None) == frozenset()


def test_filter_values_accept_one_or_many() -> None:
    assert e.filter_values(None) == ()
    assert e.filter_values(" open ") == ("open",)
    assert e.filter_values(["open", "", "accepted"]) == ("open", "accepted")


def test_day_bounds_cover_whole_days_and_convert_to_utc() -> None:
    start, end = e.day_bounds(dt.date(2025, 3, 1), dt.date(2025, 3, 2))
    assert start == dt.datetime(2025, 3, 1, 0, 0)
    assert end == dt.datetime(2025, 3, 2, 23, 59, 59, 999999)
    aware = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert e.day_bounds(aware, None) == (dt.datetime(2025, 3, 1, 10, 0), None)


@pytest.mark.parametrize(
    "changes",
    [
        {"doc_id": " "},
        {"kind": "amendment"},
        {"code_id": "3"},
        {"code_id": True},
        {"visibility": "code:1"},
        {"body": None},
        {"created": "2025-01-01"},
    ],
)
def test_malformed_documents_are_rejected(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "doc_id": "comment:1",
        "kind": "comment",
        "code_id": 1,
        "body": "x",
        "visibility": ["code:1"],
    }
    fields.update(changes)
    with pytest.raises(ValueError):
        e.validate_document(e.SearchDocument(**fields))  # type: ignore[arg-type]


def test_messages_are_joined_once_each() -> None:
    assert e.join_messages(["a.", "b.", "a.", ""]) == "a. b."
    assert e.join_messages([]) is None
