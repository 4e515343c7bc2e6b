"""This feature's part of /api/v1/openapi.json: merged by ``codedraft.api.openapi``."""
from __future__ import annotations

from typing import Any

from codedraft.api.openapi import (
    DATETIME,
    INTEGER,
    NULLABLE_STRING,
    PARAMETER_TEXT,
    STRING,
    json_response,
    obj,
    operation,
    ref,
)

_NULLABLE_INTEGER = {"type": ["integer", "null"]}
_COUNTS = {"type": "object", "additionalProperties": INTEGER}


def _query(name: str, description: str, schema: dict[str, Any] | None = None, *, many: bool = False) -> dict[str, Any]:
    value_schema = schema or PARAMETER_TEXT
    if many:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": {"type": "array", "items": value_schema}, "style": "form", "explode": True}
    return {"name": name, "in": "query", "required": False, "description": description, "schema": value_schema}


SCHEMAS: dict[str, Any] = {
    "SearchHit": obj(
        ["doc_id", "kind", "score", "snippet", "url", "code", "chapter", "clause", "draft", "category", "status",
         "author", "created"],
        doc_id=STRING,
        kind={"type": "string", "enum": ["clause", "comment"]},
        score={"type": "number"},
        snippet={"type": "string", "description": "HTML: escaped text, matched words in <mark>."},
        url={"type": ["string", "null"],
             "description": "The passage: a draft's clause, the live clause, or the comment."},
        code={"oneOf": [obj(["slug", "title"], slug=STRING, title=STRING), {"type": "null"}]},
        chapter=STRING,
        clause=obj(["uid", "number", "heading"], uid=STRING, number=STRING, heading=STRING),
        draft=obj(["number", "label"], number=_NULLABLE_INTEGER, label=STRING),
        category=STRING,
        status=STRING,
        author=STRING,
        created={"oneOf": [DATETIME, {"type": "null"}]},
    ),
    "SearchGroup": obj(
        ["clause_uid", "clause_number", "heading", "best_score", "hits"],
        clause_uid=STRING, clause_number=STRING, heading=STRING, best_score={"type": "number"},
        hits={"type": "array", "items": ref("SearchHit")},
    ),
    "SearchResults": obj(
        ["total", "page", "per_page", "message", "facets", "hits"],
        total=INTEGER,
        page=INTEGER,
        per_page=INTEGER,
        message=NULLABLE_STRING,
        facets=obj(["kind", "draft", "category", "status", "chapter"], kind=_COUNTS, draft=_COUNTS,
                   category=_COUNTS, status=_COUNTS, chapter=_COUNTS),
        hits={"type": "array", "items": ref("SearchHit")},
        groups={"type": "array", "items": ref("SearchGroup")},
        total_groups=INTEGER,
        # True when total and facet counts are estimated from a sample (many thousands of matches).
        estimated={"type": "boolean"},
    ),
}

PATHS: dict[str, Any] = {
    "/search": {
        "get": operation(
            "search",
            "Search the live text, every published draft and the comments you may read. A malformed query "
            "is searched literally and explained in `message`; it is never an error.",
            {
                "200": json_response(ref("SearchResults"),
                                     "Hits, facet counts, and a message when the query was altered."),
                "429": json_response(ref("Error"), "Too many searches; wait a moment."),
            },
            parameters=[
                _query("q", "Words, \"a phrase\", prefix*, fuzzy~ and field:value for chapter, clause, draft, kind, "
                       "category, status, author."),
                _query("code", "Only this code (its slug)."),
                _query("chapter", "Chapter title (any of).", many=True),
                _query("clause", "Clause number (any of).", many=True),
                _query("draft", "Draft number or `live` (any of).", many=True),
                _query("kind", "`clause` or `comment`.", {"type": "string", "enum": ["clause", "comment"]}, many=True),
                _query("category", "Stakeholder category (any of).", many=True),
                _query("status", "Comment status (any of).", many=True),
                _query("author", "Author name (any of).", many=True),
                _query("from", "Created or published on or after (YYYY-MM-DD).", {"type": "string", "format": "date"}),
                _query("to", "Created or published on or before (YYYY-MM-DD).", {"type": "string", "format": "date"}),
                _query("page", "Page number, from 1.", {"type": "integer", "minimum": 1, "maximum": 200}),
                _query("per_page", "Hits per page.", {"type": "integer", "minimum": 1, "maximum": 100}),
                _query("group", "`1` to group hits by clause across drafts.", {"type": "string", "enum": ["0", "1"]}),
            ],
        )
    }
}
