"""The server's replica of one clause body, speaking the y-websocket / y-protocols wire format.

Every websocket message is ``varuint message type`` followed by its payload, as in y-websocket:

* ``0`` sync: ``varuint sync type`` + ``varUint8Array data`` where the sync type is
  ``0`` step 1 (data = state vector), ``1`` step 2 (data = update) or ``2`` update;
* ``1`` awareness: ``varUint8Array`` holding a y-protocols awareness update.

``ClauseDocument.receive`` validates a message completely before the document changes (size,
framing, decoding, the sender's right to write, only the ``body`` text touched) and reports the
*new* part of an update, which the adapter persists and then broadcasts.  A resent update adds
nothing, so it yields ``update=None``: that is how a resend is applied once and stored once.

pycrdt 0.14.13 mishandles an update that arrives before an earlier update of the same client
(it shows the text but neither reports nor stores it), so the server reads each update's
structure itself and holds such updates back until what they build on has arrived.

A ClauseDocument is not thread-safe; the adapter serialises access per clause.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pycrdt import Assoc, Doc, StickyIndex, Text, TransactionEvent, get_state, get_update, merge_updates

from codedraft.collab.minimal_edit import DEFAULT_DIFF_TIMEOUT, Edit, apply_edits, plan_edits
from codedraft.collab.offsets import codepoint_to_utf8, utf8_to_codepoint, utf16_length
from codedraft.json_depth import nesting_exceeds

__all__ = [
    "BODY",
    "MAX_AWARENESS_CLIENTS",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_BYTES",
    "SUGGEST_DELETE",
    "SUGGEST_INSERT",
    "SUGGESTION_ID",
    "AwarenessEntry",
    "ClauseDocument",
    "LiveChange",
    "Run",
    "SettleSuggestions",
    "Suggestion",
    "SuggestionMark",
    "SuggestionRefused",
    "SuggestText",
    "accepted_text",
    "check_suggestion_event",
    "pending_suggestions",
    "raw_text",
    "runs_of",
    "suggestion_delta",
    "CorruptHistory",
    "MessageKind",
    "ProtocolError",
    "ReadOnly",
    "SyncOutcome",
    "awareness_message",
    "awareness_payload",
    "awareness_removal",
    "depends_on_missing",
    "parse_awareness",
    "sync_update_message",
]

#: Name of the Y.Text holding the clause body in every clause's Yjs document.
BODY = "body"
#: Largest websocket message accepted, checked before any parsing (SECURITY-CASES 11).
MAX_MESSAGE_BYTES = 1 << 20
#: Most client states one awareness message may carry (a browser sends its own, seldom more).
MAX_AWARENESS_CLIENTS = 64
#: Deepest JSON nesting accepted in an awareness state, checked before ``json.loads``.
MAX_JSON_DEPTH = 16

_MESSAGE_SYNC = 0
_MESSAGE_AWARENESS = 1
_SYNC_STEP1 = 0
_SYNC_STEP2 = 1
_SYNC_UPDATE = 2
# An update with no structs and an empty delete set, as Yjs sends when it has nothing to say.
_EMPTY_UPDATE = b"\x00\x00"
# lib0 varuints hold at most 53 bits (JavaScript's safe integers).
_MAX_VAR_UINT = (1 << 53) - 1
# A clause keeps what it applied (an encoded state plus the updates since) to undo a rejected
# update; after this many updates the tail is folded into a new encoded state.
_RECOVERY_TAIL_LIMIT = 256
# Bounds on updates held back until their dependencies arrive (memory stays bounded).
_MAX_HELD_UPDATES = 64
_MAX_HELD_BYTES = 4 * MAX_MESSAGE_BYTES

MessageKind = Literal["step1", "step2", "update", "awareness"]
_SYNC_KINDS: dict[int, MessageKind] = {
    _SYNC_STEP1: "step1",
    _SYNC_STEP2: "step2",
    _SYNC_UPDATE: "update",
}


class Reason(str):
    """A refusal's English text that also keeps its message (an English msgid with ``%(name)s``
    placeholders) and parameters, so an adapter can say it in the reader's language
    (codedraft.collab.messages); the core itself knows no languages."""

    msgid: str
    params: Mapping[str, Any]

    def __new__(cls, msgid: str, params: Mapping[str, Any] | None = None) -> Reason:
        params = dict(params or {})
        made = super().__new__(cls, msgid % params if params else msgid)
        made.msgid, made.params = msgid, params
        return made


class ProtocolError(Exception):
    """A message was refused; ``reason`` is safe to send back to the sender (no internals).

    ``reason`` is a message with ``%(name)s`` placeholders filled from ``params``."""

    def __init__(self, reason: str, **params: Any) -> None:
        self.reason = Reason(reason, params)
        super().__init__(str(self.reason))


class ReadOnly(ProtocolError):
    """A sender without write access sent an update that would change the clause."""


class CorruptHistory(ValueError):
    """A stored snapshot or update could not be applied when rebuilding a clause."""


class AwarenessEntry(NamedTuple):
    """One client's presence as announced in an awareness update; ``state`` None means "left"."""

    clock: int
    state: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What ``ClauseDocument.receive`` asks the adapter to do with a message.

    ``reply`` goes back to the sender only; ``update`` is the new part of the document, to be
    persisted before ``broadcast`` is sent to the other peers of the clause; ``awareness`` holds
    the parsed presence entries of an awareness message; ``deferred`` says the update waits for
    one it depends on (it is not persisted yet, so it must not be acknowledged).
    """

    kind: MessageKind
    reply: bytes | None = None
    update: bytes | None = None
    broadcast: bytes | None = None
    awareness: Mapping[int, AwarenessEntry] | None = None
    deferred: bool = False


# --- wire format -----------------------------------------------------------------------------


class _Reader:
    """Strict lib0 decoder: every read is bounds-checked and raises ProtocolError."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def var_uint(self) -> int:
        value = 0
        shift = 0
        while True:
            if self._pos >= len(self._data):
                raise ProtocolError("%(what)s is truncated", what=self._what)
            byte = self._data[self._pos]
            self._pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if value > _MAX_VAR_UINT:
                raise ProtocolError("%(what)s holds an integer out of range", what=self._what)
            if byte < 0x80:
                return value

    def raw(self, count: int) -> bytes:
        end = self._pos + count
        if end > len(self._data):
            raise ProtocolError("%(what)s is truncated", what=self._what)
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def var_bytes(self) -> bytes:
        return self.raw(self.var_uint())

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("%(what)s holds a string that is not UTF-8", what=self._what) from None

    def at_end(self) -> bool:
        return self._pos == len(self._data)

    def expect_end(self) -> None:
        if not self.at_end():
            raise ProtocolError("%(what)s has trailing bytes", what=self._what)


def _read_var_int(reader: _Reader) -> int:
    """Read a lib0 signed varint (sticky index association)."""
    first = reader.raw(1)[0]
    negative = bool(first & 0x40)
    value = first & 0x3F
    shift = 6
    byte = first
    while byte & 0x80:
        byte = reader.raw(1)[0]
        value |= (byte & 0x7F) << shift
        shift += 7
        if shift > 60:
            raise ProtocolError("sticky index holds an integer out of range")
    return -value if negative else value


