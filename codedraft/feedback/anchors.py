"""Comment anchors: where a quoted passage sits in a clause, and where it sits after edits.

Pure: no Flask, no database, no sockets. Three jobs:

* turn what the browser sends (UTF-16 offsets from the editor, or the quoted text with an
  approximate offset from the rendered reading view) into a code-point range of the clause's
  source text, through :mod:`codedraft.collab.offsets` only;
* encode that range as two pycrdt sticky indexes, which follow every later edit, and resolve
  them back to code points;
* re-attach a quote to the next draft's text with diff-match-patch, and say honestly how well
  it went: re-attached, changed passage, or orphaned (never pinned to the wrong words).
"""
from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from typing import Literal

from diff_match_patch import diff_match_patch  # type: ignore[import-untyped]
from flask_babel import lazy_gettext as _
from pycrdt import Assoc, Doc, StickyIndex, Text

from codedraft.collab.core import BODY, ClauseDocument
from codedraft.collab.offsets import codepoint_to_utf16, utf16_length, utf16_to_codepoint

__all__ = [
    "MAX_QUOTE_CHARS",
    "AnchorError",
    "Passage",
    "Reattachment",
    "locate_quote",
    "passage_from_selection",
    "reattach",
    "resolve_passage",
    "sticky_pair",
    "to_utf16",
]

MAX_QUOTE_CHARS = 5_000
# Re-attachment thresholds, chosen deliberately (see ``reattach``):
#: diff-match-patch's Match_Threshold: 0.0 demands a perfect match, 1.0 accepts anything.
MATCH_THRESHOLD = 0.35
#: How far (characters) from where the passage should be a fuzzy match may still be found.
MATCH_DISTANCE = 2_000
#: A candidate passage must be at least this similar to the quote (1 - edits / length).
MIN_SIMILARITY = 0.6
#: Quotes shorter than this are only re-attached when found word for word.
MIN_FUZZY_QUOTE = 12
#: An exact match further than this from where the passage should be is only trusted if unique.
NEAR_DISTANCE = 400
# diff-match-patch's bitap matcher handles patterns of at most 32 characters.
_BITAP_BITS = 32

Unit = Literal["utf16", "codepoint", "reading"]
AnchorState = Literal["reattached", "changed", "orphaned"]


class AnchorError(ValueError):
    """The selection cannot become an anchor; the message is safe to show to the person."""


@dataclass(frozen=True, slots=True)
class Passage:
    """A non-empty code-point range ``[start, end)`` of a clause text and the words it holds."""

    start: int
    end: int
    quote: str


@dataclass(frozen=True, slots=True)
class Reattachment:
    """Where a quote landed in the next draft; ``start``/``end`` are None when orphaned."""

    state: AnchorState
    start: int | None
    end: int | None


# --- from the browser to code points ---------------------------------------------------------


def passage_from_selection(
    text: str, quote: str, start: int | None = None, end: int | None = None, unit: Unit = "utf16"
) -> Passage:
    """The passage of ``text`` the person selected.

    ``unit="utf16"``: ``start``/``end`` are UTF-16 offsets into ``text`` (CodeMirror); if the
    text there is not ``quote`` (the clause moved on while they typed), the quote is searched
    near that place. ``unit="codepoint"``: the same with code-point offsets. ``unit="reading"``:
    ``start`` is only a hint (an offset in the rendered page, which lacks the Markdown markup),
    and the quote is searched, tolerating markup between its words.
    Raises AnchorError when the quote is empty, too long, or not in the text.
    """
    quote = _checked_quote(quote)
    if unit in ("utf16", "codepoint") and start is not None and end is not None:
        try:
            if unit == "utf16":
                start, end = utf16_to_codepoint(text, start), utf16_to_codepoint(text, end)
            elif not (0 <= start <= end <= len(text)):
                raise ValueError("offsets out of range")
        except (ValueError, TypeError):
            start = end = None
        if start is not None and end is not None and text[start:end] == quote:
            return Passage(start, end, quote)
    return locate_quote(text, quote, hint=start)


