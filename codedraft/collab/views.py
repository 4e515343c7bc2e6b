"""Pages of co-editing: the clause editor panel, history, replay, blame, checkpoints, restore.

Viewing history needs ``can_view_clause``; naming a checkpoint and restoring need
``can_edit_clause``. A restore is a minimal edit through the live document (ClauseStore
.edit_live_text) in the view's transaction, sent to the clause's room once committed, so people
typing at that moment keep their work.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from codedraft import policy
from codedraft.accounts.models import User
from codedraft.api.auth import api_user, token_required
from codedraft.codes.models import Clause, Code
from codedraft.codes.panels import ClausePanel
from codedraft.codes.views import load_clause
from codedraft.collab import history, suggestions
from codedraft.collab.core import ClauseDocument
from codedraft.collab.history_access import (
    AUDIENCES,
    HistoryAccessError,
    can_see_live_history,
    history_audience,
    set_history_audience,
)
from codedraft.collab.models import Checkpoint, ClauseUpdate
from codedraft.collab.store import store_for
from codedraft.drafts.operations import clause_history
from codedraft.exports.redline_blocks import render_markdown_diff
from codedraft.extensions import db
from codedraft.markdown import render_markdown
from codedraft.security import allow_editor_styles

bp = Blueprint("collab", __name__)

SESSIONS_PER_PAGE = 25
CHECKPOINT_NAME_MAX = 200
# Blame classes cycle through this many colours (static/css/editor.css .blame-author-N).
BLAME_COLOURS = 8


# --- the editor panel on the clause page ------------------------------------------------------


def editor_panel(code: Code, clause: Clause, viewer: User) -> ClausePanel | None:
    """The live editor for anyone who may see the clause; read-only for those who may not edit.

    The page carries the pending suggestions as the list route answers them, so the editor names
    their authors from its first paint instead of waiting for that route."""
    if not policy.can_view_clause(viewer, clause):
        return None
    allow_editor_styles()  # remote cursors are coloured with style attributes (see the CSP)
    carried = _suggestions_json(clause, viewer)  # with the viewer's rights on suggestions
    sees_history = can_see_live_history(viewer, clause)
    return ClausePanel(
        template="collab/editor_panel.html",
        context={
            "clause_uid": clause.uid,
            "readonly": not policy.can_edit_clause(viewer, clause),
            "may_suggest": carried["may_suggest"],
            "may_decide": carried["may_decide"],
            "suggestions_url": url_for("collab.suggestions_json", slug=code.slug, uid=clause.uid),
            "suggestions": carried,
            "user_id": viewer.id,
            "user_name": viewer.name,
            "user_color": viewer.colour,
            "preview_url": url_for("codes.preview"),
            "preview_html": render_markdown(clause.body),
            "history_url": url_for("collab.history_page", slug=code.slug, uid=clause.uid) if sees_history else "",
            "authors_url": url_for("collab.blame_json", slug=code.slug, uid=clause.uid) if sees_history else "",
        },
        region="main",
        order=10,
    )


# --- reading the log --------------------------------------------------------------------------


def clause_log(clause: Clause) -> list[history.LoggedUpdate]:
    """Every stored update of the clause, oldest first, detached from the session."""
    rows = db.session.execute(
        select(ClauseUpdate.id, ClauseUpdate.user_id, ClauseUpdate.created_at, ClauseUpdate.origin,
               ClauseUpdate.update)
        .where(ClauseUpdate.clause_id == clause.id).order_by(ClauseUpdate.id)
    ).all()
    return [history.LoggedUpdate(id=r.id, user_id=r.user_id, created_at=r.created_at, origin=r.origin,
                                 update=r.update) for r in rows]


def people_by_id(user_ids: set[int | None]) -> dict[int, User]:
    wanted = {uid for uid in user_ids if uid is not None}
    if not wanted:
        return {}
    return {user.id: user for user in db.session.scalars(select(User).where(User.id.in_(wanted)))}


def author_label(user_id: int | None, origin: str, people: dict[int, User]) -> str:
    """Who to credit: a person's name, or what the edit came from when no person made it."""
    if user_id is not None and user_id in people:
        return people[user_id].name
    if origin == "import":
        return _("Imported text")
    if user_id is not None:
        return _("A former account")
    return _("The system")