def _var_uint(value: int) -> bytes:
    """Encode a non-negative integer as a lib0 varuint."""
    if value < 0 or value > _MAX_VAR_UINT:
        raise ValueError(f"{value} cannot be encoded as a varuint")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def _var_bytes(data: bytes) -> bytes:
    return _var_uint(len(data)) + data


def _sync_message(sync_type: int, data: bytes) -> bytes:
    return _var_uint(_MESSAGE_SYNC) + _var_uint(sync_type) + _var_bytes(data)


def pack_frames(frames: Iterable[bytes]) -> bytes:
    """Several y-protocols frames in one binary: each as a varuint length and its bytes (lib0's
    writeVarUint8Array), one after another. The server's broadcasts carry edits this way."""
    return b"".join(_var_bytes(frame) for frame in frames)


def unpack_frames(packed: bytes) -> list[bytes]:
    """The frames of :func:`pack_frames`. Raises ProtocolError if ``packed`` is cut short."""
    reader = _Reader(packed, "frames")
    frames = []
    while not reader.at_end():
        frames.append(reader.var_bytes())
    return frames


def sync_update_message(update: bytes) -> bytes:
    """Frame a document update (e.g. from ``apply_text``) as a y-websocket sync-update message."""
    return _sync_message(_SYNC_UPDATE, update)


class _Frame(NamedTuple):
    kind: MessageKind
    payload: bytes


def _parse_frame(message: bytes, max_bytes: int) -> _Frame:
    """Split a websocket message into its kind and payload, refusing anything malformed."""
    if len(message) > max_bytes:
        raise ProtocolError("message of %(size)d bytes exceeds the %(limit)d-byte limit", size=len(message),
                            limit=max_bytes)
    reader = _Reader(message, "message")
    message_type = reader.var_uint()
    if message_type == _MESSAGE_SYNC:
        sync_type = reader.var_uint()
        kind = _SYNC_KINDS.get(sync_type)
        if kind is None:
            raise ProtocolError("unknown sync message type %(type)d", type=sync_type)
    elif message_type == _MESSAGE_AWARENESS:
        kind = "awareness"
    else:
        raise ProtocolError("unknown message type %(type)d", type=message_type)
    payload = reader.var_bytes()
    reader.expect_end()
    return _Frame(kind, payload)


def _decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """Decode a y-protocols state vector (client id -> next expected clock)."""
    reader = _Reader(state_vector, "state vector")
    count = reader.var_uint()
    clocks: dict[int, int] = {}
    for _ in range(count):
        client = reader.var_uint()
        clocks[client] = reader.var_uint()
    reader.expect_end()
    return clocks


# --- awareness -------------------------------------------------------------------------------


def _parse_awareness_state(raw: str) -> dict[str, Any] | None:
    """Parse one client's awareness state: a JSON object, or ``null`` when the client left."""
    if nesting_exceeds(raw, MAX_JSON_DEPTH):
        raise ProtocolError("awareness state is nested too deeply")
    try:
        state = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("awareness state is not valid JSON") from None
    if state is not None and not isinstance(state, dict):
        raise ProtocolError("awareness state must be a JSON object or null")
    return state


def parse_awareness(payload: bytes) -> dict[int, AwarenessEntry]:
    """Decode a y-protocols awareness update (the payload of an awareness message).

    Returns client id -> (clock, state), state None meaning the client left.  Raises
    ProtocolError on truncation, trailing bytes, more than ``MAX_AWARENESS_CLIENTS`` entries,
    non-UTF-8 strings, invalid or too deeply nested JSON, or a state that is not an object.
    """
    reader = _Reader(payload, "awareness update")
    count = reader.var_uint()
    if count > MAX_AWARENESS_CLIENTS:
        raise ProtocolError("awareness update names %(count)d clients; the limit is %(limit)d", count=count,
                            limit=MAX_AWARENESS_CLIENTS)
    entries: dict[int, AwarenessEntry] = {}
    for _ in range(count):
        client_id = reader.var_uint()
        clock = reader.var_uint()
        entries[client_id] = AwarenessEntry(clock, _parse_awareness_state(reader.var_string()))
    reader.expect_end()
    return entries


def awareness_message(entries: Mapping[int, AwarenessEntry]) -> bytes:
    """Frame an awareness message carrying these client states (a None state as ``null``)."""
    body = bytearray(_var_uint(len(entries)))
    for client_id, entry in entries.items():
        state = "null" if entry.state is None else json.dumps(entry.state, ensure_ascii=False, separators=(",", ":"))
        body += _var_uint(client_id) + _var_uint(entry.clock) + _var_bytes(state.encode("utf-8"))
    return _var_uint(_MESSAGE_AWARENESS) + _var_bytes(bytes(body))


def awareness_payload(message: bytes, max_bytes: int) -> bytes | None:
    """The awareness update inside ``message``, or None when it is a sync message.

    Raises ProtocolError for a message over ``max_bytes`` or one that is not a well-formed frame.
    """
    frame = _parse_frame(message, max_bytes)
    return frame.payload if frame.kind == "awareness" else None


def awareness_removal(last_clocks: Mapping[int, int]) -> bytes:
    """Frame an awareness message telling peers that these clients have left.

    ``last_clocks`` maps each departed client id to the last awareness clock seen from it:
    y-protocols only drops a state on a ``null`` that carries a clock at least that recent,
    so the clock must be the real one (as y-websocket's server does on disconnect).
    """
    return awareness_message({client_id: AwarenessEntry(clock, None) for client_id, clock in last_clocks.items()})


# --- update structure ------------------------------------------------------------------------
#
# pycrdt 0.14.13 (Yrs) integrates a struct whose clock lies beyond what it has seen from that
# client when the struct's origins are present: the text changes, the state vector does not, and
# the transaction reports an empty update, so the edit is neither persisted nor broadcast.  The
# server therefore reads the shape of every update itself and only hands Yrs updates whose
# dependencies are all present; the others wait in the clause's held list.

_STRUCT_GC = 0
_STRUCT_SKIP = 10
_CONTENT_DELETED = 1
_CONTENT_JSON = 2
_CONTENT_BINARY = 3
_CONTENT_STRING = 4
_CONTENT_EMBED = 5
_CONTENT_FORMAT = 6
_CONTENT_ANY = 8
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20
_MAX_ANY_DEPTH = 16


class _Struct(NamedTuple):
    client: int
    clock: int
    length: int
    skip: bool


class _UpdateShape(NamedTuple):
    """What an update contains, as far as integration order is concerned."""

    structs: list[_Struct]
    dependencies: list[tuple[int, int]]  # (client, clock) of origins and parents it refers to
    delete_ranges: int


class _HeldUpdate(NamedTuple):
    """An update waiting for one it depends on; ``persisted`` if it is already in the log."""

    update: bytes
    shape: _UpdateShape
    persisted: bool = False


def _skip_any(reader: _Reader, depth: int = 0) -> None:
    """Skip one lib0 ``any`` value (ContentAny), refusing absurd nesting."""
    if depth > _MAX_ANY_DEPTH:
        raise ProtocolError("update content is nested too deeply")
    tag = reader.raw(1)[0]
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return
    if tag == 125:
        _read_var_int(reader)
    elif tag == 124:
        reader.raw(4)
    elif tag in (123, 122):
        reader.raw(8)
    elif tag in (119, 116):
        reader.var_bytes()
    elif tag == 118:
        for _ in range(reader.var_uint()):
            reader.var_bytes()
            _skip_any(reader, depth + 1)
    elif tag == 117:
        for _ in range(reader.var_uint()):
            _skip_any(reader, depth + 1)
    else:
        raise ProtocolError("update holds an unknown value type")


