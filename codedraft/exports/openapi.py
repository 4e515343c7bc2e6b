"""This feature's part of /api/v1/openapi.json: merged by ``codedraft.api.openapi``."""
from __future__ import annotations

from typing import Any

from codedraft.api.openapi import (
    INTEGER,
    NULLABLE_STRING,
    PARAMETER_TEXT,
    SLUG,
    STRING,
    json_response,
    obj,
    operation,
    ref,
)

BOOLEAN = {"type": "boolean"}

PATHS: dict[str, Any] = {
    "/codes/{slug}/compare": {
        "get": operation(
            "compareDrafts",
            "Clause-level changes between two drafts, or a draft and the live text (matched by stable uid).",
            {"200": json_response(ref("Comparison"), "The changes, in reading order of the newer text.")},
            parameters=[
                SLUG,
                {"name": "from", "in": "query", "required": True, "schema": PARAMETER_TEXT,
                 "description": "Draft number, or 'live'."},
                {"name": "to", "in": "query", "required": False, "schema": PARAMETER_TEXT,
                 "description": "Draft number, or 'live' (the default)."},
            ],
        )
    }
}

SCHEMAS: dict[str, Any] = {
    "ClauseChange": obj(
        ["uid", "status", "old_number", "new_number", "title", "moved", "renumbered", "retitled", "text_changed"],
        uid=STRING, status={"type": "string", "enum": ["added", "removed", "changed", "unchanged"]},
        old_number=NULLABLE_STRING, new_number=NULLABLE_STRING, title=STRING, moved=BOOLEAN,
        renumbered=BOOLEAN, retitled=BOOLEAN, text_changed=BOOLEAN,
    ),
    "Comparison": obj(
        ["from", "to", "counts", "clauses"], **{
            "from": STRING, "to": STRING,
            "counts": obj(["added", "removed", "moved", "renumbered", "retitled", "text_changed"],
                          added=INTEGER, removed=INTEGER, moved=INTEGER, renumbered=INTEGER, retitled=INTEGER,
                          text_changed=INTEGER),
            "clauses": {"type": "array", "items": ref("ClauseChange")},
        },
    ),
}
