"""Comparing drafts, and exports of drafts, redlines and feedback, with progress.

Every page checks access through :mod:`codedraft.policy`: a code you may not see, a job that is
not yours, and a job that does not exist all answer the same 404 (SECURITY-CASES 27). Exports
are made by background jobs (:mod:`codedraft.exports.jobs`); starting one is rate limited per
person (SECURITY-CASES 30).
"""
from __future__ import annotations

from collections import OrderedDict
from io import BytesIO
from pathlib import Path
from threading import Lock
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from codedraft import policy
from codedraft.api.auth import api_user, token_required
from codedraft.codes.models import Code
from codedraft.codes.views import load_code
from codedraft.drafts.models import Draft
from codedraft.drafts.operations import drafts_of
from codedraft.exports import builders, jobs
from codedraft.exports.builders import LIVE, DraftSelector
from codedraft.exports.compare import Comparison, compare_documents
from codedraft.exports.filenames import content_disposition
from codedraft.exports.redline import render_clause_index, render_inline, render_side_by_side, render_summary
from codedraft.extensions import db, limiter

bp = Blueprint("exports", __name__)

DEFAULT_EXPORTS_PER_MINUTE = 10


# Comparisons between two published drafts never change, so the last few are kept in memory:
# flipping between the inline and side-by-side layouts does not diff the drafts again. The memory
# belongs to the app (its own database): draft ids of another app's database mean other drafts.
_COMPARISONS_KEY = "codedraft_comparisons"
_COMPARISONS_KEPT = 8


class _ComparisonMemory:
    def __init__(self) -> None:
        self.kept: OrderedDict[tuple[int, int], Comparison] = OrderedDict()
        self.lock = Lock()

    def get(self, key: tuple[int, int]) -> Comparison | None:
        with self.lock:
            found = self.kept.get(key)
            if found is not None:
                self.kept.move_to_end(key)
            return found

    def put(self, key: tuple[int, int], comparison: Comparison) -> None:
        with self.lock:
            self.kept[key] = comparison
            while len(self.kept) > _COMPARISONS_KEPT:
                self.kept.popitem(last=False)


def _comparison_memory() -> _ComparisonMemory:
    memory = current_app.extensions.get(_COMPARISONS_KEY)
    if memory is None:
        memory = current_app.extensions.setdefault(_COMPARISONS_KEY, _ComparisonMemory())
    return memory  # type: ignore[no-any-return]


def _draft_id(code: Code, selector: DraftSelector) -> int | None:
    if selector == LIVE:
        return None
    return builders.find_draft(code, int(selector)).id


def compare_selectors(code: Code, old: DraftSelector, new: DraftSelector) -> Comparison:
    """The comparison of two drafts (or a draft and the live text) of ``code``; raises
    :class:`~codedraft.exports.builders.UnknownDraft`."""
    old_id, new_id = _draft_id(code, old), _draft_id(code, new)
    key = (old_id, new_id) if old_id is not None and new_id is not None else None
    memory = _comparison_memory()
    if key is not None:
        cached = memory.get(key)
        if cached is not None:
            return cached
    comparison = compare_documents(builders.load_document(code, old), builders.load_document(code, new))
    if key is not None:
        memory.put(key, comparison)
    return comparison


redline_words = builders.redline_words  # the on-screen comparison's words, in the reader's language


def _selector_arg(name: str, default: DraftSelector | None) -> DraftSelector | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        return builders.parse_selector(raw)
    except builders.UnknownDraft:
        abort(404)


def _default_pair(drafts: list[Draft]) -> tuple[DraftSelector | None, DraftSelector]:
    """The last two drafts; or the only draft against the live text."""
    if len(drafts) >= 2:
        return drafts[-2].number, drafts[-1].number
    if drafts:
        return drafts[-1].number, LIVE
    return None, LIVE