def _read_item_content(reader: _Reader, content_ref: int) -> int:
    """Read an item's content; return its length in clock units (UTF-16 units for strings)."""
    if content_ref == _CONTENT_DELETED:
        return reader.var_uint()
    if content_ref == _CONTENT_STRING:
        text = reader.var_string()
        if "\x00" in text:
            # PostgreSQL's text columns refuse it: the clause's plain text could not be stored,
            # and with it every edit of the same group commit.
            raise ProtocolError("update inserts a NUL character, which a clause cannot hold")
        return utf16_length(text)
    if content_ref in (_CONTENT_JSON, _CONTENT_ANY):
        count = reader.var_uint()
        for _ in range(count):
            if content_ref == _CONTENT_JSON:
                reader.var_bytes()
            else:
                _skip_any(reader)
        return count
    if content_ref == _CONTENT_BINARY or content_ref == _CONTENT_EMBED:
        reader.var_bytes()
        return 1
    if content_ref == _CONTENT_FORMAT:
        reader.var_bytes()
        reader.var_bytes()
        return 1
    # Nested shared types, subdocuments and Yrs-only moves never come from a clause editor.
    raise ProtocolError("update holds content of type %(type)d, not allowed in a clause", type=content_ref)


def _read_update_shape(update: bytes) -> _UpdateShape:
    """Parse a Yjs v1 update far enough to know its structs, dependencies and deletions.

    Raises ProtocolError on anything malformed, truncated, or carrying nested types.
    """
    reader = _Reader(update, "update")
    structs: list[_Struct] = []
    dependencies: list[tuple[int, int]] = []
    for _ in range(reader.var_uint()):
        count = reader.var_uint()
        client = reader.var_uint()
        clock = reader.var_uint()
        for _ in range(count):
            info = reader.raw(1)[0]
            kind = info & 0x1F
            if kind in (_STRUCT_GC, _STRUCT_SKIP):
                length = reader.var_uint()
                structs.append(_Struct(client, clock, length, kind == _STRUCT_SKIP))
                clock += length
                continue
            if info & _HAS_ORIGIN:
                dependencies.append((reader.var_uint(), reader.var_uint()))
            if info & _HAS_RIGHT_ORIGIN:
                dependencies.append((reader.var_uint(), reader.var_uint()))
            if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
                if reader.var_uint() == 1:
                    reader.var_bytes()  # name of the root type; checked after applying
                else:
                    dependencies.append((reader.var_uint(), reader.var_uint()))
                if info & _HAS_PARENT_SUB:
                    reader.var_bytes()
            length = _read_item_content(reader, kind)
            structs.append(_Struct(client, clock, length, False))
            clock += length
    delete_ranges = 0
    for _ in range(reader.var_uint()):
        reader.var_uint()  # client
        for _ in range(reader.var_uint()):
            reader.var_uint()
            reader.var_uint()
            delete_ranges += 1
    reader.expect_end()
    return _UpdateShape(structs, dependencies, delete_ranges)


def _covered_after(shape: _UpdateShape, known: Mapping[int, int]) -> dict[int, int] | None:
    """Per client, the clock the document would reach by applying ``shape`` on top of ``known``.

    None if some struct starts beyond what is known (a gap: an earlier update of that client is
    missing) or refers to an origin or parent that neither the document nor the update has.
    """
    reach = dict(known)
    for struct in shape.structs:
        if struct.skip:
            continue
        if struct.clock > reach.get(struct.client, 0):
            return None
        reach[struct.client] = max(reach.get(struct.client, 0), struct.clock + struct.length)
    for client, clock in shape.dependencies:
        if clock >= reach.get(client, 0):
            return None
    return reach


def _check_authors(shape: _UpdateShape, known: Mapping[int, int], writes_as: Callable[[int, bool], bool]) -> None:
    """Refuse an update whose new structs (beyond what ``known`` holds) are under a client id the
    sender may not write as; ``writes_as`` is also told whether the id has a history here already.
    Structs already known are skipped: a peer's sync step 2 carries everyone's history, and what
    the document holds already adds nothing."""
    for client in {struct.client for struct in shape.structs
                   if not struct.skip and struct.clock + struct.length > known.get(struct.client, 0)}:
        if not writes_as(client, known.get(client, 0) > 0):
            raise ProtocolError("the update writes under another person's editor id")


def update_clients(update: bytes) -> set[int]:
    """The Yjs client ids an update carries structs of (none if it does not decode)."""
    try:
        shape = _read_update_shape(update)
    except ProtocolError:
        return set()
    return {struct.client for struct in shape.structs if not struct.skip}


def _dependency_order(
    updates: list[bytes], shapes: list[_UpdateShape], known: Mapping[int, int]
) -> tuple[list[bytes], list[_HeldUpdate]]:
    """Order updates so each comes after everything it builds on, starting from ``known``.

    Returns the applicable updates in order, and those whose dependencies are absent.
    """
    reach = dict(known)
    ordered: list[bytes] = []
    waiting: list[_HeldUpdate] = []
    for update, shape in zip(updates, shapes, strict=True):
        extended = _covered_after(shape, reach)
        if extended is None:
            waiting.append(_HeldUpdate(update, shape))
            continue
        reach = extended
        ordered.append(update)
        progress = bool(waiting)
        while progress:
            progress = False
            for held in waiting:
                extended = _covered_after(held.shape, reach)
                if extended is not None:
                    reach = extended
                    ordered.append(held.update)
                    waiting.remove(held)
                    progress = True
                    break
    return ordered, waiting


def depends_on_missing(update: bytes, state_vector: bytes) -> bool:
    """True if a replica at ``state_vector`` lacks something ``update`` builds on.

    Yjs keeps such updates pending by itself; pycrdt 0.14.13 does not (see above), so any
    pycrdt replica fed out-of-order updates must hold them back until this returns False.
    Raises ProtocolError if either argument is malformed.
    """
    shape = _read_update_shape(update)
    return _covered_after(shape, _decode_state_vector(state_vector)) is None


# --- suggestions -----------------------------------------------------------------------------
#
# A suggestion lives in the body itself, as a formatting attribute of its characters:
#
# * suggested insertion: text carrying ``SUGGEST_INSERT`` = ``{"id": str, "by": user id}``; it is
#   not part of the accepted text until a chair accepts it (the attribute is dropped);
# * suggested deletion: accepted text carrying ``SUGGEST_DELETE`` = ``{"id": str, "by": user id}``;
#   it stays in the accepted text until accepted (the characters are deleted).
#
# Rejecting does the opposite (the insertion is deleted, the mark dropped). The accepted text is
# what every consumer of "the clause text" reads (ClauseDocument.text); ``raw_text`` is what the
# editors show, suggestions included.