def checkpoints_of(clause: Clause) -> list[Checkpoint]:
    return list(db.session.scalars(
        select(Checkpoint).where(Checkpoint.clause_id == clause.id).order_by(Checkpoint.upto_update_id.desc(),
                                                                             Checkpoint.id.desc())))


def _ensure_log(clause: Clause) -> list[history.LoggedUpdate]:
    """The log, seeded first if the clause was never opened for co-editing (so history has a start)."""
    log = clause_log(clause)
    if not log:
        db.session.commit()  # end our read transaction; the store writes the seed in its own
        store_for(current_app).open(clause)
        log = clause_log(clause)
    return log


# --- pages ------------------------------------------------------------------------------------


def load_history(slug: str, uid: str) -> tuple[Code, Clause]:
    """The clause, if the viewer may see its live history (403 otherwise: they may read the
    clause, not its unpublished keystrokes)."""
    code, clause = load_clause(slug, uid)
    if not can_see_live_history(current_user, clause):
        abort(403)
    return code, clause


@bp.route("/codes/<slug>/clauses/<uid>/history")
@login_required
def history_page(slug: str, uid: str) -> ResponseReturnValue:
    """Editing sessions, one per person and pause, newest first, each with the diff of what
    that person did; checkpoints; published versions to restore; the code's history setting."""
    code, clause = load_history(slug, uid)
    log = _ensure_log(clause)
    # Newest first by when each session ended (a long session started early may end last).
    sessions = sorted(history.group_sessions_by_person(log), key=lambda s: s.last_id, reverse=True)
    requested = request.args.get("page", 1, type=int) or 1
    shown, pages = history.paginate(sessions, requested, SESSIONS_PER_PAGE)
    people = people_by_id({s.user_id for s in shown})
    words = (_("inserted"), _("deleted"))
    diffs = {first_id: render_markdown_diff(diff, labels=words)
             for first_id, diff in history.session_diffs(log, shown).items()}
    checkpoints = checkpoints_of(clause)
    return render_template(
        "collab/history.html", code=code, clause=clause, sessions=shown, page=min(max(requested, 1), pages),
        pages=pages, people=people, author_label=author_label, checkpoints=checkpoints, diffs=diffs,
        may_edit=policy.can_edit_clause(current_user, clause), update_count=len(log),
        latest_id=log[-1].id if log else 0, versions=clause_history(clause.uid),
        may_administer=policy.can_administer_code(current_user, code), audience=history_audience(code.id),
        audiences=AUDIENCES,
    )


@bp.route("/codes/<slug>/history-access", methods=["POST"])
@login_required
def change_history_access(slug: str) -> ResponseReturnValue:
    """The code's admin chooses who sees the live history of its clauses."""
    code, clause = load_clause(slug, request.form.get("clause", ""))
    try:
        set_history_audience(code, request.form.get("audience", ""), current_user)
    except HistoryAccessError as error:
        if not policy.can_administer_code(current_user, code):
            abort(403)
        flash(_(str(error)), "error")  # the operation's messages are in the catalogue
    else:
        db.session.commit()
        flash(_("Who sees the live history was changed."), "success")
    return redirect(url_for("collab.history_page", slug=code.slug, uid=clause.uid))


@bp.route("/codes/<slug>/clauses/<uid>/history/replay")
@login_required
def replay_page(slug: str, uid: str) -> ResponseReturnValue:
    """The text as of one update: ``?at=<update id>`` or ``?step=<1..n>`` (the slider's value)."""
    code, clause = load_history(slug, uid)
    log = _ensure_log(clause)
    ids = [logged.id for logged in log]
    step = _chosen_step(ids, request.args.get("at", type=int), request.args.get("step", type=int))
    chosen = log[step - 1]
    text = history.text_as_of(log, chosen.id)
    sessions = history.group_sessions_by_person(log)
    session_ends = sorted(s.last_id for s in sessions)
    previous_end = max((i for i in session_ends if i < chosen.id), default=None)
    next_end = min((i for i in session_ends if i > chosen.id), default=None)
    people = people_by_id({chosen.user_id})
    return render_template(
        "collab/replay.html", code=code, clause=clause, text=text, text_html=render_markdown(text),
        step=step, steps=len(ids), chosen=chosen, author=author_label(chosen.user_id, chosen.origin, people),
        previous_end=previous_end, next_end=next_end, first_id=ids[0], last_id=ids[-1],
        may_edit=policy.can_edit_clause(current_user, clause), is_current=chosen.id == ids[-1],
    )


