"""How deeply a JSON text nests, measured before it is parsed. Pure.

``json.loads`` recurses once per level and raises RecursionError on a few thousand; every JSON
from outside (request bodies, awareness states) is checked here first.
"""
from __future__ import annotations


def nesting_exceeds(text: str | bytes, limit: int) -> bool:
    """True if ``text`` opens more than ``limit`` arrays/objects inside each other (strings skipped)."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8", "replace")
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