#: Attribute of suggested insertions.
SUGGEST_INSERT = "suggestion"
#: Attribute of text suggested for deletion.
SUGGEST_DELETE = "suggestion_delete"
_SUGGESTION_KEYS = (SUGGEST_INSERT, SUGGEST_DELETE)
#: Longest suggestion id accepted from a suggester.
MAX_SUGGESTION_ID = 64
#: What a suggestion id may be: the routes that decide suggestions take these and nothing else.
# The largest id an account can have (a 32-bit integer column on PostgreSQL): a mark naming a
# larger one names nobody. Looking such a number up made the suggestion list fail (SQLite cannot
# bind an integer over 64 bits, PostgreSQL refuses one over 32).
MAX_ACCOUNT_ID = 2**31 - 1
SUGGESTION_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_SUGGESTION_ID}}}")
# Inserting with these attributes stops text typed next to a suggestion from inheriting it
# (Yjs and Yrs give an insertion the formatting of the character before it).
_PLAIN: dict[str, Any] = {SUGGEST_INSERT: None, SUGGEST_DELETE: None}

SuggestionKind = Literal["insert", "delete"]


class SuggestionMark(NamedTuple):
    """Who suggested a change of some characters, and which suggestion they belong to."""

    id: str
    by: int


class Run(NamedTuple):
    """A stretch of the body with the same suggestion marks (``insert``/``delete`` None: none)."""

    text: str
    insert: SuggestionMark | None
    delete: SuggestionMark | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One pending suggestion (all runs of its id): the words it would add and those it would
    remove, joined in order. ``start`` is the code point offset in the accepted text where it
    begins (for an insertion: where the words would go)."""

    id: str
    by: int
    inserted: str
    deleted: str
    start: int

    @property
    def kind(self) -> SuggestionKind | Literal["replace"]:
        if self.inserted and self.deleted:
            return "replace"
        return "insert" if self.inserted else "delete"


def _mark(value: Any) -> SuggestionMark | None:
    """A suggestion attribute's value as a mark; None when it is not a well-formed one."""
    if not isinstance(value, Mapping):
        return None
    mark_id, by = value.get("id"), value.get("by")
    if not isinstance(mark_id, str) or not SUGGESTION_ID.fullmatch(mark_id):
        return None
    if isinstance(by, bool) or not isinstance(by, int | float) or not 0 <= by <= MAX_ACCOUNT_ID or by != int(by):
        return None
    return SuggestionMark(mark_id, int(by))


_MALFORMED = SuggestionMark("", -1)


def runs_of(delta: Iterable[tuple[Any, Mapping[str, Any] | None]]) -> list[Run]:
    """The body's runs from a pycrdt ``Text.diff()`` (or Yjs ``toDelta()``-like pairs).

    A malformed suggestion attribute (not ``{"id": str, "by": int}``) still counts as a
    suggestion, by nobody (``by`` -1), so garbage never reads as accepted text.
    """
    runs: list[Run] = []
    for content, attributes in delta:
        if not isinstance(content, str):
            continue  # a clause never holds embeds; ignore rather than fail a reader
        insert = delete = None
        if attributes:
            if attributes.get(SUGGEST_INSERT) is not None:
                insert = _mark(attributes[SUGGEST_INSERT]) or _MALFORMED
            if attributes.get(SUGGEST_DELETE) is not None:
                delete = _mark(attributes[SUGGEST_DELETE]) or _MALFORMED
        if runs and runs[-1].insert == insert and runs[-1].delete == delete:
            runs[-1] = Run(runs[-1].text + content, insert, delete)
        else:
            runs.append(Run(content, insert, delete))
    return runs


def accepted_text(runs: Iterable[Run]) -> str:
    """The clause as accepted: suggested insertions left out, text suggested for deletion kept."""
    return "".join(run.text for run in runs if run.insert is None)


def raw_text(runs: Iterable[Run]) -> str:
    """Everything the editors show: the accepted text and every suggested insertion."""
    return "".join(run.text for run in runs)


