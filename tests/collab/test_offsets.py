"""Offsets between UTF-16 (browser), code points (Python) and UTF-8 bytes (pycrdt).

Property-style: for seeded random clause texts mixing ASCII, accents (NFC and NFD), emoji, ZWJ
sequences, flags, CRLF and CJK, every index of every unit is checked against a per-character
oracle that does not use the codec tricks the implementation uses.
"""

from __future__ import annotations

import random
import unicodedata

import pytest

from codedraft.collab.offsets import (
    codepoint_to_utf8,
    codepoint_to_utf16,
    utf8_length,
    utf8_to_codepoint,
    utf16_length,
    utf16_to_codepoint,
)

PIECES = [
    "Signatories shall ",
    "é",  # NFC
    "e\u0301",  # NFD: e + combining acute
    "a\u0308\u0323",  # two combining marks
    "😀",
    "👩\u200d👩\u200d👧",  # ZWJ family
    "🇪🇺",  # flag: two regional indicators
    "👍🏽",  # skin-tone modifier
    "\r\n",
    "\n",
    "条款",
    "ﬁ",
    "\u00a0",
    "\t",
    "x",
]


def units_utf16(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def units_utf8(char: str) -> int:
    code = ord(char)
    if code < 0x80:
        return 1
    if code < 0x800:
        return 2
    if code < 0x10000:
        return 3
    return 4


def random_clause_text(rnd: random.Random) -> str:
    text = "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 30)))
    if rnd.random() < 0.3:
        text = unicodedata.normalize(rnd.choice(["NFC", "NFD", "NFKC"]), text)
    return text


def boundaries(text: str, units: object) -> tuple[list[int], set[int]]:
    """Per code point, its start offset in the given unit; plus every offset inside a char."""
    assert callable(units)
    starts = [0]
    inside: set[int] = set()
    for char in text:
        width = units(char)
        inside.update(range(starts[-1] + 1, starts[-1] + width))
        starts.append(starts[-1] + width)
    return starts, inside


@pytest.mark.parametrize("seed", range(40))
def test_every_index_converts_or_is_refused(seed: int) -> None:
    rnd = random.Random(seed)
    text = random_clause_text(rnd)
    for units, to_cp, from_cp, length in [
        (units_utf16, utf16_to_codepoint, codepoint_to_utf16, utf16_length),
        (units_utf8, utf8_to_codepoint, codepoint_to_utf8, utf8_length),
    ]:
        starts, inside = boundaries(text, units)
        assert length(text) == starts[-1], f"seed {seed}"
        for codepoint, offset in enumerate(starts):
            assert from_cp(text, codepoint) == offset, f"seed {seed} text {text!r}"
            assert to_cp(text, offset) == codepoint, f"seed {seed} text {text!r}"
        for offset in inside:
            with pytest.raises(ValueError, match="splits"):
                to_cp(text, offset)


@pytest.mark.parametrize(
    ("text", "utf16", "codepoints", "utf8"),
    [
        ("😀|", 2, 1, 4),
        ("👩\u200d👩\u200d👧|", 8, 5, 18),
        ("e\u0301|", 2, 2, 3),
        ("é|", 1, 1, 2),
        ("\r\n|", 2, 2, 2),
        ("🇪🇺|", 4, 2, 8),
    ],
)
def test_known_offsets_of_the_character_before_the_bar(
    text: str, utf16: int, codepoints: int, utf8: int
) -> None:
    assert codepoint_to_utf16(text, codepoints) == utf16
    assert codepoint_to_utf8(text, codepoints) == utf8
    assert utf16_to_codepoint(text, utf16) == codepoints
    assert utf8_to_codepoint(text, utf8) == codepoints
    assert text[codepoints] == "|"


def test_index_inside_an_emoji_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate pair"):
        utf16_to_codepoint("a😀b", 2)
    for inside in (2, 3, 4):
        with pytest.raises(ValueError, match="multi-byte"):
            utf8_to_codepoint("a😀b", inside)


@pytest.mark.parametrize(
    "convert", [utf16_to_codepoint, codepoint_to_utf16, codepoint_to_utf8, utf8_to_codepoint]
)
@pytest.mark.parametrize("text", ["", "abc", "😀é"])
def test_out_of_range_and_negative_indices_are_refused(convert: object, text: str) -> None:
    assert callable(convert)
    with pytest.raises(ValueError, match="out of range"):
        convert(text, -1)
    with pytest.raises(ValueError, match="out of range"):
        convert(text, 100)
    with pytest.raises(TypeError):
        convert(text, True)
    assert convert(text, 0) == 0


def test_nfc_and_nfd_of_the_same_words_count_differently() -> None:
    nfc = "Signatories’ réponse"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    assert codepoint_to_utf16(nfc, len(nfc)) == len(nfc)
    assert codepoint_to_utf16(nfd, len(nfd)) == len(nfd) == len(nfc) + 1
    assert codepoint_to_utf8(nfd, len(nfd)) == codepoint_to_utf8(nfc, len(nfc)) + 1


def test_lone_surrogate_is_refused() -> None:
    broken = "a\ud83db"
    for convert in (codepoint_to_utf16, codepoint_to_utf8, utf16_to_codepoint, utf8_to_codepoint):
        with pytest.raises(ValueError, match="lone surrogate"):
            convert(broken, 1)
