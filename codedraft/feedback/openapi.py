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

_NULLABLE_INTEGER = {"type": ["integer", "null"]}
_FILTERS = [
    {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    for name, schema, description in (
        ("category", PARAMETER_TEXT, "stakeholder category key"),
        ("status", PARAMETER_TEXT, "open, addressed, accepted, partly_accepted, rejected or withdrawn"),
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
    "CampaignGroup": obj(
        ["id", "clause", "size", "shared_text", "by_category", "organisations", "comment_ids"],
        id=INTEGER, clause=STRING, size=INTEGER, shared_text=STRING,
        by_category={"type": "object", "additionalProperties": INTEGER},
        organisations={"type": "array", "items": STRING}, comment_ids={"type": "array", "items": INTEGER},
    ),
    "Theme": obj(
        ["id", "clause", "name", "key_terms", "curated", "size", "by_category"],
        id=INTEGER, clause=STRING, name=STRING, key_terms={"type": "array", "items": STRING},
        curated={"type": "boolean"}, size=INTEGER, by_category={"type": "object", "additionalProperties": INTEGER},
    ),
    "Response": obj(
        ["id", "target", "body", "disposition", "updated_at"],
        id=INTEGER, target={"type": "string", "pattern": "^(comment|group|theme):[0-9]+$"}, body=STRING,
        disposition=STRING, updated_at={"type": "string", "format": "date-time"},
    ),
}

_ROUND = [SLUG, {"name": "round_id", "in": "path", "required": True, "schema": INTEGER}]

PATHS: dict[str, Any] = {
    "/codes/{slug}/clauses/{uid}/comments": {
        "get": operation(
            "listClauseComments", "Comments on a clause that the token's owner may see (hidden ones only to "
            "the Office and their author), oldest first.",
            {"200": json_response(obj(["comments"], comments={"type": "array", "items": ref("Comment")}),
                                  "The comments.")},
            parameters=[SLUG, {"name": "uid", "in": "path", "required": True, "schema": PARAMETER_TEXT}, *_FILTERS],
        ),
    },
    "/codes/{slug}/rounds/{round_id}/groups": {
        "get": operation(
            "listRoundGroups", "The round's campaign groups, largest first (the drafting team only).",
            {"200": json_response(obj(["groups"], groups={"type": "array", "items": ref("CampaignGroup")}),
                                  "The groups.")}, parameters=_ROUND),
    },
    "/codes/{slug}/rounds/{round_id}/themes": {
        "get": operation(
            "listRoundThemes", "The round's themes per clause (the drafting team only).",
            {"200": json_response(obj(["themes"], themes={"type": "array", "items": ref("Theme")}),
                                  "The themes.")}, parameters=_ROUND),
    },
    "/codes/{slug}/rounds/{round_id}/responses": {
        "get": operation(
            "listRoundResponses", "The round's responses: to the drafting team always, to every reader of the "
            "code once the Office has published them.",
            {"200": json_response(obj(["published", "responses"], published={"type": "boolean"},
                                      responses={"type": "array", "items": ref("Response")}), "The responses.")},
            parameters=_ROUND),
    },
}