def suggestion_delta(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """The text with suggestions, for renderers: ``{"text", "insert": {id, by} | None,
    "delete": {id, by} | None}`` per run, in order."""
    return [{"text": run.text,
             "insert": run.insert._asdict() if run.insert else None,
             "delete": run.delete._asdict() if run.delete else None} for run in runs]


def pending_suggestions(runs: Iterable[Run]) -> list[Suggestion]:
    """Every pending suggestion, in the order of its first run; the runs of one id are joined.
    Text both inserted and marked for deletion counts as an insertion of its inserter only."""
    found: dict[str, Suggestion] = {}
    accepted_at = 0
    for run in runs:
        mark = run.insert if run.insert is not None else run.delete
        if mark is not None and mark.by >= 0:
            seen = found.get(mark.id) or Suggestion(mark.id, mark.by, "", "", accepted_at)
            if run.insert is not None:
                seen = Suggestion(seen.id, seen.by, seen.inserted + run.text, seen.deleted, seen.start)
            else:
                seen = Suggestion(seen.id, seen.by, seen.inserted, seen.deleted + run.text, seen.start)
            found[mark.id] = seen
        if run.insert is None:
            accepted_at += len(run.text)
    return list(found.values())


class SuggestionRefused(ProtocolError):
    """A suggester's update would change the accepted text or someone else's suggestion."""


def check_suggestion_event(before: Sequence[Run], delta: Iterable[Mapping[str, Any]], user_id: int) -> None:
    """Refuse (SuggestionRefused) a change, given as the pycrdt text event ``delta`` (lengths in
    UTF-8 bytes) against the ``before`` runs, unless it only adds, changes or removes suggestions
    of ``user_id``:

    * inserted text must carry the user's insertion mark and nothing else;
    * deleted text must be the user's own suggested insertion (withdrawing it);
    * formatting may set or clear the user's deletion mark on accepted text, and re-mark the user's
      own insertions; clearing a mark is allowed only where it is absent or the user's own.
    """
    pieces = _byte_pieces(before)
    index = 0  # into pieces
    offset = 0  # bytes consumed of pieces[index]

    def take(count: int) -> list[Run]:
        nonlocal index, offset
        taken: list[Run] = []
        while count > 0:
            if index >= len(pieces):
                raise SuggestionRefused("the update reaches past the end of the clause")
            data, run = pieces[index]
            part = data[offset:offset + count]
            taken.append(run)
            count -= len(part)
            offset += len(part)
            if offset >= len(data):
                index, offset = index + 1, 0
        return taken

    for change in delta:
        if "insert" in change:
            attributes = change.get("attributes") or {}
            if set(attributes) - set(_SUGGESTION_KEYS) or attributes.get(SUGGEST_DELETE) is not None:
                raise SuggestionRefused("a suggestion may only carry your insertion mark")
            mark = _mark(attributes.get(SUGGEST_INSERT))
            if mark is None or mark.by != user_id or not isinstance(change["insert"], str):
                raise SuggestionRefused("you may only suggest text, marked as your suggestion")
        elif "delete" in change:
            for run in take(int(change["delete"])):
                if run.insert is None or run.insert.by != user_id:
                    raise SuggestionRefused("you may only remove your own suggested text")
        elif "retain" in change:
            attributes = change.get("attributes")
            runs = take(int(change["retain"]))
            if attributes:
                _check_format(runs, attributes, user_id)
        else:
            raise SuggestionRefused("the update makes a change a suggestion cannot make")


def _check_format(runs: Iterable[Run], attributes: Mapping[str, Any], user_id: int) -> None:
    if set(attributes) - set(_SUGGESTION_KEYS):
        raise SuggestionRefused("a suggestion may only change suggestion marks")
    for key, value in attributes.items():
        mark = None if value is None else _mark(value)
        if value is not None and (mark is None or mark.by != user_id):
            raise SuggestionRefused("you may only mark text as your own suggestion")
        for run in runs:
            current = run.insert if key == SUGGEST_INSERT else run.delete
            if current is not None and current.by != user_id:
                raise SuggestionRefused("you may not change another person's suggestion")
            if key == SUGGEST_INSERT and value is None and current is not None:
                raise SuggestionRefused("only a chair may accept a suggestion")
            if key == SUGGEST_INSERT and value is not None and run.insert is None:
                raise SuggestionRefused("you may not mark accepted text as inserted")
            if key == SUGGEST_DELETE and value is not None and run.insert is not None:
                raise SuggestionRefused("delete your own suggested text instead of marking it")


def _byte_pieces(runs: Iterable[Run]) -> list[tuple[bytes, Run]]:
    return [(run.text.encode("utf-8"), run) for run in runs]


@dataclass(frozen=True, slots=True)
class SettleSuggestions:
    """A server-side change: accept the suggestions ``accept`` and reject ``reject`` (ids)."""

    accept: frozenset[str] = frozenset()
    reject: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SuggestText:
    """A server-side change: suggest, as ``by``, the edits that turn the accepted text into
    ``text`` (deleted passages marked, new words inserted as suggestions), all under ``id``."""

    text: str
    by: int
    id: str


#: What ClauseDocument.apply_change takes: a new accepted text, or a change of suggestions.
LiveChange = str | SettleSuggestions | SuggestText


# --- the clause document ---------------------------------------------------------------------


def _is_rust_panic(exc: BaseException) -> bool:
    # pyo3 turns a Rust panic into pyo3_runtime.PanicException, a BaseException that cannot be
    # imported by name; it must not escape as a crash of the socket handler.
    return type(exc).__name__ == "PanicException"


class _YrsRefused(Exception):
    """Yrs raised, or panicked, on what it was given."""


@contextmanager
def _yrs_call() -> Iterator[None]:
    """Run a call into Yrs; its exceptions and its panics come out as ``_YrsRefused``, the one
    thing callers catch, so that no bad input escapes as a crash of the socket handler."""
    try:
        yield
    except Exception as exc:
        raise _YrsRefused(str(exc)) from None
    except BaseException as exc:
        if not _is_rust_panic(exc):
            raise
        raise _YrsRefused("Rust panic") from None


def _apply_to(doc: Doc[Text], update: bytes) -> None:
    """Apply ``update`` to ``doc``, or raise ProtocolError: Yrs refused it (a Rust panic
    included), or it touched a shared type other than the body (the browser only ever edits the
    body; anything else is a forged update). The caller restores ``doc`` if it must."""
    try:
        with _yrs_call():
            doc.apply_update(update)
    except _YrsRefused:
        raise ProtocolError("update could not be applied") from None
    if set(doc.keys()) - {BODY}:
        raise ProtocolError("update touches a shared type other than %(body)s", body=repr(BODY))


def _checked_shape(update: bytes) -> _UpdateShape:
    """Validate an update both with our reader and with Yrs' decoder; return its shape."""
    shape = _read_update_shape(update)
    if not _decodes(update):
        raise ProtocolError("update does not decode")
    return shape


def _merge(updates: list[bytes]) -> bytes | None:
    if not updates:
        return None
    if len(updates) == 1:
        return updates[0]
    return merge_updates(*updates)


def _decodes(update: bytes) -> bool:
    """True if ``update`` is a well-formed Yjs v1 update (decoding it fully, changing nothing)."""
    try:
        with _yrs_call():
            get_state(update)
    except _YrsRefused:
        return False
    return True


class ClauseDocument:
    """The server replica of one clause's Yjs document (a Y.Text named ``body``)."""

    def __init__(
        self, *, max_message_bytes: int = MAX_MESSAGE_BYTES, client_id: int | None = None
    ) -> None:
        """Create an empty clause document; messages above ``max_message_bytes`` are refused.

        ``client_id`` (the Yjs client id of the server's own edits) is random by default; pass
        one only to make tests reproducible, and never give two live replicas the same id.
        """
        if max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be positive")
        self._max_message_bytes = max_message_bytes
        self._emitted: list[bytes] = []
        # Everything applied so far, as one encoded state plus the updates since, so that a
        # rejected update can be undone by rebuilding (Yrs has no transaction rollback).
        self._recovery_base = b""
        self._recovery_tail: list[bytes] = []
        # Updates waiting for an update they depend on (see _covered_after).
        self._held: list[_HeldUpdate] = []
        empty: Doc[Text] = Doc(client_id=client_id)
        self._install(empty)

    @classmethod
    def from_history(
        cls,
        snapshot: bytes | None,
        updates: Iterable[bytes],
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        client_id: int | None = None,
    ) -> ClauseDocument:
        """Rebuild a clause from its stored snapshot (if any) and the updates stored after it.

        Updates already contained in the snapshot are harmless (Yjs updates are idempotent), and
        updates stored out of order (e.g. by two server processes) are applied in dependency
        order.  A stored update whose dependency was never stored is held, not applied.
        Raises CorruptHistory naming the first stored item that does not decode.
        """
        stored_updates = list(updates)
        replayed = cls._replayed_in_log_order(snapshot, stored_updates, max_message_bytes=max_message_bytes,
                                              client_id=client_id)
        if replayed is not None:
            return replayed
        return cls._replayed_in_dependency_order(snapshot, stored_updates, max_message_bytes=max_message_bytes,
                                                 client_id=client_id)

    @classmethod
    def _replayed_in_log_order(
        cls, snapshot: bytes | None, stored_updates: list[bytes], *, max_message_bytes: int, client_id: int | None
    ) -> ClauseDocument | None:
        """The usual case, cheaply: the log's order is an order in which everything applies.

        Stored updates were validated on the way in, so they are applied as they are, in one
        transaction, and then checked by Yrs alone: each must lie within the state reached. An
        update whose dependency is not in the log stays out of that state, and so would one that a
        later transaction completes (see the module docstring); within this one transaction Yrs
        integrates an update stored ahead of the one it follows once that one comes. Reading
        every update's structure in Python cost 50 microseconds an update, 80% of opening a
        clause with 10,000 of them. None when the check fails or Yrs refuses an
        update: the caller then takes the careful path, which also names a corrupt update.
        """
        clause = cls(max_message_bytes=max_message_bytes, client_id=client_id)
        ordered = stored_updates if snapshot is None else [snapshot, *stored_updates]
        try:
            with _yrs_call():
                with clause._doc.transaction():
                    for stored in ordered:
                        clause._doc.apply_update(stored)
                reached = clause.state_vector()
                # The part of an update beyond ``reached`` starts with its number of clients
                # with structs left: 0 when all of it was integrated.
                if any(get_update(stored, reached)[0] != 0 for stored in ordered):
                    return None
        except _YrsRefused:
            return None
        clause._emitted.clear()
        clause._recovery_base = clause.encode_state()
        return clause

    @classmethod
    def _replayed_in_dependency_order(
        cls, snapshot: bytes | None, stored_updates: list[bytes], *, max_message_bytes: int, client_id: int | None
    ) -> ClauseDocument:
        """Every stored update read and validated, applied in dependency order; those whose
        dependencies were never stored held back as if just received."""
        clause = cls(max_message_bytes=max_message_bytes, client_id=client_id)
        reach: dict[int, int] = {}
        if snapshot is not None:
            # A snapshot is one encode_state(): gap-free, so Yrs' own summary of it is exact
            # and much cheaper than reading its structs here.
            if not _decodes(snapshot):
                raise CorruptHistory("stored snapshot does not decode")
            reach = _decode_state_vector(get_state(snapshot))
        shapes: list[_UpdateShape] = []
        for number, stored in enumerate(stored_updates):
            try:
                shapes.append(_checked_shape(stored))
            except ProtocolError as exc:
                raise CorruptHistory(f"stored update #{number}: {exc.reason}") from None
        ordered, waiting = _dependency_order(stored_updates, shapes, reach)
        if snapshot is not None:
            ordered.insert(0, snapshot)
        # One transaction for the whole history: one integration pass instead of thousands.
        try:
            with clause._doc.transaction():
                for stored in ordered:
                    clause._doc.apply_update(stored)
        except Exception as exc:
            raise CorruptHistory(f"stored history could not be applied: {exc}") from exc
        clause._emitted.clear()
        clause._recovery_base = clause.encode_state()
        # Stored updates whose dependencies were never stored wait, as if just received.
        for held in waiting:
            clause._hold(held.update, held.shape, persisted=True)
        return clause

    def _install(self, doc: Doc[Text]) -> None:
        self._doc: Doc[Text] = doc
        self._body: Text = doc.get(BODY, type=Text)
        self._clocks: Mapping[int, int] | None = None
        doc.observe(self._record_transaction)

    def _record_transaction(self, event: TransactionEvent) -> None:
        # Yrs only reports transactions that integrated new structs or deleted something not yet
        # deleted, so a duplicate or already-applied update records nothing here (or an empty
        # update, which _take_emitted drops).
        self._emitted.append(event.update)
        self._clocks = None  # every change of the state vector comes through here

    def _take_emitted(self) -> bytes | None:
        emitted, self._emitted = self._emitted, []
        return _merge([update for update in emitted if update != _EMPTY_UPDATE])

    def _remember(self, update: bytes) -> None:
        self._recovery_tail.append(update)
        if len(self._recovery_tail) >= _RECOVERY_TAIL_LIMIT:
            self._recovery_base = self.encode_state()
            self._recovery_tail.clear()

    def _restore(self) -> None:
        """Rebuild the replica from the recovery log, discarding a half-applied update."""
        # Same client id: its clock continues from the restored state, so nothing collides.
        doc: Doc[Text] = Doc(client_id=self._doc.client_id)
        with doc.transaction():
            for known_good in [self._recovery_base, *self._recovery_tail]:
                if known_good:
                    doc.apply_update(known_good)
        self._emitted = []
        self._install(doc)

    # -- reading ------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The clause as accepted: pending suggested insertions left out, text suggested for
        deletion kept. What drafts, exports, search, history and comment anchors read."""
        return accepted_text(self.runs())

    @property
    def raw_text(self) -> str:
        """Everything the editors show: the accepted text with pending suggested insertions."""
        return str(self._body)

    def runs(self) -> list[Run]:
        """The body as runs of equal suggestion marks (one run when nothing is suggested)."""
        return runs_of(self._body.diff())

    def suggestions(self) -> list[Suggestion]:
        """The pending suggestions, in the order they appear in the text."""
        return pending_suggestions(self.runs())

    def accepted_to_raw(self, position: int, assoc: Literal["before", "after"] = "after") -> int:
        """Where accepted-text code point ``position`` lies in ``raw_text``: at the character it
        names ("after"), or just after the character before it ("before")."""
        positions = _accepted_positions(self.runs())
        if not 0 <= position < len(positions):
            raise ValueError("position is outside the clause text")
        if assoc == "before" and position > 0:
            return positions[position - 1] + 1
        return positions[position]

    def raw_to_accepted(self, position: int) -> int:
        """How many accepted characters come before ``raw_text`` code point ``position``."""
        positions = _accepted_positions(self.runs())
        return bisect_left(positions, position, 0, len(positions) - 1)

    def state_vector(self) -> bytes:
        """The encoded state vector (what this replica has seen from each client)."""
        return self._doc.get_state()

    def encode_state(self) -> bytes:
        """The whole document as one update: the snapshot to store when compacting the log."""
        return self._doc.get_update()

    def diff_since(self, state_vector: bytes) -> bytes:
        """The update a replica at ``state_vector`` is missing.

        Raises ProtocolError if the state vector does not decode.
        """
        _decode_state_vector(state_vector)
        try:
            return self._doc.get_update(state_vector)
        except Exception:
            raise ProtocolError("state vector does not decode") from None

    def sync_step1(self) -> bytes:
        """The framed sync step 1 the server sends when a peer joins the clause."""
        return _sync_message(_SYNC_STEP1, self.state_vector())

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, message: bytes, *, may_write: bool, suggester: int | None = None,
                writes_as: Callable[[int, bool], bool] | None = None) -> SyncOutcome:
        """Validate and handle one websocket message from a peer.

        Step 1 (allowed for readers) yields a step-2 ``reply``.  Step 2 and updates are applied
        when ``may_write``; the outcome's ``update`` is the new part (None when nothing was new,
        e.g. a resend) and ``broadcast`` frames it for the other peers.  An update that depends
        on one not received yet is held (``deferred``) and applied, and reported in ``update``,
        once its dependencies arrive; for a plain update the reply is then a step 1 asking the
        sender for what is missing.  Awareness messages are validated, not applied, and passed
        through as ``broadcast``.

        Raises ProtocolError (document unchanged) on an oversize, truncated, unknown or
        undecodable message, or an update touching anything but the ``body`` text; raises
        ReadOnly when a sender without write access sends an update that would change the
        clause (an update that adds nothing, like a reader's step 2 on join, is accepted).

        ``suggester`` (a user id), for a sender who may not write: an update that only adds,
        changes or withdraws that user's own suggestions is applied (checked on a scratch copy
        first, see :func:`check_suggestion_event`); any other change raises SuggestionRefused.
        Writers never pay for that check.

        ``writes_as(client_id, has_history)``, when given, says whether the sender may add to the
        history of that Yjs client id; an update adding to one it may not raises ProtocolError. Yjs trusts
        the ids an update names: without this, anyone who saw a writer's id (it is their presence
        id) could take the clocks the writer's next edit will use, and that edit, acknowledged,
        would be dropped as a duplicate.
        """
        frame = _parse_frame(message, self._max_message_bytes)
        if frame.kind == "awareness":
            entries = parse_awareness(frame.payload)
            return SyncOutcome(kind="awareness", broadcast=message, awareness=entries)
        if frame.kind == "step1":
            step2 = _sync_message(_SYNC_STEP2, self.diff_since(frame.payload))
            return SyncOutcome(kind="step1", reply=step2)
        shape = _checked_shape(frame.payload)
        known = self._known_clocks()
        if writes_as is not None:
            _check_authors(shape, known, writes_as)
        if not may_write:
            if not self._would_change(frame.payload, shape, known):
                return SyncOutcome(kind=frame.kind)
            if suggester is None:
                raise ReadOnly("you may read this clause but not edit it")
            if _covered_after(shape, known) is None:
                # Not held: a held update would be applied later unchecked. The sender's answer
                # to this step 1 carries it again, with what it builds on.
                ask = self.sync_step1() if frame.kind == "update" else None
                return SyncOutcome(kind=frame.kind, reply=ask, deferred=True)
            self._check_suggestion(frame.payload, suggester)
        elif _covered_after(shape, known) is None:
            self._hold(frame.payload, shape)
            # Asking again after a step 2 could ping-pong forever if the sender lacks the
            # dependency too; after a plain update it recovers a lost message.
            ask = self.sync_step1() if frame.kind == "update" else None
            return SyncOutcome(kind=frame.kind, reply=ask, deferred=True)
        new_parts = [self._apply(frame.payload)]
        new_parts.extend(self._apply_ready_held())
        new_part = _merge([part for part in new_parts if part is not None])
        if new_part is None:
            return SyncOutcome(kind=frame.kind)
        return SyncOutcome(kind=frame.kind, update=new_part,
                           broadcast=sync_update_message(new_part))

    def apply_stored(self, update: bytes) -> bytes | None:
        """Apply an update that is already in the log (stored by another server process).

        Returns the new part of updates it released from the held list, which this process must
        persist and broadcast; None if it released nothing.  The stored update itself is not
        returned, so it is not stored twice.  Raises ProtocolError if it does not decode.
        """
        shape = _checked_shape(update)
        if _covered_after(shape, self._known_clocks()) is None:
            self._hold(update, shape, persisted=True)
            return None
        self._apply(update)
        return _merge([part for part in self._apply_ready_held() if part is not None])

    @property
    def holds_back(self) -> bool:
        """Whether an update waits here for one it builds on."""
        return bool(self._held)

    def _known_clocks(self) -> Mapping[int, int]:
        """The state vector, decoded; kept until the next change. Every message checks against it
        (twice for an edit), and encoding and decoding it each time was a tenth of the core's
        time under the throughput benchmark's load."""
        if self._clocks is None:
            self._clocks = _decode_state_vector(self.state_vector())
        return self._clocks

    def _would_change(self, update: bytes, shape: _UpdateShape, known: Mapping[int, int]) -> bool:
        """Would applying ``update`` change this clause?  Decides without touching it."""
        if any(not struct.skip and struct.clock + struct.length > known.get(struct.client, 0)
               for struct in shape.structs):
            return True
        if not shape.delete_ranges:
            return False
        # Only the delete set can still add something; find out on a scratch copy.
        scratch: Doc[Text] = Doc()
        scratch.get(BODY, type=Text)
        scratch.apply_update(self.encode_state())
        changed: list[bytes] = []
        scratch.observe(lambda event: changed.append(event.update))
        try:
            scratch.apply_update(update)
        except Exception:
            raise ProtocolError("update could not be applied") from None
        return bool(changed)

    def _check_suggestion(self, update: bytes, user_id: int) -> None:
        """Refuse ``update`` unless it only touches ``user_id``'s own suggestions: applied to a
        scratch copy, its change of the body is checked run by run, and the accepted text must be
        the same after it."""
        scratch: Doc[Text] = Doc()
        body = scratch.get(BODY, type=Text)
        scratch.apply_update(self.encode_state())
        before = runs_of(body.diff())
        deltas: list[list[dict[str, Any]]] = []
        body.observe(lambda event: deltas.append(list(event.delta)))  # type: ignore[attr-defined]
        _apply_to(scratch, update)
        if len(deltas) > 1:  # one update is one transaction; never seen otherwise
            raise SuggestionRefused("the update could not be checked as one change")
        for delta in deltas:
            check_suggestion_event(before, delta, user_id)
        if accepted_text(runs_of(body.diff())) != accepted_text(before):
            raise SuggestionRefused("a suggestion may not change the accepted text")

    def _hold(self, update: bytes, shape: _UpdateShape, *, persisted: bool = False) -> None:
        """Keep an update until its dependencies arrive; the oldest go first when full."""
        self._held.append(_HeldUpdate(update, shape, persisted))
        while (len(self._held) > _MAX_HELD_UPDATES
               or sum(len(held.update) for held in self._held) > _MAX_HELD_BYTES):
            self._held.pop(0)  # its sender resends it on the next sync handshake

    def _apply_ready_held(self) -> list[bytes | None]:
        """Apply held updates whose dependencies are now present, until none is ready."""
        applied: list[bytes | None] = []
        progress = True
        while progress and self._held:
            progress = False
            known = self._known_clocks()
            for held in list(self._held):
                if _covered_after(held.shape, known) is None:
                    continue
                self._held.remove(held)
                try:
                    new_part = self._apply(held.update)
                except ProtocolError:
                    new_part = None  # rolled back; it came from a peer, already answered
                if not held.persisted:
                    applied.append(new_part)
                progress = True
                break
        return applied

    def _apply(self, update: bytes) -> bytes | None:
        """Apply a validated update whose dependencies are present; return its new part.

        On any failure the replica is rebuilt as it was and ProtocolError is raised.
        """
        self._emitted = []
        try:
            _apply_to(self._doc, update)
        except ProtocolError:
            self._restore()
            raise
        new_part = self._take_emitted()
        if new_part is not None:
            self._remember(new_part)
        return new_part

    # -- server-side edits --------------------------------------------------------------------

    def apply_text(
        self,
        new_text: str,
        origin: Hashable | None = None,
        *,
        timeout: float = DEFAULT_DIFF_TIMEOUT,
    ) -> bytes | None:
        """Make the body equal ``new_text`` by a minimal edit; return the update (None if equal).

        ``new_text`` is the new accepted text: pending suggestions stay where they are (a passage
        replaced around one takes it along).  Concurrent edits outside the changed passages and
        comment anchors survive.  The update
        must be persisted and broadcast (``sync_update_message``) like a peer's.  Raises
        ValueError if ``new_text`` holds a lone surrogate.
        """
        runs = self.runs()
        accepted = accepted_text(runs)
        edits = plan_edits(accepted, new_text, timeout=timeout)
        if not edits:
            return None
        plain = all(run.insert is None and run.delete is None for run in runs)
        if not plain:
            # Edits of the accepted text, placed in the body around the suggestions.
            edits = _sequential(_edits_in_raw(runs, _original_positions(edits)))
        self._emitted = []
        with self._doc.transaction(origin=origin):
            apply_edits(self._body, edits, None if plain else dict(_PLAIN))
        new_part = self._take_emitted()
        if new_part is not None:
            self._remember(new_part)
        return new_part

    def apply_change(self, change: LiveChange, origin: Hashable | None = None, *,
                     timeout: float = DEFAULT_DIFF_TIMEOUT) -> bytes | None:
        """Apply a server-side change: a new accepted text (as :meth:`apply_text`), settling
        suggestions (:class:`SettleSuggestions`: accepted insertions lose their mark, accepted
        deletions their text, rejected ones the opposite) or suggesting a new accepted text
        (:class:`SuggestText`). Returns the update, None if nothing changed."""
        if isinstance(change, str):
            return self.apply_text(change, origin, timeout=timeout)
        runs = self.runs()
        if isinstance(change, SettleSuggestions):
            operations = _settle_operations(runs, change)
        else:
            operations = _suggest_operations(runs, change, timeout)
        if not operations:
            return None
        raw = raw_text(runs)
        self._emitted = []
        # From the end backwards, so the offsets of the operations still to come hold.
        with self._doc.transaction(origin=origin):
            for operation in sorted(operations, key=lambda op: (op.start, op.kind != "insert"), reverse=True):
                start = codepoint_to_utf8(raw, operation.start)
                end = codepoint_to_utf8(raw, operation.end)
                if operation.kind == "delete":
                    del self._body[start:end]
                elif operation.kind == "format":
                    self._body.format(start, end, dict(operation.attributes))
                else:
                    self._body.insert(start, operation.text, dict(operation.attributes))
        new_part = self._take_emitted()
        if new_part is not None:
            self._remember(new_part)
        return new_part

    # -- comment anchors ----------------------------------------------------------------------

    def sticky_index(self, position: int, assoc: Literal["before", "after"] = "after") -> bytes:
        """Encode a position (code points) that follows its neighbouring character through edits.

        Positions are in the accepted text (:attr:`text`), as everything outside the editor.
        ``assoc="after"`` sticks to the character after the position (use for an anchor's
        start), ``"before"`` to the one before it (use for an anchor's end).  The bytes are
        Yjs' binary RelativePosition format.  Raises ValueError if position is out of range.
        """
        if assoc == "after" and position == len(self.text):
            # Yrs cannot make an "after" index at the end (it panics); Yjs encodes it as
            # "end of the type named body", which Yrs resolves correctly.
            return b"\x01" + _var_bytes(BODY.encode()) + b"\x00"
        byte_index = codepoint_to_utf8(self.raw_text, self.accepted_to_raw(position, assoc))
        pycrdt_assoc = Assoc.AFTER if assoc == "after" else Assoc.BEFORE
        return StickyIndex.new(self._body, byte_index, pycrdt_assoc).encode()

    def resolve_sticky(self, encoded: bytes) -> int:
        """The current code point position of an encoded sticky index.

        Raises ValueError if it does not decode or points into another document.
        """
        self._check_sticky(encoded)
        try:
            with _yrs_call():
                byte_index = StickyIndex.decode(encoded, self._body).get_index()
        except _YrsRefused:
            raise ValueError("sticky index cannot be resolved in this clause") from None
        return self.raw_to_accepted(utf8_to_codepoint(self.raw_text, byte_index))

    def _check_sticky(self, encoded: bytes) -> None:
        """Validate a RelativePosition before Yrs sees it (Yrs panics on bad or foreign ones)."""
        try:
            reader = _Reader(encoded, "sticky index")
            form = reader.var_uint()
            if form == 0:
                client, clock = reader.var_uint(), reader.var_uint()
                if clock >= _decode_state_vector(self.state_vector()).get(client, 0):
                    raise ValueError("sticky index points at text this clause does not have")
            elif form == 1:
                if reader.var_string() != BODY:
                    raise ValueError(f"sticky index belongs to a type other than {BODY!r}")
            else:
                raise ValueError("sticky index does not point into the clause body")
            if not reader.at_end():
                _read_var_int(reader)
                reader.expect_end()
        except ProtocolError as exc:
            raise ValueError(exc.reason) from None