def _checked_quote(quote: str) -> str:
    if not isinstance(quote, str) or not quote.strip():
        raise AnchorError(_("Select or paste the passage you comment on."))
    if len(quote) > MAX_QUOTE_CHARS:
        raise AnchorError(_("A quoted passage can be at most %(n)s characters long.", n=MAX_QUOTE_CHARS))
    return quote


def locate_quote(text: str, quote: str, hint: int | None = None) -> Passage:
    """Find ``quote`` in ``text``: word for word first, then allowing Markdown markup and any
    whitespace between its words (a quote copied from the rendered page). The occurrence
    nearest ``hint`` wins. Raises AnchorError if it is not there."""
    quote = _checked_quote(quote)
    spans = [(m.start(), m.end()) for m in re.finditer(re.escape(quote), text)]
    if not spans:
        pattern = _tolerant_pattern(quote.strip())
        spans = [(m.start(), m.end()) for m in pattern.finditer(text) if m.end() > m.start()]
    if not spans:
        raise AnchorError(_("That passage is not in the current text of the clause."))
    anchor = hint if isinstance(hint, int) and hint >= 0 else 0
    start, end = min(spans, key=lambda span: (abs(span[0] - anchor), span[0]))
    return Passage(start, end, text[start:end])


# Between two words of a quote taken from the rendered page, the source may hold whitespace,
# emphasis and code marks, heading/quote/table marks, or a link's "](destination)". One
# character (or one link tail) per repetition, so the regex cannot backtrack explosively.
_MARKUP_GAP = r"(?:\]\([^)\n]{0,500}\)|[\s*_`~#>|\[\]\\])*"
_QUOTE_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_MARKUP_CHARS = set("*_`~#>|[]\\")


def _tolerant_pattern(quote: str) -> re.Pattern[str]:
    tokens = [t for t in _QUOTE_TOKEN.findall(quote) if t not in _MARKUP_CHARS]
    if not tokens:
        raise AnchorError(_("That passage is not in the current text of the clause."))
    return re.compile(_MARKUP_GAP.join(re.escape(token) for token in tokens), re.UNICODE)


def to_utf16(text: str, start: int, end: int) -> tuple[int, int]:
    """A code-point range of ``text`` as UTF-16 offsets (for highlighting in the editor)."""
    return codepoint_to_utf16(text, start), codepoint_to_utf16(text, end)


# --- sticky indexes ---------------------------------------------------------------------------
#
# pycrdt 0.14.13 (Yrs with byte offsets) builds a sticky index for byte index ``b`` as
# (client, item.clock + *byte* offset within the item), but item clocks count UTF-16 units, as
# in Yjs; resolving adds a UTF-16 offset to a byte position. The errors cancel out until an edit
# splits the item between its start and the anchor (someone types earlier in the clause): then
# an anchor after any non-ASCII character of that item lands on the wrong words.
#
# So anchors are made and resolved on a *shadow* of the clause: the same structs (same ids, same
# order, same deletions) with every string replaced by ASCII of the same UTF-16 length. There,
# bytes, UTF-16 units and clocks coincide and Yrs is exact; positions map back to the real text
# through codedraft.collab.offsets. The shadow is rebuilt only when the document changed.

_CONTENT_DELETED = 1
_CONTENT_STRING = 4
_CONTENT_FORMAT = 6
_STRUCT_GC = 0
_STRUCT_SKIP = 10
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20