@bp.route("/codes/<slug>/compare")
@login_required
def compare(slug: str) -> ResponseReturnValue:
    """Two drafts (or a draft and the live text) side by side or inline, clause by clause."""
    code = load_code(slug)
    drafts = drafts_of(code)
    default_old, default_new = _default_pair(drafts)
    old = _selector_arg("from", default_old)
    new = _selector_arg("to", default_new)
    layout = request.args.get("layout", "inline")
    if layout not in ("inline", "side"):
        layout = "inline"
    comparison = fragment = summary = index = None
    if old is not None and new is not None:
        try:
            comparison = compare_selectors(code, old, new)
        except builders.UnknownDraft:
            abort(404)
        changed_only = request.args.get("changed_only") == "1"
        words = redline_words()
        render = render_side_by_side if layout == "side" else render_inline
        fragment = render(comparison, changed_only=changed_only, words=words)
        summary = render_summary(comparison, words=words)
        index = render_clause_index(comparison, words=words)
    return render_template(
        "exports/compare.html", code=code, drafts=drafts, old=old, new=new, layout=layout,
        comparison=comparison, fragment=fragment, summary=summary, index=index,
        changed_only=request.args.get("changed_only") == "1",
        may_export_feedback=policy.can_export_feedback(current_user, code),
    )


def _export_limit() -> str:
    return f"{int(current_app.config.get('EXPORTS_PER_MINUTE', DEFAULT_EXPORTS_PER_MINUTE))} per minute"


def _export_limit_key() -> str:
    return f"exports:{current_user.get_id() or request.remote_addr}"


@bp.route("/codes/<slug>/exports", methods=["GET"])
@login_required
def index(slug: str) -> ResponseReturnValue:
    """The export forms, and this person's recent exports of the code."""
    code = load_code(slug)
    recent = db.session.scalars(
        select(jobs.ExportJob)
        .where(jobs.ExportJob.code_id == code.id, jobs.ExportJob.user_id == current_user.id)
        .order_by(jobs.ExportJob.created_at.desc())
        .limit(10)
    ).all()
    return render_template(
        "exports/index.html", code=code, drafts=drafts_of(code), recent=recent, formats=jobs.FORMATS,
        kinds=jobs.ExportKind, may_export_feedback=policy.can_export_feedback(current_user, code),
    )


@bp.route("/codes/<slug>/exports", methods=["POST"])
@login_required
@limiter.limit(_export_limit, key_func=_export_limit_key, methods=["POST"])
def start(slug: str) -> ResponseReturnValue:
    """Queue an export job and send the person to its progress page."""
    code = load_code(slug)
    form = request.form
    params: dict[str, Any] = {
        "draft": form.get("draft"), "from": form.get("from"), "to": form.get("to"),
        "layout": form.get("layout") or "inline", "changed_only": form.get("changed_only") == "1",
        # Decided here from the person, never taken from the form: hidden comments are the Office's.
        "include_hidden": builders.feedback_scope(current_user).include_hidden,
    }
    try:
        export_request = jobs.ExportRequest.build(form.get("kind"), form.get("format"), params)
    except jobs.ExportError as error:
        return render_template("error.html", title=_("Cannot export"), message=str(error), status=400), 400
    if export_request.kind is jobs.ExportKind.FEEDBACK and not policy.can_export_feedback(current_user, code):
        abort(403)
    for selector in (export_request.draft, export_request.old, export_request.new):
        if selector is not None and selector != LIVE:
            try:
                builders.find_draft(code, int(selector))
            except builders.UnknownDraft:
                abort(404)
    job = jobs.new_job(code, current_user, export_request)
    db.session.commit()
    jobs.runner_for(current_app._get_current_object()).submit(job.id)  # type: ignore[attr-defined]
    return redirect(url_for("exports.job_page", job_id=job.id), code=303)