# --- server-side changes around suggestions ---------------------------------------------------


class _Operation(NamedTuple):
    """One step of a server-side change, in code points of the raw text before the change."""

    kind: Literal["delete", "format", "insert"]
    start: int
    end: int
    text: str = ""
    attributes: Mapping[str, Any] = {}


def _accepted_positions(runs: Iterable[Run]) -> list[int]:
    """For each accepted character, its code point index in the raw text; then the raw length."""
    positions: list[int] = []
    at = 0
    for run in runs:
        if run.insert is None:
            positions.extend(range(at, at + len(run.text)))
        at += len(run.text)
    positions.append(at)
    return positions


def _original_positions(edits: Sequence[Edit]) -> list[Edit]:
    """Sequential edits (each placed in the text as the earlier ones left it) as edits placed in
    the original text."""
    shift = 0
    placed = []
    for edit in edits:
        placed.append(Edit(edit.position - shift, edit.delete_count, edit.insert_text))
        shift += len(edit.insert_text) - edit.delete_count
    return placed


def _sequential(edits: Sequence[Edit]) -> list[Edit]:
    """The reverse of :func:`_original_positions`: ascending edits of the original text, each
    placed in the text as the earlier ones leave it."""
    shift = 0
    sequential = []
    for edit in edits:
        sequential.append(Edit(edit.position + shift, edit.delete_count, edit.insert_text))
        shift += len(edit.insert_text) - edit.delete_count
    return sequential


