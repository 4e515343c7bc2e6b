"""The Office imports a file in the browser: upload, preview, correct, apply.

Upload reads the file (nothing is written if it cannot be read); a readable file is kept as a
pending upload and previewed; applying takes the Office's corrections and working groups and
writes everything in one transaction, whose progress the page polls.
"""
from __future__ import annotations

import secrets
import threading
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from codedraft import policy
from codedraft.accounts.models import User
from codedraft.api.auth import api_user, token_required
from codedraft.audit.operations import record_event
from codedraft.codes import operations as codes
from codedraft.codes.models import Code, WorkingGroup
from codedraft.codes.views import load_code
from codedraft.database import storable_text
from codedraft.extensions import csrf, db, limiter
from codedraft.importer import operations
from codedraft.importer.models import ImportUpload
from codedraft.importer.preview import ImportPreview, preview_text, preview_upload
from codedraft.importer.reading import UnreadableFile, read_upload
from codedraft.timeutil import utcnow

bp = Blueprint("importer", __name__)

# Progress of imports being applied in this process, by upload token: 0-100.
_progress: dict[str, int] = {}
_progress_lock = threading.Lock()


# A pending upload nobody applied is forgotten after this long.
PENDING_UPLOAD_HOURS = 24


def _forget_stale_uploads(user: User) -> None:
    """Drop this person's uploads left unapplied for a day: they only ever wait for a decision."""
    cutoff = utcnow() - timedelta(hours=PENDING_UPLOAD_HOURS)
    for stale in db.session.scalars(select(ImportUpload).where(
            ImportUpload.user_id == user.id, ImportUpload.applied_at.is_(None), ImportUpload.created_at < cutoff)):
        db.session.delete(stale)


def _max_bytes() -> int:
    return int(current_app.config.get("IMPORT_MAX_BYTES", 5 * 1024 * 1024))


def _target_code(slug: str | None) -> Code | None:
    """The code a next version is for (the Office of that code only), or None for a new code."""
    if not slug:
        if not policy.can_create_code(current_user):
            abort(403)
        return None
    code = load_code(slug)
    if not policy.can_administer_code(current_user, code):
        abort(403)
    return code


def _load_upload(token: str) -> ImportUpload:
    """The caller's own pending upload, or 404 (the same for another person's)."""
    if not storable_text(token):
        abort(404)
    upload = db.session.scalar(select(ImportUpload).where(ImportUpload.token == token))
    if upload is None or upload.user_id != current_user.id:
        abort(404)
    return upload


def _upload_code(upload: ImportUpload) -> Code | None:
    if upload.code_id is None:
        return None
    code = db.session.get(Code, upload.code_id)
    if code is None or not policy.can_administer_code(current_user, code):
        abort(404)
    return code


def _preview_of(upload: ImportUpload, code: Code | None) -> ImportPreview:
    old = operations.existing_clauses(code) if code is not None else None
    try:
        uploaded = read_upload(upload.content, upload.filename, max_bytes=_max_bytes())
    except UnreadableFile as error:
        return ImportPreview(None, error=str(error))
    preview = preview_text(uploaded.markdown, code, old, outline=uploaded.outline)
    preview.notices = uploaded.notices
    return preview


@bp.route("/import", methods=["GET"])
@login_required
def upload_form() -> ResponseReturnValue:
    code = _target_code(request.args.get("code"))
    return render_template("importer/upload.html", code=code)