def _chosen_step(ids: list[int], at: int | None, step: int | None) -> int:
    """1-based position in the log: the last update with id <= ``at``, else ``step`` clamped,
    else the latest. 404 when ``at`` is before the first update."""
    if at is not None:
        position = sum(1 for update_id in ids if update_id <= at)
        if position == 0:
            abort(404)
        return position
    if step is not None:
        return min(max(step, 1), len(ids))
    return len(ids)


@bp.route("/codes/<slug>/clauses/<uid>/history/blame")
@login_required
def blame_page(slug: str, uid: str) -> ResponseReturnValue:
    code, clause = load_history(slug, uid)
    log = _ensure_log(clause)
    passages = history.attribute_text(log)
    people = people_by_id({p.user_id for p in passages})
    authors: dict[tuple[int | None, str], dict[str, Any]] = {}
    for passage in passages:
        key = (passage.user_id, passage.origin if passage.user_id is None else "")
        if key not in authors:
            authors[key] = {"label": author_label(passage.user_id, passage.origin, people),
                            "css": f"blame-author-{len(authors) % BLAME_COLOURS}",
                            "number": len(authors) + 1, "characters": 0}
        authors[key]["characters"] += len(passage.text)
    rows = [{"passage": p, "author": authors[(p.user_id, p.origin if p.user_id is None else "")]} for p in passages]
    return render_template("collab/blame.html", code=code, clause=clause, rows=rows, legend=list(authors.values()))


@bp.route("/codes/<slug>/clauses/<uid>/history/blame.json")
@login_required
def blame_json(slug: str, uid: str) -> ResponseReturnValue:
    """Who wrote each passage of the stored text, for the editor's authorship colours."""
    code, clause = load_history(slug, uid)
    passages = history.attribute_text(_ensure_log(clause))
    people = people_by_id({p.user_id for p in passages})
    response = jsonify(passages=[{"text": p.text, "author": author_label(p.user_id, p.origin, people)}
                                 for p in passages])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/codes/<slug>/clauses/<uid>/history/checkpoints", methods=["POST"])
@login_required
def create_checkpoint(slug: str, uid: str) -> ResponseReturnValue:
    code, clause = load_clause(slug, uid)
    if not policy.can_edit_clause(current_user, clause):
        abort(403)
    name = (request.form.get("name") or "").strip()
    log = _ensure_log(clause)
    at = request.form.get("at", type=int) or log[-1].id
    if not name or len(name) > CHECKPOINT_NAME_MAX:
        flash(_("Give the checkpoint a name of at most %(max)d characters.", max=CHECKPOINT_NAME_MAX), "error")
        return redirect(url_for("collab.history_page", slug=code.slug, uid=clause.uid))
    if at < log[0].id:
        abort(400)
    upto = max(logged.id for logged in log if logged.id <= at)
    db.session.add(Checkpoint(clause_id=clause.id, name=name, upto_update_id=upto,
                              text=history.text_as_of(log, upto), created_by_id=current_user.id))
    db.session.commit()
    flash(_("Checkpoint “%(name)s” saved.", name=name), "success")
    return redirect(url_for("collab.history_page", slug=code.slug, uid=clause.uid))