def _edits_in_raw(runs: Sequence[Run], edits: Sequence[Edit]) -> list[Edit]:
    """Edits of the accepted text (original positions) as edits of the raw text: a deleted passage
    takes the suggested insertions inside it along; new words go right before the accepted
    character that follows them."""
    positions = _accepted_positions(runs)
    placed = []
    for edit in edits:
        start = positions[edit.position]
        end = positions[edit.position + edit.delete_count - 1] + 1 if edit.delete_count else start
        placed.append(Edit(start, end - start, edit.insert_text))
    return placed


def _settle_operations(runs: Sequence[Run], change: SettleSuggestions) -> list[_Operation]:
    operations = []
    at = 0
    for run in runs:
        end = at + len(run.text)
        insert_id = run.insert.id if run.insert else None
        delete_id = run.delete.id if run.delete else None
        remove = (insert_id in change.reject) or (delete_id in change.accept and (
            run.insert is None or insert_id in change.accept))
        if remove:
            operations.append(_Operation("delete", at, end))
        else:
            cleared: dict[str, Any] = {}
            if insert_id is not None and insert_id in change.accept:
                cleared[SUGGEST_INSERT] = None
            if delete_id is not None and delete_id in change.reject:
                cleared[SUGGEST_DELETE] = None
            if cleared:
                operations.append(_Operation("format", at, end, attributes=cleared))
        at = end
    return operations


