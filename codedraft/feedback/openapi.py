"""This feature's part of /api/v1/openapi.json: merged by ``codedraft.api.openapi``."""
from __future__ import annotations

from typing import Any

from codedraft.api.openapi import INTEGER, NULLABLE_STRING, SLUG, STRING, json_response, obj, operation, ref

_NULLABLE_INTEGER = {"type": ["integer", "null"]}
_FILTERS = [
    {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    for name, schema, description in (
        ("category", STRING, "stakeholder category key"),
        ("status", STRING, "open, addressed, accepted, partly_accepted, rejected or withdrawn"),
        ("round", INTEGER, "feedback round id"),
        ("group", INTEGER, "working group id"),
        ("author", INTEGER, "author's user id"),
    )
]

SCHEMAS: dict[str, Any] = {
    "Comment": obj(
        ["id", "kind", "author", "organisation", "category", "status", "body", "quote", "anchor_state",
         "disposition", "disposition_reason", "hidden", "support_count", "reply_count", "round_id", "created_at"],
        id=INTEGER, kind={"type": "string", "enum": ["comment", "amendment"]}, author=STRING,
        organisation=STRING, category=STRING, status=STRING, body=STRING, quote=NULLABLE_STRING,
        anchor_state=NULLABLE_STRING, disposition=NULLABLE_STRING, disposition_reason=NULLABLE_STRING,
        hidden={"type": "boolean"}, support_count=INTEGER, reply_count=INTEGER, round_id=_NULLABLE_INTEGER,
        created_at={"type": "string", "format": "date-time"},
    ),
}

PATHS: dict[str, Any] = {
    "/codes/{slug}/clauses/{uid}/comments": {
        "get": operation(
            "listClauseComments", "Comments on a clause that the token's owner may see (hidden ones only to "
            "the Office and their author), oldest first.",
            {"200": json_response(obj(["comments"], comments={"type": "array", "items": ref("Comment")}),
                                  "The comments.")},
            parameters=[SLUG, {"name": "uid", "in": "path", "required": True, "schema": STRING}, *_FILTERS],
        ),
    },
}
