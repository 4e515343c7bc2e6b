"""Where an accepted amendment meets the text around it: keep the spaces and punctuation.

A reviewer's selection often takes in the space before a word or the full stop after it, and the
words they type in its place rarely repeat them: replaced verbatim, "machine learning[ training]"
with "training" became "machine learningtraining". The replacement is therefore fitted to its
place: whitespace at either edge of the quoted passage is kept when the replacement does not
bring its own, a closing punctuation mark the passage ended with is kept when the replacement
ends in a word, two words never touch where the text had a separator between them, and deleting a word leaves
no double space.
Pure functions on code points; the caller converts offsets for the CRDT.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Punctuation that closes a clause or sentence and belongs to the text, not to the passage.
_CLOSING = ".,;:!?"
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Splice:
    """The text after an amendment, and where its (fitted) words now stand."""

    text: str
    start: int
    replacement: str

    @property
    def end(self) -> int:
        return self.start + len(self.replacement)


def _is_word(char: str) -> bool:
    return bool(char) and (char.isalnum() or unicodedata.category(char)[0] in "LMN")


def fit_replacement(quote: str, replacement: str, before: str, after: str) -> str:
    """``replacement`` adjusted to stand where ``quote`` stood, between the characters ``before``
    and ``after`` (each "" at an end of the text)."""
    if not replacement.strip():
        # Deleting a passage: keep one separator if the passage was the only one between words.
        if _is_word(before) and _is_word(after) and _SPACE.search(quote):
            return " "
        return replacement
    fitted = replacement
    lead = quote[: len(quote) - len(quote.lstrip())]
    trail = quote[len(quote.rstrip()):]
    core = quote.strip()
    if lead and not fitted[:1].isspace():
        fitted = lead + fitted
    if core and core[-1] in _CLOSING and _is_word(fitted.rstrip()[-1:]) and after[:1] not in _CLOSING:
        fitted = fitted.rstrip() + core[-1] + fitted[len(fitted.rstrip()):]
    if trail and not fitted[-1:].isspace():
        fitted = fitted + trail
    if _is_word(before) and _is_word(fitted[:1]):
        fitted = " " + fitted
    if _is_word(after) and _is_word(fitted[-1:]):
        fitted = fitted + " "
    return fitted


def splice_amendment(text: str, start: int, end: int, replacement: str) -> Splice:
    """``text`` with ``text[start:end]`` replaced by the fitted ``replacement``.

    Raises ValueError if the range is not inside the text.
    """
    if not 0 <= start <= end <= len(text):
        raise ValueError("the passage is not inside the text")
    quote = text[start:end]
    fitted = fit_replacement(quote, replacement, text[start - 1: start] if start else "", text[end: end + 1])
    if not fitted and start and text[start - 1] == " " and text[end: end + 1] in (" ", "") + tuple(_CLOSING):
        # Deleting a word between two spaces (or before punctuation) leaves one space, not two.
        start -= 1
    return Splice(text=text[:start] + fitted + text[end:], start=start, replacement=fitted)