def _suggest_operations(runs: Sequence[Run], change: SuggestText, timeout: float) -> list[_Operation]:
    """Mark what the new text drops as the suggester's deletion and insert what it adds as their
    suggestion, placed after the passage it replaces."""
    mark = {"id": change.id, "by": change.by}
    edits = _original_positions(plan_edits(accepted_text(runs), change.text, timeout=timeout, words=True))
    positions = _accepted_positions(runs)
    operations: list[_Operation] = []
    for edit in edits:
        deleted = positions[edit.position:edit.position + edit.delete_count]
        # Contiguous stretches of the raw text holding the deleted accepted characters.
        stretch_start = None
        previous = -2
        for index in deleted:
            if index != previous + 1:
                if stretch_start is not None:
                    operations.append(_Operation("format", stretch_start, previous + 1,
                                                 attributes={SUGGEST_DELETE: mark}))
                stretch_start = index
            previous = index
        if stretch_start is not None:
            operations.append(_Operation("format", stretch_start, previous + 1, attributes={SUGGEST_DELETE: mark}))
        if edit.insert_text:
            at = deleted[-1] + 1 if deleted else positions[edit.position]
            operations.append(_Operation("insert", at, at, edit.insert_text,
                                         {SUGGEST_INSERT: mark, SUGGEST_DELETE: None}))
    return operations
