"""/api/v1: codes, chapters, clauses and drafts. Every route is described in openapi.py."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from codedraft import policy
from codedraft.api.auth import api_user, token_required
from codedraft.api.openapi import openapi_document
from codedraft.codes import operations as codes
from codedraft.codes.models import Chapter, Clause, Code
from codedraft.database import storable_text
from codedraft.drafts import operations as drafts
from codedraft.drafts.models import Draft, DraftClause
from codedraft.extensions import db, limiter
from codedraft.markdown import render_markdown
from codedraft.numbers import MAX_INTEGER

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.errorhandler(400)
def bad_request(error: Any) -> ResponseReturnValue:
    return jsonify(error=getattr(error, "description", "Bad request.")), 400


def _code(slug: str) -> Code:
    if not storable_text(slug):
        abort(404)  # no slug holds it, and PostgreSQL would refuse the comparison
    code = db.session.scalar(select(Code).where(Code.slug == slug))
    if code is None or not policy.can_view_code(api_user(), code):
        abort(404)
    return code


def _json_body() -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        abort(400, description="Send a JSON object.")
    return payload


def _string(payload: dict[str, Any], key: str, *, required: bool = False, limit: int = 300) -> str:
    value = payload.get(key, "")
    if (not isinstance(value, str) or len(value) > limit or (required and not value.strip())
            or not storable_text(value)):
        abort(400, description=f"'{key}' must be a {'non-empty ' if required else ''}string of at most {limit} "
                               "characters, without NUL characters or unpaired surrogates.")
    return value


def code_json(code: Code) -> dict[str, Any]:
    return {"id": code.id, "slug": code.slug, "title": code.title, "summary": code.summary, "language": code.language}


def chapter_json(chapter: Chapter) -> dict[str, Any]:
    return {
        "id": chapter.id, "number": chapter.number, "title": chapter.title, "position": chapter.position,
        "working_group": chapter.working_group.name if chapter.working_group else None,
    }


def clause_json(clause: Clause, parents: dict[int, str]) -> dict[str, Any]:
    return {
        "uid": clause.uid, "kind": clause.kind, "number": clause.number, "title": clause.title,
        "heading": clause.heading, "chapter_id": clause.chapter_id,
        "parent_uid": parents.get(clause.parent_id) if clause.parent_id else None,
        "body": clause.body, "updated_at": clause.updated_at.isoformat() + "Z",
    }


def draft_json(draft: Draft) -> dict[str, Any]:
    return {"number": draft.number, "name": draft.name, "note": draft.note,
            "published_at": draft.published_at.isoformat() + "Z"}


def draft_clause_json(clause: DraftClause) -> dict[str, Any]:
    return {
        "uid": clause.clause_uid, "kind": clause.kind, "number": clause.number, "title": clause.title,
        "heading": clause.heading, "chapter": clause.chapter_title, "parent_uid": clause.parent_uid,
        "body": clause.body,
    }


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


@bp.get("/codes")
@token_required
def list_codes() -> ResponseReturnValue:
    rows = db.session.scalars(select(Code).order_by(Code.title)).all()
    return jsonify(codes=[code_json(c) for c in rows if policy.can_view_code(api_user(), c)])


@bp.post("/codes")
@token_required
@limiter.limit("30 per minute")
def create_code() -> ResponseReturnValue:
    if not policy.can_create_code(api_user()):
        abort(403)
    payload = _json_body()
    try:
        code = codes.create_code(
            _string(payload, "title", required=True), summary=_string(payload, "summary", limit=5000),
            language=_string(payload, "language", limit=8) or "en",
        )
    except codes.CodeError as error:
        abort(400, description=str(error))
    db.session.commit()
    return jsonify(code_json(code)), 201


@bp.get("/codes/<slug>")
@token_required
def get_code(slug: str) -> ResponseReturnValue:
    code = _code(slug)
    return jsonify({**code_json(code), "chapters": [chapter_json(c) for c in code.chapters]})


@bp.get("/codes/<slug>/clauses")
@token_required
def list_clauses(slug: str) -> ResponseReturnValue:
    code = _code(slug)
    clauses = codes.live_clauses(code)
    parents = {c.id: c.uid for c in clauses}
    return jsonify(clauses=[clause_json(c, parents) for c in clauses if policy.can_view_clause(api_user(), c)])


@bp.get("/codes/<slug>/clauses/<uid>")
@token_required
def get_clause(slug: str, uid: str) -> ResponseReturnValue:
    code = _code(slug)
    if not storable_text(uid):
        abort(404)
    clause = db.session.scalar(select(Clause).where(Clause.uid == uid, Clause.code_id == code.id))
    if clause is None or not policy.can_view_clause(api_user(), clause):
        abort(404)
    parent_uid = None
    if clause.parent_id:
        parent_uid = db.session.scalar(select(Clause.uid).where(Clause.id == clause.parent_id))
    history = [{"draft": d.number, "name": d.name, "body": v.body} for d, v in drafts.clause_history(uid)]
    body = clause_json(clause, {clause.parent_id: parent_uid} if clause.parent_id and parent_uid else {})
    return jsonify({**body, "body_html": render_markdown(clause.body), "history": history})


@bp.get("/codes/<slug>/drafts")
@token_required
def list_drafts(slug: str) -> ResponseReturnValue:
    return jsonify(drafts=[draft_json(d) for d in drafts.drafts_of(_code(slug))])


@bp.post("/codes/<slug>/drafts")
@token_required
@limiter.limit("10 per minute")
def publish_draft(slug: str) -> ResponseReturnValue:
    code = _code(slug)
    if not policy.can_publish_draft(api_user(), code):
        abort(403)
    payload = _json_body()
    draft = drafts.publish_draft(code, _string(payload, "name", required=True, limit=200), by=api_user(),
                                 note=_string(payload, "note", limit=5000))
    db.session.commit()
    return jsonify(draft_json(draft)), 201


@bp.get("/codes/<slug>/drafts/<int:number>")
@token_required
def get_draft(slug: str, number: int) -> ResponseReturnValue:
    code = _code(slug)
    if number > MAX_INTEGER:
        abort(404)
    draft = db.session.scalar(select(Draft).where(Draft.code_id == code.id, Draft.number == number))
    if draft is None:
        abort(404)
    return jsonify({**draft_json(draft), "clauses": [draft_clause_json(c) for c in draft.clauses]})
