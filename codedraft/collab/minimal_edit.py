"""Turn "replace the clause body by this text" into the smallest edit on the shared text.

Accepting an amendment, restoring a version or importing a file must not rewrite the whole body:
a whole-body replacement would delete every concurrent edit made by co-drafters and orphan every
comment anchor.  ``plan_edits`` diffs old and new text per code point with diff-match-patch (with a
deliberate time limit, see DESIGN.md) and ``apply_edits`` applies the plan to a pycrdt ``Text``,
converting code points to the UTF-8 byte offsets pycrdt 0.14.13 expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from diff_match_patch import diff_match_patch  # type: ignore[import-untyped]
from pycrdt import Text

from codedraft.collab.offsets import utf8_length

__all__ = ["DEFAULT_DIFF_TIMEOUT", "Edit", "apply_edits", "plan_edits"]

#: Seconds diff-match-patch may spend before settling for a coarser (still correct) diff.
DEFAULT_DIFF_TIMEOUT = 0.5

_DIFF_DELETE = -1
_DIFF_INSERT = 1


class Edit(NamedTuple):
    """One splice of a clause body, in code points of the text as it is when the splice runs."""

    position: int
    delete_count: int
    insert_text: str


def _check_encodable(text: str, label: str) -> None:
    """Refuse lone surrogates: pycrdt cannot store them and the browser would see U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{label} text holds a lone surrogate at code point {exc.start}") from None


def plan_edits(old: str, new: str, *, timeout: float = DEFAULT_DIFF_TIMEOUT, words: bool = False) -> list[Edit]:
    """Plan the splices that turn ``old`` into ``new``.

    Positions are code points and already account for the earlier splices, so the edits can be
    applied one after another, in order.  The plan is always exact; ``timeout`` only bounds how
    hard diff-match-patch tries to make it small (a larger diff is returned when time runs out).

    ``words`` makes the plan read as a person would edit (whole words replaced), not minimal.
    Raises ValueError if ``timeout`` is not positive (diff-match-patch treats 0 as "no limit",
    which on distant versions blocks for minutes) or if either text holds a lone surrogate.
    """
    if not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds")
    _check_encodable(old, "old")
    _check_encodable(new, "new")
    if old == new:
        return []
    differ = diff_match_patch()
    differ.Diff_Timeout = timeout
    diffs = differ.diff_main(old, new, False)
    # Slide each change to word or line boundaries without making it longer, so a replaced
    # word reads as one splice and concurrent edits next to it are less likely to interleave.
    if words:
        # Whole words and phrases rather than the fewest characters: what a reader reviews
        # (a suggestion "brown" -> "red" rather than "b", "own" and "ed").
        differ.diff_cleanupSemantic(diffs)
    differ.diff_cleanupSemanticLossless(diffs)
    return _diffs_to_edits(diffs)


def _diffs_to_edits(diffs: list[tuple[int, str]]) -> list[Edit]:
    """Fold diff-match-patch's (op, text) runs into sequential splices.

    A deletion directly followed by an insertion (or the reverse) becomes one replacing splice.
    """
    edits: list[Edit] = []
    cursor = 0  # position in the text as edited so far
    pending_delete = 0
    pending_insert: list[str] = []

    def flush() -> None:
        nonlocal cursor, pending_delete
        inserted = "".join(pending_insert)
        if pending_delete or inserted:
            edits.append(Edit(cursor, pending_delete, inserted))
            cursor += len(inserted)
        pending_delete = 0
        pending_insert.clear()

    for operation, chunk in diffs:
        if operation == _DIFF_DELETE:
            pending_delete += len(chunk)
        elif operation == _DIFF_INSERT:
            pending_insert.append(chunk)
        else:
            flush()
            cursor += len(chunk)
    flush()
    return edits


class _ByteSplice(NamedTuple):
    start: int
    delete_bytes: int
    insert_text: str


def _to_byte_splices(current: str, edits: Sequence[Edit]) -> list[_ByteSplice]:
    """Translate sequential code-point edits into sequential UTF-8 byte splices.

    Edits must be in ascending order (each starting at or after the end of the previous
    insertion), as ``plan_edits`` returns them; this lets the translation walk the text once.
    Raises ValueError on an edit that is out of order, out of range or negative.
    """
    splices: list[_ByteSplice] = []
    source_index = 0  # code points of ``current`` consumed so far
    edited_codepoints = 0  # code points of the edited text before the walk position
    edited_bytes = 0  # the same prefix, in UTF-8 bytes
    for number, edit in enumerate(edits):
        position, delete_count, insert_text = edit
        if position < 0 or delete_count < 0:
            raise ValueError(f"edit {number} has a negative position or length")
        _check_encodable(insert_text, f"edit {number} insert")
        skip = position - edited_codepoints
        if skip < 0:
            raise ValueError(f"edit {number} starts before the end of the previous edit")
        kept = current[source_index : source_index + skip]
        removed = current[source_index + skip : source_index + skip + delete_count]
        if len(kept) != skip or len(removed) != delete_count:
            raise ValueError(f"edit {number} reaches past the end of the text")
        start = edited_bytes + utf8_length(kept)
        splices.append(_ByteSplice(start, utf8_length(removed), insert_text))
        source_index += skip + delete_count
        edited_codepoints = position + len(insert_text)
        edited_bytes = start + utf8_length(insert_text)
    return splices


def apply_edits(text: Text, edits: Sequence[Edit], attributes: dict[str, Any] | None = None) -> None:
    """Apply sequential code-point ``edits`` to a pycrdt ``Text`` in one transaction.

    Inserted text gets ``attributes`` when given (e.g. ``{"suggestion": None}``, so it does not
    take the formatting of the character before it, as Yrs would).

    The whole plan is checked before anything changes, so an invalid plan (out of order or out of
    range, see ``_to_byte_splices``) raises ValueError and leaves the text untouched.  If a
    transaction is already open on the document, the edits join it.
    """
    splices = _to_byte_splices(str(text), edits)
    if not splices:
        return
    with text.doc.transaction():
        for splice in splices:
            if splice.delete_bytes:
                del text[splice.start : splice.start + splice.delete_bytes]
            if splice.insert_text:
                text.insert(splice.start, splice.insert_text, attributes)