@bp.route("/codes/<slug>/clauses/<uid>/history/restore", methods=["POST"])
@login_required
def restore(slug: str, uid: str) -> ResponseReturnValue:
    """Make the live clause read as it did at an update or checkpoint, by a minimal live edit.

    Three-way: the change from the version the restorer was looking at (``seen``, an update id;
    the latest stored one by default) to the restored version is applied to the live text, so
    words typed meanwhile by others survive.
    """
    code, clause = load_clause(slug, uid)
    if not policy.can_edit_clause(current_user, clause):
        abort(403)
    log = clause_log(clause)
    target = _restore_target(clause, log)
    seen_id = request.form.get("seen", type=int) or (log[-1].id if log else 0)
    seen = history.text_as_of(log, seen_id) if log and seen_id >= log[0].id else clause.body
    complete = [True]

    def onto_live(document: ClauseDocument) -> str:
        merged, complete[0] = history.restore_onto(seen, target, document.text)
        return merged

    changed = store_for(current_app).edit_live_text(clause, onto_live, user_id=current_user.id, origin="restore")
    if not changed:
        flash(_("The clause already reads like that; nothing to restore."), "info")
        return redirect(url_for("collab.history_page", slug=code.slug, uid=clause.uid))
    try:
        db.session.commit()  # co-editors get the edit once this commits
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("restoring clause %s failed", clause.uid)
        flash(_("The restore could not be saved. Nothing was changed; please try again."), "error")
        return redirect(url_for("collab.history_page", slug=code.slug, uid=clause.uid))
    if complete[0]:
        flash(_("Restored. Anyone editing now keeps the work outside the restored passages."), "success")
    else:
        flash(_("Restored, except passages edited since you looked: they keep their new wording."), "warning")
    return redirect(url_for("collab.history_page", slug=code.slug, uid=clause.uid))


def _restore_target(clause: Clause, log: list[history.LoggedUpdate]) -> str:
    """The text to restore from the form: ``checkpoint=<id>`` or ``at=<update id>``; 400 otherwise."""
    draft_number = request.form.get("draft", type=int)
    if draft_number is not None:
        # "The clause as in Draft N": its text frozen at that publication.
        for draft, version in clause_history(clause.uid):
            if draft.number == draft_number and draft.code_id == clause.code_id:
                return version.body
        abort(404)
    checkpoint_id = request.form.get("checkpoint", type=int)
    if checkpoint_id is not None:
        checkpoint = db.session.get(Checkpoint, checkpoint_id)
        if checkpoint is None or checkpoint.clause_id != clause.id:
            abort(404)
        return checkpoint.text
    at = request.form.get("at", type=int)
    if at is None:
        abort(400)
    if not log or at < log[0].id:
        abort(404)
    return history.text_as_of(log, at)


# --- API ----------------------------------------------------------------------------------------

API_SESSIONS_LIMIT = 200


@bp.route("/api/v1/codes/<slug>/clauses/<uid>/history")
@token_required
def api_history(slug: str, uid: str) -> ResponseReturnValue:
    """Editing sessions, newest first (at most 200), and with ``?at=<update id>`` the text then."""
    user = api_user()
    code = db.session.scalar(select(Code).where(Code.slug == slug))
    clause = db.session.scalar(select(Clause).where(Clause.uid == uid, Clause.code_id == code.id)) if code else None
    if clause is None or not policy.can_view_clause(user, clause):
        return jsonify(error="There is nothing here, or you may not see it."), 404
    if not can_see_live_history(user, clause):
        return jsonify(error="Only the drafting team sees the live history of this code."), 403
    log = _ensure_log(clause)
    sessions = sorted(history.group_sessions_by_person(log), key=lambda s: s.last_id,
                      reverse=True)[:API_SESSIONS_LIMIT]
    people = people_by_id({s.user_id for s in sessions})
    payload: dict[str, Any] = {
        "clause": clause.uid,
        "update_count": len(log),
        "sessions": [{"author": author_label(s.user_id, s.origin, people), "user_id": s.user_id,
                      "origin": s.origin, "first_update": s.first_id, "last_update": s.last_id,
                      "updates": s.update_count, "started_at": s.started_at.isoformat() + "Z",
                      "ended_at": s.ended_at.isoformat() + "Z"} for s in sessions],
    }
    at = request.args.get("at", type=int)
    if at is not None:
        if at < log[0].id:
            return jsonify(error="There is nothing here, or you may not see it."), 404
        payload["at"] = at
        payload["text"] = history.text_as_of(log, at)
    return jsonify(payload)


