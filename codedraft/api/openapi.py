"""The OpenAPI 3.1 description of /api/v1. Tests check every response against it."""
from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
DATETIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": _obj(["error"], error=STRING),
    "Code": _obj(["id", "slug", "title", "summary", "language"], id=INTEGER, slug=STRING, title=STRING,
                 summary=STRING, language=STRING),
    "Chapter": _obj(["id", "number", "title", "position", "working_group"], id=INTEGER, number=STRING,
                    title=STRING, position=INTEGER, working_group=NULLABLE_STRING),
    "CodeDetail": {"allOf": [_ref("Code"), _obj(["chapters"], chapters={"type": "array", "items": _ref("Chapter")})]},
    "NewCode": {**_obj(["title"], title={"type": "string", "minLength": 1, "maxLength": 300},
                       summary={"type": "string", "maxLength": 5000}, language={"type": "string", "maxLength": 8})},
    "Clause": _obj(
        ["uid", "kind", "number", "title", "heading", "chapter_id", "parent_uid", "body", "updated_at"],
        uid=STRING, kind={"type": "string", "enum": ["commitment", "measure", "article", "annex", "recital",
                                                     "section", "glossary"]},
        number=STRING, title=STRING, heading=STRING, chapter_id=INTEGER, parent_uid=NULLABLE_STRING,
        body=STRING, updated_at=DATETIME,
    ),
    "ClauseVersion": _obj(["draft", "name", "body"], draft=INTEGER, name=STRING, body=STRING),
    "ClauseDetail": {"allOf": [_ref("Clause"), _obj(["body_html", "history"], body_html=STRING,
                                                    history={"type": "array", "items": _ref("ClauseVersion")})]},
    "Draft": _obj(["number", "name", "note", "published_at"], number=INTEGER, name=STRING, note=STRING,
                  published_at=DATETIME),
    "NewDraft": _obj(["name"], name={"type": "string", "minLength": 1, "maxLength": 200},
                     note={"type": "string", "maxLength": 5000}),
    "DraftClause": _obj(["uid", "kind", "number", "title", "heading", "chapter", "parent_uid", "body"],
                        uid=STRING, kind=STRING, number=STRING, title=STRING, heading=STRING, chapter=STRING,
                        parent_uid=NULLABLE_STRING, body=STRING),
    "DraftDetail": {"allOf": [_ref("Draft"), _obj(["clauses"], clauses={"type": "array", "items": _ref("DraftClause")})]},
}

ERRORS = {
    "401": _json(_ref("Error"), "No valid personal access token."),
    "404": _json(_ref("Error"), "Missing, or not visible to you: the same answer for both."),
}
SLUG = {"name": "slug", "in": "path", "required": True, "schema": STRING}


def _operation(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "responses": {**responses, **ERRORS}, **extra}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "CodeDraft API", "version": "1.0.0",
                 "description": "Codes, chapters, clauses and drafts. Authenticate with a personal access "
                                "token from /account/tokens as 'Authorization: Bearer <token>'."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/codes": {
                "get": _operation("listCodes", "Codes you may see.",
                                  {"200": _json(_obj(["codes"], codes={"type": "array", "items": _ref("Code")}), "The codes.")}),
                "post": _operation("createCode", "Create a code (the Office only).",
                                   {"201": _json(_ref("Code"), "Created."),
                                    "400": _json(_ref("Error"), "Invalid body."),
                                    "403": _json(_ref("Error"), "Not the Office.")},
                                   requestBody={"required": True, "content": {"application/json": {"schema": _ref("NewCode")}}}),
            },
            "/codes/{slug}": {"get": _operation("getCode", "A code with its chapters.",
                                                {"200": _json(_ref("CodeDetail"), "The code.")}, parameters=[SLUG])},
            "/codes/{slug}/clauses": {"get": _operation(
                "listClauses", "The live clauses in reading order.",
                {"200": _json(_obj(["clauses"], clauses={"type": "array", "items": _ref("Clause")}), "The clauses.")},
                parameters=[SLUG])},
            "/codes/{slug}/clauses/{uid}": {"get": _operation(
                "getClause", "One live clause, rendered, with its published versions.",
                {"200": _json(_ref("ClauseDetail"), "The clause.")},
                parameters=[SLUG, {"name": "uid", "in": "path", "required": True, "schema": STRING}])},
            "/codes/{slug}/drafts": {
                "get": _operation("listDrafts", "Published drafts, oldest first.",
                                  {"200": _json(_obj(["drafts"], drafts={"type": "array", "items": _ref("Draft")}), "The drafts.")},
                                  parameters=[SLUG]),
                "post": _operation("publishDraft", "Publish the live text as a new draft (the Office only).",
                                   {"201": _json(_ref("Draft"), "Published."),
                                    "400": _json(_ref("Error"), "Invalid body."),
                                    "403": _json(_ref("Error"), "Not allowed.")},
                                   parameters=[SLUG],
                                   requestBody={"required": True, "content": {"application/json": {"schema": _ref("NewDraft")}}}),
            },
            "/codes/{slug}/drafts/{number}": {"get": _operation(
                "getDraft", "A draft exactly as published.", {"200": _json(_ref("DraftDetail"), "The draft.")},
                parameters=[SLUG, {"name": "number", "in": "path", "required": True, "schema": INTEGER}])},
        },
    }
