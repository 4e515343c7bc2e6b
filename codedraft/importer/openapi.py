"""The importer's part of /api/v1/openapi.json: merged by ``codedraft.api.openapi``."""
from __future__ import annotations

from typing import Any

from codedraft.api.openapi import INTEGER, NULLABLE_STRING, PARAMETER_TEXT, STRING, json_response, obj, operation, ref

TOKEN = {"name": "token", "in": "path", "required": True, "schema": PARAMETER_TEXT}
STRINGS = {"type": "array", "items": STRING}
REFUSED = {"400": json_response(ref("Error"), "The file cannot be imported (the message says why); nothing was kept."),
           "403": json_response(ref("Error"), "Not the Office of that code.")}

PATHS: dict[str, Any] = {
    "/imports": {"post": operation(
        "uploadImport",
        "Upload Markdown or Word (multipart 'file'; 'code' = slug for the next version of a code): the preview. "
        "Nothing is written to any code.",
        {"201": json_response(ref("ImportPreview"), "The preview; its token applies it."), **REFUSED},
        requestBody={"required": True, "content": {"multipart/form-data": {"schema": obj(
            ["file"], file={"type": "string", "contentMediaType": "application/octet-stream"}, code=STRING)}}},
    )},
    "/imports/{token}": {"get": operation(
        "getImportPreview", "The preview of one of your pending uploads.",
        {"200": json_response(ref("ImportPreview"), "The preview."),
         "400": json_response(ref("Error"), "The file cannot be imported.")},
        parameters=[TOKEN],
    )},
    "/imports/{token}/apply": {"post": operation(
        "applyImport",
        "Apply an upload in one transaction, with corrected matches and working groups per chapter.",
        {"200": json_response(ref("ImportResult"), "Applied."),
         "400": json_response(ref("Error"), "Invalid body or a correction that cannot hold; nothing changed."),
         "409": json_response(ref("Error"), "Applied already.")},
        parameters=[TOKEN],
        requestBody={"required": True, "content": {"application/json": {"schema": ref("ImportApply")}}},
    )},
}

SCHEMAS: dict[str, Any] = {
    "ImportClause": obj(["key", "kind", "number", "title", "parent_key", "notes"], key=STRING, kind=STRING,
                        number=STRING, title=STRING, parent_key=NULLABLE_STRING, notes=STRINGS),
    "ImportChapter": obj(["key", "number", "title", "clauses"], key=STRING, number=STRING, title=STRING,
                         clauses={"type": "array", "items": ref("ImportClause")}),
    "ImportMatch": obj(["key", "old_uid", "old_heading", "how", "confidence"], key=STRING, old_uid=NULLABLE_STRING,
                       old_heading=NULLABLE_STRING,
                       how={"type": "string", "enum": ["number+title", "title", "text", "new"]},
                       confidence={"type": "integer", "minimum": 0, "maximum": 100}),
    "ImportPreview": obj(
        ["token", "title", "counts", "warnings", "chapters", "matches", "dropped"],
        token=STRING, title=STRING, counts={"type": "object", "additionalProperties": INTEGER}, warnings=STRINGS,
        chapters={"type": "array", "items": ref("ImportChapter")},
        matches={"type": "array", "items": ref("ImportMatch")},
        dropped={"type": "array", "items": obj(["uid", "heading"], uid=STRING, heading=STRING)},
    ),
    "ImportApply": {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 300}, "draft_name": {"type": "string", "maxLength": 200},
        "corrections": {"type": "object", "additionalProperties": NULLABLE_STRING,
                        "description": "New clause key -> the old uid it continues, or null for a new clause."},
        "groups": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 200},
                   "description": "Chapter key -> working group name (created when missing)."},
    }},
    "ImportResult": obj(["code", "chapters", "clauses", "matched", "new", "dropped", "draft"], code=ref("Code"),
                        chapters=INTEGER, clauses=INTEGER, matched=INTEGER, new=INTEGER, dropped=INTEGER,
                        draft={"type": ["integer", "null"]}),
}
