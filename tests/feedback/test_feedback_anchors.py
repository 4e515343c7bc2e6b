"""Anchors: browser offsets to code points (emoji), sticky indexes through edits, re-attachment."""
from __future__ import annotations

import random

import pytest

from codedraft.collab.core import ClauseDocument
from codedraft.collab.offsets import codepoint_to_utf16
from codedraft.feedback import anchors
from codedraft.feedback.anchors import AnchorError

TEXT = "Intro 👩‍👩‍👧 family. The Signatory shall **publish** a [summary](https://x.test) of data 🎉 used.\nEnd é."


def _utf16(text: str, start: int, end: int) -> tuple[int, int]:
    return codepoint_to_utf16(text, start), codepoint_to_utf16(text, end)


def test_editor_selection_in_utf16_after_emoji_becomes_code_points():
    quote = "data 🎉 used"
    start = TEXT.index(quote)
    s16, e16 = _utf16(TEXT, start, start + len(quote))
    assert s16 > start  # the ZWJ family emoji takes more UTF-16 units than code points
    passage = anchors.passage_from_selection(TEXT, quote, s16, e16, "utf16")
    assert (passage.start, passage.end, passage.quote) == (start, start + len(quote), quote)
    assert anchors.to_utf16(TEXT, passage.start, passage.end) == (s16, e16)


def test_a_utf16_offset_inside_a_surrogate_pair_falls_back_to_the_quote():
    quote = "🎉 used"
    start = TEXT.index(quote)
    s16, _ = _utf16(TEXT, start, start)
    passage = anchors.passage_from_selection(TEXT, quote, s16 + 1, s16 + 3, "utf16")
    assert passage.start == start and passage.quote == quote


def test_a_quote_from_the_rendered_page_matches_despite_markdown_markup():
    passage = anchors.passage_from_selection(TEXT, "shall publish a summary of data", 30, None, "reading")
    assert TEXT[passage.start:passage.end] == "shall **publish** a [summary](https://x.test) of data"


def test_the_nearest_occurrence_to_the_hint_wins_and_missing_quotes_are_refused():
    text = "the data; then the data again"
    assert anchors.locate_quote(text, "the data", hint=20).start == 15
    assert anchors.locate_quote(text, "the data", hint=0).start == 0
    with pytest.raises(AnchorError):
        anchors.locate_quote(text, "absent words")
    with pytest.raises(AnchorError):
        anchors.passage_from_selection(text, "   ")


def test_sticky_anchors_follow_concurrent_edits_around_and_inside_the_passage():
    document = ClauseDocument(client_id=7)
    document.apply_text(TEXT)
    quote = "summary](https://x.test) of data 🎉"
    start = TEXT.index(quote)
    passage = anchors.Passage(start, start + len(quote), quote)
    sticky = anchors.sticky_pair(document, passage)
    # Edits before, after and right at the edges, with emoji, stay outside the passage.
    document.apply_text("🦄 New start. " + document.text)
    at = document.text.index(quote)
    document.apply_text(document.text[:at] + "👍" + document.text[at:])
    end = document.text.index(quote) + len(quote)
    document.apply_text(document.text[:end] + "✅ after" + document.text[end:])
    span = anchors.resolve_passage(document, *sticky)
    assert span is not None and document.text[span[0]:span[1]] == quote
    # An edit inside the passage is inside the anchor afterwards.
    inner = document.text.index("of data")
    document.apply_text(document.text[:inner] + "all " + document.text[inner:])
    span = anchors.resolve_passage(document, *sticky)
    assert document.text[span[0]:span[1]] == "summary](https://x.test) all of data 🎉"
    # Deleting the whole passage collapses the anchor.
    s, e = span
    document.apply_text(document.text[:s] + document.text[e:])
    s2, e2 = anchors.resolve_passage(document, *sticky)
    assert s2 == e2


def test_sticky_anchors_survive_random_edits_elsewhere_seeded():
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    document = ClauseDocument(client_id=3)
    document.apply_text(TEXT)
    quote = "The Signatory shall"
    start = TEXT.index(quote)
    sticky = anchors.sticky_pair(document, anchors.Passage(start, start + len(quote), quote))
    for _ in range(60):
        s, e = anchors.resolve_passage(document, *sticky)
        text = document.text
        outside = [i for i in range(len(text) + 1) if i <= s or i >= e]
        at = rng.choice(outside)
        piece = rng.choice(["x", "é", "👩‍👩‍👧", "🎉 ", "\n"])
        if rng.random() < 0.3 and at < len(text) and not (s <= at < e):
            document.apply_text(text[:at] + text[at + 1:])
        else:
            document.apply_text(text[:at] + piece + text[at:])
        s, e = anchors.resolve_passage(document, *sticky)
        assert document.text[s:e] == quote, f"seed {seed}"


def test_foreign_sticky_bytes_do_not_resolve():
    document = ClauseDocument(client_id=5)
    document.apply_text("abc")
    assert anchors.resolve_passage(document, b"\x00\x99\x01\x05", b"\x00\x99\x01\x06") is None


def test_reattach_states_are_honest():
    old = "Signatories shall publish a summary of the content used for training. It shall be clear."
    same = "Preamble added. " + old
    r = anchors.reattach("a summary of the content used", old, old.index("a summary"), same)
    assert r.state == "reattached" and same[r.start:r.end] == "a summary of the content used"
    changed = ("Signatories shall publish a sufficiently detailed summary of content used for training. "
               "It shall be clear.")
    r = anchors.reattach("a summary of the content used for training", old, old.index("a summary"), changed)
    assert r.state == "changed"
    assert "summary of content used for training" in changed[r.start:r.end]
    gone = "Providers must keep records of model evaluations for ten years."
    assert anchors.reattach("a summary of the content used for training", old, 26, gone).state == "orphaned"
    # A short quote is never matched fuzzily: a few letters fit too many places.
    assert anchors.reattach("shall be", old, old.index("shall be"), old.replace("shall be", "should be")).state \
        == "orphaned"
