"""Index conversions between the three ways a clause's text is counted.

The browser (Yjs, CodeMirror) counts UTF-16 code units, Python counts code points and pycrdt 0.14.13
``Text.insert``/``delete`` count UTF-8 bytes.  An index that lands inside a character silently makes
replicas diverge, so every conversion goes through this module, and every conversion refuses an
index that would split a surrogate pair or a multi-byte sequence.

All functions take the text the index refers to and an index into it, and raise ``ValueError``
when the index is out of range, splits a character, or the text holds a lone surrogate (which can
neither travel to the browser nor be stored by pycrdt).
"""

from __future__ import annotations

__all__ = [
    "codepoint_to_utf16",
    "codepoint_to_utf8",
    "utf16_length",
    "utf16_to_codepoint",
    "utf8_length",
    "utf8_to_codepoint",
]


def _check_index(index: int, upper: int, unit: str) -> None:
    """Raise ValueError unless ``0 <= index <= upper``; TypeError unless index is an int."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"{unit} index must be an int, not {type(index).__name__}")
    if index < 0 or index > upper:
        raise ValueError(f"{unit} index {index} is out of range 0..{upper}")


def _encode(text: str, encoding: str) -> bytes:
    """Encode strictly; a lone surrogate becomes a ValueError with a readable reason."""
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise ValueError(f"text holds a lone surrogate at code point {exc.start}") from None


def _prefix_length(text: str, index: int, encoding: str) -> int:
    """Encoded length of ``text[:index]``; the rest is encoded too so a lone surrogate anywhere
    in the text is refused, not only one before the index."""
    prefix = len(_encode(text[:index], encoding))
    _encode(text[index:], encoding)
    return prefix


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what JavaScript's ``length`` reports)."""
    if text.isascii():
        return len(text)
    return len(_encode(text, "utf-16-le")) // 2


def utf8_length(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes (what pycrdt's Text indices count)."""
    if text.isascii():
        return len(text)
    return len(_encode(text, "utf-8"))


def utf16_to_codepoint(text: str, index: int) -> int:
    """Convert a UTF-16 code unit index into ``text`` to a code point index.

    Raises ValueError if the index is out of range or falls between the two halves of a
    surrogate pair (e.g. inside an emoji).
    """
    if text.isascii():
        _check_index(index, len(text), "UTF-16")
        return index
    encoded = _encode(text, "utf-16-le")
    _check_index(index, len(encoded) // 2, "UTF-16")
    try:
        return len(encoded[: 2 * index].decode("utf-16-le"))
    except UnicodeDecodeError:
        raise ValueError(f"UTF-16 index {index} splits a surrogate pair") from None


def codepoint_to_utf16(text: str, index: int) -> int:
    """Convert a code point index into ``text`` to a UTF-16 code unit index.

    Raises ValueError if the index is out of range.
    """
    _check_index(index, len(text), "code point")
    if text.isascii():
        return index
    return _prefix_length(text, index, "utf-16-le") // 2


def codepoint_to_utf8(text: str, index: int) -> int:
    """Convert a code point index into ``text`` to a UTF-8 byte index (pycrdt's unit).

    Raises ValueError if the index is out of range.
    """
    _check_index(index, len(text), "code point")
    if text.isascii():
        return index
    return _prefix_length(text, index, "utf-8")


def utf8_to_codepoint(text: str, index: int) -> int:
    """Convert a UTF-8 byte index into ``text`` to a code point index.

    Raises ValueError if the index is out of range or falls inside a multi-byte character.
    """
    if text.isascii():
        _check_index(index, len(text), "UTF-8")
        return index
    encoded = _encode(text, "utf-8")
    _check_index(index, len(encoded), "UTF-8")
    try:
        return len(encoded[:index].decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"UTF-8 index {index} splits a multi-byte character") from None