class _Cursor:
    """Reads a Yjs v1 update and copies it, so one kind of content can be rewritten."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at, self.out = data, 0, bytearray()

    def var_uint(self, copy: bool = True) -> int:
        value = shift = 0
        start = self.at
        while True:
            if self.at >= len(self.data) or shift > 63:
                raise ValueError("the clause state is truncated")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if copy:
            self.out += self.data[start:self.at]
        return value

    def var_bytes(self, copy: bool = True) -> bytes:
        length = self.var_uint(copy)
        chunk = self.data[self.at:self.at + length]
        if len(chunk) != length:
            raise ValueError("the clause state is truncated")
        self.at += length
        if copy:
            self.out += chunk
        return chunk

    def byte(self) -> int:
        if self.at >= len(self.data):
            raise ValueError("the clause state is truncated")
        value = self.data[self.at]
        self.at += 1
        self.out.append(value)
        return value


def _var_uint_bytes(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def _ascii_twin(update: bytes) -> bytes:
    """``update`` with every string replaced by 'x's of the same UTF-16 length.

    Raises ValueError on content a clause never holds (nested types, embeds).
    """
    cursor = _Cursor(update)
    # The loop variables are named, not "_": that name is gettext in this module.
    for _client_run in range(cursor.var_uint()):
        count = cursor.var_uint()
        cursor.var_uint()  # client
        cursor.var_uint()  # first clock
        for _struct in range(count):
            info = cursor.byte()
            kind = info & 0x1F
            if kind in (_STRUCT_GC, _STRUCT_SKIP):
                cursor.var_uint()
                continue
            if info & _HAS_ORIGIN:
                cursor.var_uint(), cursor.var_uint()
            if info & _HAS_RIGHT_ORIGIN:
                cursor.var_uint(), cursor.var_uint()
            if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
                if cursor.var_uint() == 1:
                    cursor.var_bytes()
                else:
                    cursor.var_uint(), cursor.var_uint()
                if info & _HAS_PARENT_SUB:
                    cursor.var_bytes()
            if kind == _CONTENT_DELETED:
                cursor.var_uint()
            elif kind == _CONTENT_FORMAT:  # a suggestion mark: key and JSON value, kept as they are
                cursor.var_bytes(), cursor.var_bytes()
            elif kind == _CONTENT_STRING:
                units = utf16_length(cursor.var_bytes(copy=False).decode("utf-8"))
                cursor.out += _var_uint_bytes(units) + b"x" * units
            else:
                raise ValueError(f"clause state holds content of type {kind}")
    cursor.out += cursor.data[cursor.at:]  # the delete set refers to clocks: unchanged
    return bytes(cursor.out)


@dataclass
class _Shadow:
    state: bytes
    doc: Doc[Text]
    body: Text


# The ASCII twin of each live document, cached until the document changes, and dropped with the
# document (keyed by the object itself: an id() can be reused by a later document).
_SHADOWS: weakref.WeakKeyDictionary[ClauseDocument, _Shadow] = weakref.WeakKeyDictionary()
_SHADOWS_LOCK = threading.Lock()


def _shadow(document: ClauseDocument) -> _Shadow:
    """The ASCII twin of ``document`` (cached until the document changes)."""
    state = document.encode_state()
    with _SHADOWS_LOCK:
        cached = _SHADOWS.get(document)
        if cached is not None and cached.state == state:
            return cached
    twin: Doc[Text] = Doc()
    body = twin.get(BODY, type=Text)
    twin.apply_update(_ascii_twin(state))
    shadow = _Shadow(state, twin, body)
    with _SHADOWS_LOCK:
        _SHADOWS[document] = shadow
    return shadow


def _known_clocks(state_vector: bytes) -> dict[int, int]:
    """client -> next clock, from an encoded state vector."""
    cursor = _Cursor(state_vector)
    clocks: dict[int, int] = {}
    for _client_clock in range(cursor.var_uint(copy=False)):
        client = cursor.var_uint(copy=False)
        clocks[client] = cursor.var_uint(copy=False)
    return clocks


def anchor_index(document: ClauseDocument, position: int, assoc: Literal["before", "after"]) -> bytes:
    """A sticky index (Yjs RelativePosition bytes) at code point ``position``: "after" sticks to
    the character at it, "before" to the one before it. Raises AnchorError if out of range."""
    text = document.text
    if not 0 <= position <= len(text) or (assoc == "before" and position == 0):
        raise AnchorError(_("That position is not inside the clause text."))
    if assoc == "after" and position == len(text):
        return document.sticky_index(position, "after")  # "end of the body": no character to name
    shadow = _shadow(document)
    # Positions are in the accepted text; the shadow holds the raw one, suggestions included.
    units = codepoint_to_utf16(document.raw_text, document.accepted_to_raw(position, assoc))
    return StickyIndex.new(shadow.body, units, Assoc.AFTER if assoc == "after" else Assoc.BEFORE).encode()


def resolve_index(document: ClauseDocument, encoded: bytes) -> int:
    """The current code point position of a sticky index made by ``anchor_index``.

    Raises ValueError if it does not decode or names text this clause never had.
    """
    if encoded[:1] != b"\x00":
        return document.resolve_sticky(encoded)  # the "end of the body" form
    cursor = _Cursor(encoded)
    cursor.at = 1
    client = cursor.var_uint(copy=False)
    clock = cursor.var_uint(copy=False)
    if clock >= _known_clocks(document.state_vector()).get(client, 0):
        # Yrs panics on a character it never saw: refuse first (a forged or foreign index).
        raise ValueError("sticky index points at text this clause does not have")
    shadow = _shadow(document)
    try:
        units = int(StickyIndex.decode(encoded, shadow.body).get_index())
    except Exception:
        raise ValueError("sticky index cannot be resolved in this clause") from None
    return document.raw_to_accepted(utf16_to_codepoint(document.raw_text, units))


def sticky_pair(document: ClauseDocument, passage: Passage) -> tuple[bytes, bytes]:
    """Sticky indexes for the passage: the start sticks to its first character, the end to its
    last, so text typed right before or after the passage stays outside it.

    Raises AnchorError if the document no longer holds the passage at that place.
    """
    text = document.text
    if text[passage.start:passage.end] != passage.quote:
        raise AnchorError(_("The passage changed while you were commenting; select it again."))
    return anchor_index(document, passage.start, "after"), anchor_index(document, passage.end, "before")


def resolve_passage(document: ClauseDocument, sticky_start: bytes, sticky_end: bytes) -> tuple[int, int] | None:
    """The passage's current ``(start, end)`` in code points; ``start == end`` when every
    character of it was deleted. None if the indexes do not belong to this document."""
    try:
        start = resolve_index(document, sticky_start)
        end = resolve_index(document, sticky_end)
    except ValueError:
        return None
    return (start, max(start, end))


# --- carrying to the next draft ---------------------------------------------------------------


def _engine(timeout: float) -> diff_match_patch:
    engine = diff_match_patch()
    engine.Diff_Timeout = timeout
    engine.Match_Threshold = MATCH_THRESHOLD
    engine.Match_Distance = MATCH_DISTANCE
    return engine


def similarity(a: str, b: str, *, timeout: float = 0.1) -> float:
    """1.0 for equal texts, falling towards 0.0 as more characters must change."""
    if not a and not b:
        return 1.0
    engine = _engine(timeout)
    distance = int(engine.diff_levenshtein(engine.diff_main(a, b, False)))
    return 1.0 - distance / max(len(a), len(b))


def reattach(quote: str, old_text: str, old_start: int, new_text: str, *, timeout: float = 0.5) -> Reattachment:
    """Find the quoted passage of ``old_text`` (at ``old_start``) in ``new_text``.

    1. Where the diff of the two texts maps the passage, or at an exact occurrence near there
       (or anywhere, if the quote occurs once): "reattached".
    2. Otherwise diff-match-patch's bitap ``match_main`` looks for the quote's head and tail
       near the mapped place (``MATCH_THRESHOLD``, ``MATCH_DISTANCE``), and the span between
       them is kept only if it has a plausible length and is at least ``MIN_SIMILARITY``
       similar to the quote: "changed".
    3. Otherwise "orphaned" (the quote is kept by the caller). Short quotes are never matched
       fuzzily: a few letters match too many places.
    ``timeout`` bounds the whole-clause diff (DESIGN.md: never diff without a deadline).
    """
    if not quote:
        return Reattachment("orphaned", None, None)
    engine = _engine(timeout)
    old_start = min(max(old_start, 0), len(old_text))
    expected, expected_end = map_range(old_text, new_text, old_start, min(old_start + len(quote), len(old_text)),
                                       timeout=timeout)
    if new_text[expected:expected_end] == quote:
        return Reattachment("reattached", expected, expected_end)

    occurrences = [m.start() for m in re.finditer(re.escape(quote), new_text)]
    if occurrences:
        nearest = min(occurrences, key=lambda at: abs(at - expected))
        if len(occurrences) == 1 or abs(nearest - expected) <= NEAR_DISTANCE:
            return Reattachment("reattached", nearest, nearest + len(quote))
        return Reattachment("orphaned", None, None)  # several far-off copies: ambiguous

    if len(quote) < MIN_FUZZY_QUOTE or not new_text:
        return Reattachment("orphaned", None, None)
    span = _fuzzy_span(engine, quote, new_text, expected)
    if span is None:
        return Reattachment("orphaned", None, None)
    start, end = span
    if similarity(quote, new_text[start:end]) < MIN_SIMILARITY:
        return Reattachment("orphaned", None, None)
    return Reattachment("changed", start, end)


_WORD = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)


def map_range(old_text: str, new_text: str, start: int, end: int, *, timeout: float = 0.5) -> tuple[int, int]:
    """Where ``[start, end)`` of ``old_text`` would be in ``new_text``, by a word-level diff.

    Words, not characters: a character diff of two rewritten clauses runs into its deadline and
    comes back as one big replacement (DESIGN.md), which maps nothing.
    """
    old_tokens, new_tokens = _WORD.findall(old_text), _WORD.findall(new_text)
    codes: dict[str, str] = {}

    def encode(tokens: list[str]) -> str:
        # Private-use and supplementary planes: no clash with the surrogate block.
        return "".join(codes.setdefault(token, chr(0xF0000 + len(codes)) if len(codes) < 0xFFFE
                                        else chr(0x100000 + len(codes) - 0xFFFE)) for token in tokens)

    old_chars, new_chars = encode(old_tokens), encode(new_tokens)
    engine = _engine(timeout)
    diffs = engine.diff_main(old_chars, new_chars, False)
    new_offsets = [0]
    for token in new_tokens:
        new_offsets.append(new_offsets[-1] + len(token))

    def to_new(position: int) -> int:
        consumed = index = 0
        while index < len(old_tokens) and consumed + len(old_tokens[index]) <= position:
            consumed += len(old_tokens[index])
            index += 1
        inside = position - consumed
        mapped = int(engine.diff_xIndex(diffs, index))
        return min(new_offsets[min(mapped, len(new_tokens))] + inside, len(new_text))

    return to_new(start), to_new(end)


def _fuzzy_span(engine: diff_match_patch, quote: str, text: str, expected: int) -> tuple[int, int] | None:
    """Locate the quote's head and tail with bitap; None unless the span between is plausible."""
    expected = min(max(expected, 0), len(text))
    head = quote[:_BITAP_BITS]
    tail = quote[-_BITAP_BITS:]
    start = engine.match_main(text, head, expected)
    if start != -1:
        tail_guess = start + len(quote) - len(tail)
        tail_at = engine.match_main(text, tail, min(max(tail_guess, 0), len(text)))
        end = tail_at + len(tail) if tail_at != -1 else start + len(quote)
    else:
        tail_at = engine.match_main(text, tail, min(max(expected + len(quote) - len(tail), 0), len(text)))
        if tail_at == -1:
            return None
        end = tail_at + len(tail)
        start = max(0, end - len(quote))
    end = min(end, len(text))
    if end <= start or not (0.5 * len(quote) <= end - start <= 1.5 * len(quote)):
        return None
    return start, end