# --- suggestions --------------------------------------------------------------------------------


def _suggestion_ids(field: str) -> list[str]:
    """The ids a request names in ``field`` (form fields, repeated); 400 if malformed."""
    try:
        return suggestions.checked_ids(request.form.getlist(field) or request.args.getlist(field))
    except suggestions.SuggestionError as error:
        abort(400, description=str(error))


def _suggestions_json(clause: Clause, viewer: User) -> dict[str, Any]:
    """The pending suggestions of a clause ``viewer`` may see, with their authors, as the editor's
    list reads them (from the list route, and in the clause page for the first paint)."""
    store = store_for(current_app)
    listed = suggestions.with_authors(suggestions.pending(store, clause))
    return {"suggestions": [item.as_json(viewer.id) for item in listed],
            "may_decide": policy.can_decide_suggestions(viewer, clause),
            "may_suggest": policy.can_suggest_on_clause(viewer, clause)}


@bp.route("/codes/<slug>/clauses/<uid>/suggestions")
@login_required
def suggestions_json(slug: str, uid: str) -> ResponseReturnValue:
    """The clause's pending suggestions, with their authors, for the editor's list and marks."""
    _code, clause = load_clause(slug, uid)
    response = jsonify(_suggestions_json(clause, current_user))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/codes/<slug>/clauses/<uid>/suggestions/preview")
@login_required
def suggestions_preview(slug: str, uid: str) -> ResponseReturnValue:
    """What accepting (``accept``) and rejecting (``reject``) these suggestions would make of the
    clause: the text after and the word diff, nothing written."""
    _code, clause = load_clause(slug, uid)
    accept, reject = _suggestion_ids("accept"), _suggestion_ids("reject")
    try:
        shown = suggestions.preview(store_for(current_app), clause, current_user, accept=accept, reject=reject)
    except suggestions.NotAllowed:
        abort(403)
    except suggestions.SuggestionError as error:
        return jsonify(ok=False, error=str(error)), 404
    return jsonify(ok=True, before=shown.before, after=shown.after,
                   diff_html=str(render_markdown_diff(shown.diff)))


@bp.route("/codes/<slug>/clauses/<uid>/suggestions/decide", methods=["POST"])
@login_required
def decide_suggestions(slug: str, uid: str) -> ResponseReturnValue:
    """Accept and reject suggestions: ``accept`` and ``reject`` ids, or ``all=accept|reject`` for
    every pending one. People who may edit decide any; a suggester may reject (withdraw) their
    own. One minimal edit of the live text, committed here, then sent to the clause's room."""
    _code, clause = load_clause(slug, uid)
    accept, reject = _suggestion_ids("accept"), _suggestion_ids("reject")
    every = request.form.get("all")
    if every is not None:
        if every not in ("accept", "reject") or accept or reject:
            abort(400, description="all is accept or reject, without ids")
        if not policy.can_decide_suggestions(current_user, clause):
            abort(403)
        ids = [s.id for s in suggestions.pending(store_for(current_app), clause)]
        accept, reject = (ids, []) if every == "accept" else ([], ids)
        if not ids:
            return jsonify(ok=True, changed=False, **_suggestions_json(clause, current_user))
    try:
        changed = suggestions.decide(store_for(current_app), clause, current_user, accept=accept, reject=reject)
        db.session.commit()  # co-editors get the edit once this commits
    except suggestions.NotAllowed:
        db.session.rollback()
        abort(403)
    except suggestions.SuggestionError as error:
        db.session.rollback()
        return jsonify(ok=False, error=str(error)), 404 if "no such" in str(error) else 400
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("deciding suggestions of clause %s failed", clause.uid)
        message = _("The decision could not be saved. Nothing was changed; please try again.")
        return jsonify(ok=False, error=message), 503
    return jsonify(ok=True, changed=changed, **_suggestions_json(clause, current_user))