def load_job(job_id: str) -> tuple[jobs.ExportJob, Code]:
    """The job, if it is the viewer's and they may still see its code (and, for feedback, still
    export feedback); otherwise the same 404 as a job that does not exist."""
    job = db.session.get(jobs.ExportJob, job_id) if len(job_id) <= 64 else None
    if job is None or job.user_id is None or str(job.user_id) != current_user.get_id():
        abort(404)
    code = db.session.get(Code, job.code_id)
    if code is None or not policy.can_view_code(current_user, code):
        abort(404)
    if job.kind == jobs.ExportKind.FEEDBACK.value and not policy.can_export_feedback(current_user, code):
        abort(404)
    jobs.give_up_if_abandoned(job)
    return job, code


def job_json(job: jobs.ExportJob) -> dict[str, Any]:
    """The job's state, as the progress script and the API read it."""
    return {
        "id": job.id, "kind": job.kind, "format": job.format, "status": job.status, "progress": job.progress,
        "message": job.message, "finished": job.finished,
        "download_url": url_for("exports.download", job_id=job.id) if job.status == jobs.JobStatus.DONE.value else None,
        "download_name": job.download_name or None,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


@bp.route("/exports/<job_id>")
@login_required
def job_page(job_id: str) -> ResponseReturnValue:
    job, code = load_job(job_id)
    return render_template("exports/job.html", job=job, code=code, status=job_json(job))


@bp.route("/exports/<job_id>.json")
@login_required
def job_status(job_id: str) -> ResponseReturnValue:
    job, _code = load_job(job_id)
    response = jsonify(job_json(job))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/exports/<job_id>/download")
@login_required
def download(job_id: str) -> ResponseReturnValue:
    """The finished file, as an attachment with a safe name (SECURITY-CASES 26)."""
    job, _code = load_job(job_id)
    if job.status != jobs.JobStatus.DONE.value or not job.file_path:
        abort(404)
    path = Path(job.file_path).resolve()
    root = jobs.export_dir(current_app._get_current_object()).resolve()  # type: ignore[attr-defined]
    if root not in path.parents or not path.is_file():
        abort(404)
    stem, _, suffix = (job.download_name or f"export.{job.format}").rpartition(".")
    # Read whole (exports are a few MB at most): no file handle outlives the request.
    # The bare type: Werkzeug adds the charset of a text type itself (given one, it added a second).
    mimetype = jobs.MIME_TYPES.get(job.format, "application/octet-stream").split(";")[0]
    response = send_file(BytesIO(path.read_bytes()), mimetype=mimetype, as_attachment=True,
                         download_name=f"export.{job.format}", max_age=0)
    response.headers["Content-Disposition"] = content_disposition(stem, suffix or job.format)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # A downloaded HTML export opened from this origin must not run or load anything.
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# API ------------------------------------------------------------------------------------------


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """Clause-level changes between two drafts, keyed by stable uid."""
    return {
        "from": comparison.old.draft_label,
        "to": comparison.new.draft_label,
        "counts": {
            "added": len(comparison.added), "removed": len(comparison.removed), "moved": len(comparison.moved),
            "renumbered": len(comparison.renumbered), "retitled": len(comparison.retitled),
            "text_changed": len(comparison.text_changed),
        },
        "clauses": [
            {
                "uid": clause.uid, "status": clause.status.value,
                "old_number": clause.old.number if clause.old else None,
                "new_number": clause.new.number if clause.new else None,
                "title": clause.current.title, "moved": clause.moved, "renumbered": clause.renumbered,
                "retitled": clause.retitled, "text_changed": clause.text_changed,
            }
            for clause in comparison.clauses
        ],
    }


@bp.route("/api/v1/codes/<slug>/compare")
@token_required
@limiter.limit("30 per minute")
def api_compare(slug: str) -> ResponseReturnValue:
    code = db.session.scalar(select(Code).where(Code.slug == slug))
    if code is None or not policy.can_view_code(api_user(), code):
        return jsonify(error="Not found."), 404
    try:
        old = builders.parse_selector(request.args.get("from", ""))
        new = builders.parse_selector(request.args.get("to", "live"))
        comparison = compare_selectors(code, old, new)
    except builders.UnknownDraft:
        return jsonify(error="Not found."), 404
    return jsonify(comparison_json(comparison))