@bp.route("/import", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def upload() -> ResponseReturnValue:
    code = _target_code(request.form.get("code") or None)
    file = request.files.get("file")
    if file is None or not file.filename:
        flash(_("Choose a Markdown (.md) or Word (.docx) file."), "error")
        return render_template("importer/upload.html", code=code), 400
    data = file.read(_max_bytes() + 1)
    old = operations.existing_clauses(code) if code is not None else None
    preview = preview_upload(data, file.filename, code, old, max_bytes=_max_bytes())
    if preview.error:
        # Nothing is kept of a file that cannot be imported.
        return render_template("importer/preview.html", preview=preview, code=code, upload=None,
                               filename=file.filename, groups=[], reasons=_reasons()), 400
    _forget_stale_uploads(current_user)
    pending = ImportUpload(token=secrets.token_urlsafe(24), user_id=current_user.id,
                           code_id=code.id if code else None, filename=file.filename[:300],
                           file_format="docx" if data.startswith(b"PK") else "md", content=data)
    db.session.add(pending)
    db.session.commit()
    return redirect(url_for("importer.preview", token=pending.token))


@bp.route("/import/<token>")
@login_required
def preview(token: str) -> ResponseReturnValue:
    upload = _load_upload(token)
    code = _upload_code(upload)
    preview = _preview_of(upload, code)
    groups = list(code.working_groups) if code is not None else []
    return render_template("importer/preview.html", preview=preview, code=code, upload=upload,
                           filename=upload.filename, groups=groups, reasons=_reasons())


def _reasons() -> dict[str, str]:
    """Why a match was proposed, in the reader's language."""
    return {
        "number+title": _("same number and title"),
        "title": _("same title"),
        "text": _("alike text"),
        "new": _("no earlier clause is like it"),
    }


def _corrections(preview: ImportPreview, form: dict[str, str]) -> dict[str, str | None]:
    """The matches the Office changed: ``match-<key>`` is an old stable id or "new"."""
    corrections: dict[str, str | None] = {}
    for key, proposed in preview.matches.items():
        chosen = form.get(f"match-{key}")
        if chosen is None:
            continue
        wanted = None if chosen == "new" else chosen
        if wanted != proposed.old_id:
            corrections[key] = wanted
    return corrections


def _groups(code: Code | None, preview: ImportPreview, form: dict[str, str]) -> dict[str, str]:
    """Working groups per chapter key: an existing group's id, or a new group's name."""
    existing = {str(group.id): group for group in code.working_groups} if code is not None else {}
    wanted: dict[str, str] = {}
    for chapter in preview.document.chapters if preview.document else ():
        name = form.get(f"newgroup-{chapter.key}", "").strip()[:200]
        chosen = form.get(f"group-{chapter.key}", "")
        if name:
            wanted[chapter.key] = "name:" + name
        elif chosen in existing:
            wanted[chapter.key] = chosen
    return wanted  # resolved once the code exists


def _resolve_groups(code: Code, wanted: dict[str, str]) -> dict[str, WorkingGroup | None]:
    by_id = {str(group.id): group for group in code.working_groups}
    by_name = {group.name: group for group in code.working_groups}
    result: dict[str, WorkingGroup | None] = {}
    for key, value in wanted.items():
        if value.startswith("name:"):
            name = value[5:]
            by_name[name] = by_name.get(name) or codes.add_working_group(code, name)
            result[key] = by_name[name]
        else:
            result[key] = by_id.get(value)
    return result


@bp.route("/import/<token>/apply", methods=["POST"])
@login_required
@limiter.limit("10 per minute")
def apply(token: str) -> ResponseReturnValue:
    upload = _load_upload(token)
    code = _upload_code(upload)
    wants_json = request.accept_mimetypes.best == "application/json"
    if upload.applied_at is not None:
        return _answer(wants_json, _("This file was imported already."), 409, code)
    preview = _preview_of(upload, code)
    if preview.error or preview.document is None:
        return _answer(wants_json, preview.error or _("The file holds no text to import."), 400, code, token)
    form = {key: value for key, value in request.form.items()}
    wanted = _groups(code, preview, form)
    try:
        report = _apply_upload(upload, code, preview, token, title=form.get("title", ""),
                               draft_name=form.get("draft_name", ""), corrections=_corrections(preview, form),
                               wanted_groups=wanted, by=current_user)
    except (operations.ImportError_, codes.CodeError) as error:
        return _answer(wants_json, str(error), 400, code, token)
    message = _("Imported: %(chapters)s chapters, %(clauses)s clauses.", chapters=report.chapters,
                clauses=sum(report.counts.values()))
    target_url = url_for("codes.overview", slug=report.code.slug)
    if wants_json:
        return jsonify(message=message, redirect=target_url)
    flash(message, "success")
    return redirect(target_url)


def _apply_upload(upload: ImportUpload, code: Code | None, preview: ImportPreview, token: str, *, title: str,
                  draft_name: str, corrections: dict[str, str | None], wanted_groups: dict[str, str],
                  by: User) -> operations.ImportReport:
    """Write the upload into its code (or a new one) in one transaction and commit it, recording
    the act in the audit log; rolls back and raises ImportError_/CodeError when refused."""
    assert preview.document is not None
    title_or_none = title.strip()[:300] or None

    def progress(done: int, total: int) -> None:
        with _progress_lock:
            _progress[token] = min(99, round(100 * done / max(total, 1)))

    try:
        target = code or codes.create_code(title_or_none or preview.document.title or "Imported code")
        report = operations.import_document(
            preview.markdown, code=target, title=title_or_none, draft_name=draft_name.strip()[:200] or None,
            by=by, progress=progress, parsed=preview.document, corrections=corrections,
            groups=_resolve_groups(target, wanted_groups), fresh=code is None,
            from_word=upload.file_format == "docx",
        )
        upload.applied_at = utcnow()
        record_event("import.applied", actor=by, code=report.code, subject=upload.filename, details={
            "new_code": code is None, "chapters": report.chapters, "clauses": sum(report.counts.values()),
            "matched": report.matched, "new": report.new, "dropped": report.dropped,
            "corrections": len(corrections), "draft": report.draft.name if report.draft else None,
        })
        db.session.commit()
    except (operations.ImportError_, codes.CodeError):
        db.session.rollback()
        raise
    finally:
        with _progress_lock:
            _progress.pop(token, None)
    return report


def _answer(wants_json: bool, message: str, status: int, code: Code | None,
            token: str | None = None) -> ResponseReturnValue:
    if wants_json:
        return jsonify(error=message), status
    flash(message, "error")
    if token:
        return redirect(url_for("importer.preview", token=token))
    return redirect(url_for("importer.upload_form", code=code.slug if code else None))


@bp.route("/import/<token>/progress")
@login_required
def progress(token: str) -> ResponseReturnValue:
    upload = _load_upload(token)
    with _progress_lock:
        running = _progress.get(token)
    done = upload.applied_at is not None
    return jsonify(progress=100 if done else (running or 0), running=running is not None, done=done)


# --- The same through /api/v1 (bearer tokens, no cookies, so no CSRF token) ------------------


def preview_json(preview: ImportPreview, upload: ImportUpload | None) -> dict[str, Any]:
    """The preview as the API returns it (schema ``ImportPreview`` in importer/openapi.py)."""
    document = preview.document
    assert document is not None
    return {
        "token": upload.token if upload else None,
        "title": document.title,
        "counts": preview.counts,
        "warnings": list(preview.notices) + list(document.warnings),
        "chapters": [{
            "key": chapter.key, "number": chapter.number, "title": chapter.title,
            "clauses": [{"key": c.key, "kind": c.kind, "number": c.number, "title": c.title,
                         "parent_key": c.parent_key, "notes": [note.title for note in c.notes]}
                        for c in chapter.clauses],
        } for chapter in document.chapters],
        "matches": [{"key": m.new_key, "old_uid": m.old_id, "old_heading": preview.old_label(m.old_id) or None,
                     "how": m.how, "confidence": m.confidence} for m in preview.matches.values()],
        "dropped": [{"uid": uid, "heading": preview.old_label(uid)} for uid in preview.dropped],
    }


def _api_upload(token: str) -> tuple[ImportUpload, Code | None]:
    if not storable_text(token):
        abort(404)
    upload = db.session.scalar(select(ImportUpload).where(ImportUpload.token == token))
    if upload is None or upload.user_id != api_user().id:
        abort(404)
    code = db.session.get(Code, upload.code_id) if upload.code_id is not None else None
    if upload.code_id is not None and (code is None or not policy.can_administer_code(api_user(), code)):
        abort(404)
    return upload, code


@bp.post("/api/v1/imports")
@csrf.exempt
@token_required
@limiter.limit("30 per minute")
def api_upload() -> ResponseReturnValue:
    """Upload a file (multipart ``file``, optional ``code`` slug for a next version): its preview."""
    user = api_user()
    slug = request.form.get("code") or None
    code = None
    if slug:
        code = db.session.scalar(select(Code).where(Code.slug == slug)) if storable_text(slug) else None
        if code is None or not policy.can_view_code(user, code):
            return jsonify(error="No such code."), 404
        if not policy.can_administer_code(user, code):
            return jsonify(error="Only the Office of this code imports into it."), 403
    elif not policy.can_create_code(user):
        return jsonify(error="Only the Office creates codes."), 403
    file = request.files.get("file")
    if file is None:
        return jsonify(error="Send the document as the multipart field 'file'."), 400
    data = file.read(_max_bytes() + 1)
    preview = preview_upload(data, file.filename or "", code, operations.existing_clauses(code) if code else None,
                             max_bytes=_max_bytes())
    if preview.error:
        return jsonify(error=preview.error), 400
    _forget_stale_uploads(user)
    pending = ImportUpload(token=secrets.token_urlsafe(24), user_id=user.id, code_id=code.id if code else None,
                           filename=(file.filename or "upload")[:300],
                           file_format="docx" if data.startswith(b"PK") else "md", content=data)
    db.session.add(pending)
    db.session.commit()
    return jsonify(preview_json(preview, pending)), 201


@bp.get("/api/v1/imports/<token>")
@token_required
def api_preview(token: str) -> ResponseReturnValue:
    upload, code = _api_upload(token)
    preview = _preview_of(upload, code)
    if preview.error or preview.document is None:
        return jsonify(error=preview.error or "The file holds no text to import."), 400
    return jsonify(preview_json(preview, upload))


def _api_strings(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key, {})
    if not isinstance(value, dict) or len(value) > 10_000 or not all(isinstance(k, str) for k in value):
        abort(400, description=f"'{key}' must be an object keyed by clause or chapter keys.")
    return value


@bp.post("/api/v1/imports/<token>/apply")
@csrf.exempt
@token_required
@limiter.limit("10 per minute")
def api_apply(token: str) -> ResponseReturnValue:
    """Apply an upload with corrections ``{key: old uid | null}`` and groups ``{chapter key: name}``."""
    upload, code = _api_upload(token)
    if upload.applied_at is not None:
        return jsonify(error="This file was imported already."), 409
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify(error="Send a JSON object."), 400
    try:
        corrections = _api_strings(payload, "corrections")
        groups = _api_strings(payload, "groups")
    except HTTPException as error:
        return jsonify(error=error.description), 400
    if not all(v is None or isinstance(v, str) for v in corrections.values()) or \
            not all(isinstance(v, str) and 0 < len(v.strip()) <= 200 for v in groups.values()):
        return jsonify(error="Corrections name an old uid or null; groups name a working group."), 400
    title, draft_name = payload.get("title", ""), payload.get("draft_name", "")
    if not isinstance(title, str) or not isinstance(draft_name, str) or len(title) > 300 or len(draft_name) > 200:
        return jsonify(error="'title' and 'draft_name' are strings of at most 300 and 200 characters."), 400
    preview = _preview_of(upload, code)
    if preview.error or preview.document is None:
        return jsonify(error=preview.error or "The file holds no text to import."), 400
    try:
        wanted_groups = {key: "name:" + name.strip() for key, name in groups.items()}
        report = _apply_upload(upload, code, preview, token, title=title, draft_name=draft_name,
                               corrections=corrections, wanted_groups=wanted_groups, by=api_user())
    except (operations.ImportError_, codes.CodeError) as error:
        return jsonify(error=str(error)), 400
    return jsonify({
        "code": {"id": report.code.id, "slug": report.code.slug, "title": report.code.title,
                 "summary": report.code.summary, "language": report.code.language},
        "chapters": report.chapters, "clauses": sum(report.counts.values()), "matched": report.matched,
        "new": report.new, "dropped": report.dropped, "draft": report.draft.number if report.draft else None,
    })
