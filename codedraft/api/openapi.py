"""The OpenAPI 3.1 description of /api/v1. Tests check every response against it."""
from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def listing(key: str, item: str) -> dict[str, Any]:
    """An object whose one required member ``key`` is an array of ``item`` schemas."""
    return obj([key], **{key: {"type": "array", "items": ref(item)}})


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
DATETIME = {"type": "string", "format": "date-time"}
# What the API stores (views._string): no NUL character, and required texts not blank.
WITHOUT_NUL = r"^[^\u0000]*$"
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
# A text in the address (a path or query parameter): nothing stored holds a NUL, and the app
# refuses one with a 400 before it could reach a query (PostgreSQL cannot look one up).
PARAMETER_TEXT = {"type": "string", "pattern": WITHOUT_NUL}


def text(max_length: int, *, required: bool = False) -> dict[str, Any]:
    bounds = {"minLength": 1} if required else {}
    return {"type": "string", **bounds, "maxLength": max_length, "pattern": NOT_BLANK if required else WITHOUT_NUL}


SCHEMAS: dict[str, Any] = {
    "Error": obj(["error"], error=STRING),
    "Code": obj(["id", "slug", "title", "summary", "language"], id=INTEGER, slug=STRING, title=STRING,
                 summary=STRING, language=STRING),
    "Chapter": obj(["id", "number", "title", "position", "working_group"], id=INTEGER, number=STRING,
                    title=STRING, position=INTEGER, working_group=NULLABLE_STRING),
    "CodeDetail": {"allOf": [ref("Code"), obj(["chapters"], chapters={"type": "array", "items": ref("Chapter")})]},
    "NewCode": obj(["title"], title=text(300, required=True), summary=text(5000), language=text(8)),
    "Clause": obj(
        ["uid", "kind", "number", "title", "heading", "chapter_id", "parent_uid", "body", "updated_at"],
        uid=STRING, kind={"type": "string", "enum": ["commitment", "measure", "article", "annex", "recital",
                                                     "section", "glossary"]},
        number=STRING, title=STRING, heading=STRING, chapter_id=INTEGER, parent_uid=NULLABLE_STRING,
        body=STRING, updated_at=DATETIME,
    ),
    "ClauseVersion": obj(["draft", "name", "body"], draft=INTEGER, name=STRING, body=STRING),
    "ClauseDetail": {"allOf": [ref("Clause"), obj(["body_html", "history"], body_html=STRING,
                                                    history={"type": "array", "items": ref("ClauseVersion")})]},
    "Draft": obj(["number", "name", "note", "published_at"], number=INTEGER, name=STRING, note=STRING,
                  published_at=DATETIME),
    "NewDraft": obj(["name"], name=text(200, required=True), note=text(5000)),
    "DraftClause": obj(["uid", "kind", "number", "title", "heading", "chapter", "parent_uid", "body"],
                        uid=STRING, kind=STRING, number=STRING, title=STRING, heading=STRING, chapter=STRING,
                        parent_uid=NULLABLE_STRING, body=STRING),
    "DraftDetail": {"allOf": [ref("Draft"), obj(["clauses"], clauses={"type": "array", "items": ref("DraftClause")})]},
}

ERRORS = {
    "401": json_response(ref("Error"), "No valid personal access token."),
    "404": json_response(ref("Error"), "Missing, or not visible to you: the same answer for both."),
}
SLUG = {"name": "slug", "in": "path", "required": True, "schema": PARAMETER_TEXT}
# Writes are rate limited (api/views.py); the limiter answers with a JSON error and Retry-After.
RATE_LIMITED = {"429": {**json_response(ref("Error"), "Too many writes; wait for Retry-After seconds."),
                        "headers": {"Retry-After": {"schema": INTEGER}}}}


def operation(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "responses": {**responses, **ERRORS}, **extra}


def _feature_parts() -> tuple[dict[str, Any], dict[str, Any]]:
    """Paths and schemas that feature folders describe next to their own endpoints."""
    from codedraft.collab import openapi as collab
    from codedraft.exports import openapi as exports
    from codedraft.feedback import openapi as feedback
    from codedraft.importer import openapi as importer
    from codedraft.search import openapi as search

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for part in (collab, feedback, search, exports, importer):
        paths.update(part.PATHS)
        schemas.update(part.SCHEMAS)
    return paths, schemas


def openapi_document() -> dict[str, Any]:
    feature_paths, feature_schemas = _feature_parts()
    return {
        "openapi": "3.1.0",
        "info": {"title": "CodeDraft API", "version": "1.0.0",
                 "description": "Codes, chapters, clauses and drafts. Authenticate with a personal access "
                                "token from /account/tokens as 'Authorization: Bearer <token>'."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {**SCHEMAS, **feature_schemas},
        },
        "paths": {
            "/codes": {
                "get": operation("listCodes", "Codes you may see.",
                                  {"200": json_response(listing("codes", "Code"), "The codes.")}),
                "post": operation("createCode", "Create a code (the Office only).",
                                   {"201": json_response(ref("Code"), "Created."),
                                    "400": json_response(ref("Error"), "Invalid body."),
                                    "403": json_response(ref("Error"), "Not the Office."), **RATE_LIMITED},
                                   requestBody=json_body(ref("NewCode"))),
            },
            "/codes/{slug}": {"get": operation(
                "getCode", "A code with its chapters.",
                {"200": json_response(ref("CodeDetail"), "The code.")}, parameters=[SLUG])},
            "/codes/{slug}/clauses": {"get": operation(
                "listClauses", "The live clauses in reading order.",
                {"200": json_response(listing("clauses", "Clause"), "The clauses.")},
                parameters=[SLUG])},
            "/codes/{slug}/clauses/{uid}": {"get": operation(
                "getClause", "One live clause, rendered, with its published versions.",
                {"200": json_response(ref("ClauseDetail"), "The clause.")},
                parameters=[SLUG, {"name": "uid", "in": "path", "required": True, "schema": PARAMETER_TEXT}])},
            "/codes/{slug}/drafts": {
                "get": operation("listDrafts", "Published drafts, oldest first.",
                                  {"200": json_response(listing("drafts", "Draft"), "The drafts.")},
                                  parameters=[SLUG]),
                "post": operation("publishDraft", "Publish the live text as a new draft (the Office only).",
                                   {"201": json_response(ref("Draft"), "Published."),
                                    "400": json_response(ref("Error"), "Invalid body."),
                                    "403": json_response(ref("Error"), "Not allowed."), **RATE_LIMITED},
                                   parameters=[SLUG], requestBody=json_body(ref("NewDraft"))),
            },
            "/codes/{slug}/drafts/{number}": {"get": operation(
                "getDraft", "A draft exactly as published.", {"200": json_response(ref("DraftDetail"), "The draft.")},
                parameters=[SLUG, {"name": "number", "in": "path", "required": True, "schema": INTEGER}])},
            **feature_paths,
        },
    }
