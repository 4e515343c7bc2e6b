"""This feature's part of /api/v1/openapi.json: merged by ``codedraft.api.openapi``."""
from __future__ import annotations

from typing import Any

from codedraft.api.openapi import DATETIME, INTEGER, PARAMETER_TEXT, STRING, json_response, obj, operation, ref
from codedraft.numbers import MAX_INTEGER

_NULLABLE_INTEGER = {"type": ["integer", "null"]}

SCHEMAS: dict[str, Any] = {
    "EditSession": obj(
        ["author", "user_id", "origin", "first_update", "last_update", "updates", "started_at", "ended_at"],
        author=STRING, user_id=_NULLABLE_INTEGER,
        origin={"type": "string", "description": "editor, restore, amendment or import"},
        first_update=INTEGER, last_update=INTEGER, updates=INTEGER, started_at=DATETIME, ended_at=DATETIME,
    ),
    "ClauseHistory": obj(
        ["clause", "update_count", "sessions"],
        clause=STRING, update_count=INTEGER,
        sessions={"type": "array", "items": ref("EditSession"),
                  "description": "One session per person and pause (updates of one author within 60 s of "
                                 "each other, whoever else typed in between), newest first (at most 200)."},
        at=INTEGER,
        text={"type": "string", "description": "The clause text as of update `at` (only when `at` is given)."},
    ),
}

PATHS: dict[str, Any] = {
    "/codes/{slug}/clauses/{uid}/history": {
        "get": operation(
            "getClauseHistory", "Who changed a clause and when; optionally its text as of one update.",
            {"200": json_response(ref("ClauseHistory"), "The history."),
             "403": json_response(ref("Error"), "The code shows its live history to the drafting team only.")},
            parameters=[
                {"name": "slug", "in": "path", "required": True, "schema": PARAMETER_TEXT},
                {"name": "uid", "in": "path", "required": True, "schema": PARAMETER_TEXT},
                # Ids are database integers: the app refuses a larger number before any query.
                {"name": "at", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER},
                 "description": "An update id: include the text as it was right after it."},
            ],
        ),
    },
}
