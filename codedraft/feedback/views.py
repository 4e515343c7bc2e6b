"""Pages and endpoints of feedback: threads on a clause, the code's feedback overview, rounds,
decisions on comments and amendments, moderation, notifications.

Every handler names a code and a clause (or a code) in its URL and loads them through
``codes.views.load_code``/``load_clause``, which answer 404 for missing and forbidden alike
(SECURITY-CASES 3, 27); a comment id is only honoured if it belongs to that clause and the viewer
may see it. Each form works without JavaScript; with it, the same forms are posted by fetch
(header ``X-Requested-With: fetch``) and answered with JSON.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from codedraft import labels, policy
from codedraft.api.auth import api_user, token_required
from codedraft.codes.models import Clause, Code
from codedraft.codes.operations import live_clauses
from codedraft.codes.views import load_clause, load_code
from codedraft.collab.store import store_for
from codedraft.drafts.models import Draft
from codedraft.drafts.operations import drafts_of
from codedraft.exports.compare import diff_words
from codedraft.exports.redline import render_segments
from codedraft.exports.redline_blocks import render_markdown_diff
from codedraft.extensions import db, limiter
from codedraft.feedback import operations as ops
from codedraft.feedback import realtime
from codedraft.feedback.anchors import AnchorError, to_utf16
from codedraft.feedback.blueprint import bp
from codedraft.feedback.charts import legend_swatch, stacked_bar
from codedraft.feedback.models import DISPOSITIONS, STATUSES, Comment, FeedbackRound
from codedraft.markdown import render_markdown
from codedraft.notifications import messages as said
from codedraft.notifications import operations as notify_ops
from codedraft.numbers import stored_integer
from codedraft.security import safe_local_path
from codedraft.timeutil import parse_utc, utcnow

#: Posting limit per person (SECURITY-CASES 30); app.config["FEEDBACK_POST_LIMIT"] overrides it.
DEFAULT_POST_LIMIT = "10 per minute"
#: Up to this many threads, every thread shows its forms inline; beyond it threads are
#: collapsed and their forms live on the thread's own page (a page of 2,000 forms helps no one).
INLINE_FORMS_LIMIT = 40
#: Threads shown in full per page of a clause's feedback (the rest are one line each).
THREADS_PER_PAGE = 25
#: Threads per page on the code-wide list.
CODE_PAGE_SIZE = 100


def _post_limit() -> str:
    return str(current_app.config.get("FEEDBACK_POST_LIMIT", DEFAULT_POST_LIMIT))


def _per_user() -> str:
    return f"feedback-user:{current_user.get_id() or request.remote_addr}"


# --- helpers ---------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


def _thread_link(code: Code, clause: Clause, comment_id: int) -> str:
    return url_for("feedback.thread", slug=code.slug, uid=clause.uid, comment_id=comment_id)


def _back(code: Code, clause: Clause, anchor: str = "") -> str:
    """Where a form returns: its ``next`` field if it is a path of this code, else the feedback page."""
    target = request.form.get("next", "")
    prefix = f"/codes/{code.slug}/"
    if target.startswith(prefix) and "//" not in target and safe_local_path(target) is not None:
        return target + anchor
    return url_for("feedback.clause_feedback", slug=code.slug, uid=clause.uid) + anchor


def _done(code: Code, clause: Clause, message: str, comment_id: int | None = None) -> ResponseReturnValue:
    if _wants_json():
        return jsonify(ok=True, message=message, id=comment_id)
    flash(message, "info")
    return redirect(_back(code, clause, f"#comment-{comment_id}" if comment_id else ""), code=303)


def _failed(code: Code, clause: Clause, error: str, status: int = 400) -> ResponseReturnValue:
    if _wants_json():
        return jsonify(ok=False, error=error), status
    if status == 403:
        abort(403)  # not a mistake to correct in the form: the person may not do this
    flash(error, "error")
    return redirect(_back(code, clause), code=303)


def load_comment(slug: str, uid: str, comment_id: int) -> tuple[Code, Clause, Comment]:
    """The comment of that clause, or 404 (also when hidden from this viewer)."""
    code, clause = load_clause(slug, uid)
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.clause_id != clause.id:
        abort(404)
    if comment.hidden and comment.author_id != current_user.id and not policy.can_moderate(current_user, code):
        abort(404)
    return code, clause, comment


def _threads_context(code: Code, clause: Clause, filters: ops.FeedbackFilter, *, page: int = 1,
                     only_id: int | None = None) -> dict[str, Any]:
    """Everything the thread list needs, in a handful of queries.

    One page of threads is shown in full; when there are more, every thread of the clause is
    also listed as one line (a collapsed index), so none is out of reach without paging.
    """
    total = 1 if only_id is not None else ops.count_comments(code, current_user, filters, clause)
    pages = max(1, -(-total // THREADS_PER_PAGE))
    page = min(max(page, 1), pages)
    comments = ops.clause_comments(code, clause, current_user, filters, only_id=only_id,
                                   limit=None if only_id is not None else THREADS_PER_PAGE,
                                   offset=(page - 1) * THREADS_PER_PAGE)
    index = ops.thread_index(code, clause, current_user, filters) if total > THREADS_PER_PAGE else []
    store = store_for(current_app)
    shown = ops.shown_anchors(store, clause, comments)
    text = store.open(clause).doc.text if shown else clause.body
    utf16 = {}
    for comment_id, anchor in shown.items():
        if anchor.start is not None and anchor.end is not None:
            try:
                utf16[comment_id] = to_utf16(text, anchor.start, anchor.end)
            except ValueError:
                pass
    redlines = {
        c.id: render_segments(diff_words(c.quote or "", c.amendment.replacement))
        for c in comments if c.amendment is not None and c.amendment.state == "proposed"
    }
    inline = len(comments) <= INLINE_FORMS_LIMIT
    status = ops.round_status(current_user, clause, code)
    return {
        "code": code, "clause": clause, "comments": comments, "shown": shown, "utf16": utf16,
        "total": total, "page": page, "pages": pages, "index": index, "page_args": {
            k: v for k, v in request.args.items() if k not in ("page", "fragment")},
        "redlines": redlines, "inline_forms": inline,
        "supported": ops.supported_by(current_user, [c.id for c in comments]),
        "may_answer": policy.can_answer_feedback(current_user, clause),
        "may_moderate": policy.can_moderate(current_user, code),
        "may_post": status.may_post, "round_status": status,
        "may_support": policy.can_comment_on_clause(current_user, clause) and status.current is not None,
        "categories": labels.stakeholder_categories(),
        "dispositions": list(DISPOSITIONS), "statuses": STATUSES, "viewer_id": current_user.id,
        "status_labels": labels.comment_statuses(),
    }


def _filter_choices(code: Code) -> dict[str, Any]:
    return {
        "rounds": ops.rounds_of(code), "groups": code.working_groups, "authors": ops.authors_of(code),
        "statuses": STATUSES, "categories": labels.stakeholder_categories(),
    }


def panel_context(code: Code, clause: Clause) -> dict[str, Any]:
    """The clause page's feedback panel: the threads and the form for a new comment."""
    context = _threads_context(code, clause, ops.FeedbackFilter())
    context["round"] = ops.open_round_of(code)
    context["next_url"] = url_for("codes.clause", slug=code.slug, uid=clause.uid)
    return context


# --- a clause's feedback ---------------------------------------------------------------------


@bp.route("/codes/<slug>/clauses/<uid>/feedback")
@login_required
def clause_feedback(slug: str, uid: str) -> ResponseReturnValue:
    code, clause = load_clause(slug, uid)
    filters = ops.FeedbackFilter.from_args(request.args)
    context = _threads_context(code, clause, filters, page=stored_integer(request.args.get("page")) or 1)
    context["next_url"] = url_for("feedback.clause_feedback", slug=code.slug, uid=clause.uid)
    if request.args.get("fragment") == "1":
        return render_template("feedback/fragment.html", ctx=context)
    return render_template("feedback/clause.html", ctx=context, code=code, clause=clause, filters=filters,
                           round=ops.open_round_of(code), body_html=render_markdown(clause.body),
                           **_filter_choices(code))


@bp.route("/codes/<slug>/clauses/<uid>/feedback", methods=["POST"])
@login_required
@limiter.limit(_post_limit, key_func=_per_user)
def post_comment(slug: str, uid: str) -> ResponseReturnValue:
    code, clause = load_clause(slug, uid)
    status = ops.round_status(current_user, clause, code)
    if not status.may_post:
        if status.reason == "open_read_only":
            return _failed(code, clause, _("Your role lets you read the comments on this clause, not post."), 403)
        return _failed(code, clause, _("Comments can be posted only while a feedback round is open."), 403)
    form = request.form
    quote = form.get("quote", "")
    replacement = form.get("replacement", "")
    anchor = None
    if quote.strip():
        unit = form.get("unit", "reading")
        if unit not in ("utf16", "codepoint", "reading"):
            unit = "reading"
        start, end = stored_integer(form.get("start")), stored_integer(form.get("end"))
        try:
            # Before anything is written: opening a clause for the first time commits its seed.
            anchor = ops.anchor_selection(store_for(current_app), clause, quote, start, end, unit)  # type: ignore[arg-type]
        except AnchorError as error:
            return _failed(code, clause, str(error))
    try:
        comment = ops.post_comment(code, clause, current_user, form.get("body", ""), anchor=anchor,
                                   replacement=replacement if replacement.strip() else None)
    except ops.NotAllowed as error:
        return _failed(code, clause, str(error), 403)
    except ops.FeedbackError as error:
        return _failed(code, clause, str(error))
    if comment.kind == "amendment":
        # One model, one list: the amendment shows in the live text as its author's suggestion.
        ops.suggest_amendment(store_for(current_app), clause, comment)
    opened = [note.id for note in notify_ops.record_activity(clause, comment)]
    db.session.commit()
    realtime.announce(clause.uid, "amendment" if comment.kind == "amendment" else "comment", comment.id)
    if notify_ops.mail_now(opened):
        db.session.commit()
    return _done(code, clause, _("Your comment was posted."), comment.id)


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>")
@login_required
def thread(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    context = _threads_context(code, clause, ops.FeedbackFilter(), only_id=comment.id)
    context["next_url"] = url_for("feedback.thread", slug=code.slug, uid=clause.uid, comment_id=comment.id)
    return render_template("feedback/thread.html", ctx=context, code=code, clause=clause, comment=comment)


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/replies", methods=["POST"])
@login_required
@limiter.limit(_post_limit, key_func=_per_user)
def reply(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    try:
        ops.post_reply(code, clause, comment, current_user, request.form.get("body", ""),
                       link=_thread_link(code, clause, comment.id))
    except ops.NotAllowed as error:
        return _failed(code, clause, str(error), 403)
    except ops.FeedbackError as error:
        return _failed(code, clause, str(error))
    db.session.commit()
    realtime.announce(clause.uid, "reply", comment.id)
    return _done(code, clause, _("Your reply was posted."), comment.id)


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/support", methods=["POST"])
@login_required
def support(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    try:
        added = ops.support_comment(code, clause, comment, current_user)
        db.session.commit()
    except ops.NotAllowed as error:
        return _failed(code, clause, str(error), 403)
    except ops.FeedbackError as error:
        return _failed(code, clause, str(error))
    except IntegrityError:  # a concurrent double click: the unique constraint caught it
        db.session.rollback()
        added = False
    if not added:
        return _done(code, clause, _("You already support this comment."), comment.id)
    realtime.announce(clause.uid, "support", comment.id)
    return _done(code, clause, _("You support this comment."), comment.id)


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/withdraw", methods=["POST"])
@login_required
def withdraw(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    return _change(code, clause, comment, lambda: ops.withdraw_comment(comment, current_user),
                   _("Your comment was withdrawn."))


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/disposition", methods=["POST"])
@login_required
def disposition(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    return _change(code, clause, comment, lambda: ops.record_disposition(
        code, clause, comment, current_user, request.form.get("disposition", ""), request.form.get("reason", ""),
        link=_thread_link(code, clause, comment.id)), _("The disposition was recorded; the author was notified."))


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/status", methods=["POST"])
@login_required
def status(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    return _change(code, clause, comment, lambda: ops.set_status(clause, comment, current_user,
                                                                  request.form.get("status", "")),
                   _("The status was changed."))


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/hide", methods=["POST"])
@login_required
def hide(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    return _change(code, clause, comment, lambda: ops.hide_comment(
        code, comment, current_user, request.form.get("reason", ""), link=_thread_link(code, clause, comment.id)),
        _("The comment is hidden; its author was told."))


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/unhide", methods=["POST"])
@login_required
def unhide(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    return _change(code, clause, comment, lambda: ops.unhide_comment(
        code, comment, current_user, link=_thread_link(code, clause, comment.id)), _("The comment is visible again."))


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/amendment/preview")
@login_required
def preview_amendment(slug: str, uid: str, comment_id: int) -> ResponseReturnValue:
    """What accepting the amendment would make of the clause, before anything changes: the diff
    and the resulting text, with the button that applies it."""
    code, clause, comment = load_comment(slug, uid, comment_id)
    try:
        preview = ops.preview_amendment(store_for(current_app), clause, comment, current_user)
    except ops.NotAllowed as error:
        return _failed(code, clause, str(error), 403)
    except ops.FeedbackError as error:
        return _failed(code, clause, str(error), 409 if isinstance(error, ops.StalePassage) else 400)
    diff_html = render_markdown_diff(preview.diff, labels=(_("inserted"), _("deleted")))
    return render_template(
        "feedback/amendment_preview.html", code=code, clause=clause, comment=comment, diff_html=diff_html,
        result_html=render_markdown(preview.after), unchanged=preview.before == preview.after,
        next_url=url_for("feedback.thread", slug=code.slug, uid=clause.uid, comment_id=comment.id),
    )


@bp.route("/codes/<slug>/clauses/<uid>/feedback/<int:comment_id>/amendment/<action>", methods=["POST"])
@login_required
def decide_amendment(slug: str, uid: str, comment_id: int, action: str) -> ResponseReturnValue:
    code, clause, comment = load_comment(slug, uid, comment_id)
    store = store_for(current_app)
    reason = request.form.get("reason", "")
    link = _thread_link(code, clause, comment.id)
    try:
        if action == "accept":
            ops.accept_amendment(store, clause, comment, current_user, reason, link=link)
            message = _("The amendment was applied to the text.")
        elif action == "reject":
            ops.reject_amendment(clause, comment, current_user, reason, link=link, store=store)
            message = _("The amendment was rejected; its author was told.")
        elif action == "rebase":
            ops.rebase_amendment(store, clause, comment, current_user)
            message = _("The amendment now applies to the current words of its passage.")
        else:
            abort(404)
    except ops.NotAllowed as error:
        return _failed(code, clause, str(error), 403)
    except ops.FeedbackError as error:
        return _failed(code, clause, str(error), 409 if isinstance(error, ops.StalePassage) else 400)
    db.session.commit()  # the accepted edit reaches co-editors once this commits
    realtime.announce(clause.uid, "amendment", comment.id)
    return _done(code, clause, message, comment.id)


def _change(code: Code, clause: Clause, comment: Comment, action: Any, message: str) -> ResponseReturnValue:
    try:
        action()
    except ops.NotAllowed as error:
        return _failed(code, clause, str(error), 403)
    except ops.FeedbackError as error:
        return _failed(code, clause, str(error))
    db.session.commit()
    realtime.announce(clause.uid, "status", comment.id)
    return _done(code, clause, message, comment.id)


# --- a code's feedback -----------------------------------------------------------------------


@bp.route("/codes/<slug>/feedback")
@login_required
def code_feedback(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    filters = ops.FeedbackFilter.from_args(request.args)
    counts = ops.counts_by_clause(code, current_user, filters)
    clauses = live_clauses(code)
    page = max(1, stored_integer(request.args.get("page")) or 1)
    query = ops.comments_query(code, current_user, filters).order_by(Comment.created_at.desc(), Comment.id.desc())
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    listed = list(db.session.scalars(query.options(selectinload(Comment.author))
                                     .limit(CODE_PAGE_SIZE).offset((page - 1) * CODE_PAGE_SIZE)))
    clause_by_id = {c.id: c for c in clauses}
    missing = {c.clause_id for c in listed} - set(clause_by_id)
    if missing:
        clause_by_id.update({c.id: c for c in db.session.scalars(select(Clause).where(Clause.id.in_(missing)))})
    return render_template(
        "feedback/code.html", code=code, clauses=clauses, counts=counts, filters=filters, listed=listed,
        clause_by_id=clause_by_id, total=total, page=page, pages=max(1, -(-total // CODE_PAGE_SIZE)),
        page_args={k: v for k, v in request.args.items() if k != "page"}, **_filter_choices(code),
    )


# --- rounds ----------------------------------------------------------------------------------


@bp.route("/codes/<slug>/rounds", methods=["GET", "POST"])
@login_required
def rounds(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    is_admin = policy.can_administer_code(current_user, code)
    if request.method == "POST":
        if not is_admin:
            abort(403)
        draft = db.session.get(Draft, stored_integer(request.form.get("draft")) or 0)
        # A datetime-local value is read as UTC (the page says so); one with an offset is converted.
        closes_at = parse_utc(request.form.get("closes_at", ""))
        opens_at = parse_utc(request.form.get("opens_at", "")) if request.form.get("opens_at") else None
        if draft is None or draft.code_id != code.id or closes_at is None:
            flash(_("Choose a published draft and a closing time."), "error")
        else:
            try:
                ops.open_round(code, draft, closes_at, by=current_user, opens_at=opens_at,
                               name=request.form.get("name", ""))
                db.session.commit()
                flash(_("The feedback round was opened."), "info")
            except ops.FeedbackError as error:
                flash(str(error), "error")
        return redirect(url_for("feedback.rounds", slug=code.slug), code=303)
    default_close = (utcnow() + timedelta(days=21)).strftime("%Y-%m-%dT%H:%M")
    from codedraft.feedback.triage import is_drafting_team

    return render_template("feedback/rounds.html", code=code, rounds=ops.rounds_of(code), drafts=drafts_of(code),
                           is_admin=is_admin, now=utcnow(), default_close=default_close,
                           is_team=is_drafting_team(current_user, code))


@bp.route("/codes/<slug>/rounds/<int:round_id>/close", methods=["POST"])
@login_required
def close_round(slug: str, round_id: int) -> ResponseReturnValue:
    code = load_code(slug)
    if not policy.can_administer_code(current_user, code):
        abort(403)
    feedback_round = db.session.get(FeedbackRound, round_id)
    if feedback_round is None or feedback_round.code_id != code.id:
        abort(404)
    ops.close_round(feedback_round)
    db.session.commit()
    flash(_("The feedback round was closed."), "info")
    return redirect(url_for("feedback.rounds", slug=code.slug), code=303)


# --- notifications ---------------------------------------------------------------------------


@bp.route("/notifications")
@login_required
def notifications() -> ResponseReturnValue:
    return render_template("feedback/notifications.html", notes=ops.notifications_of(current_user),
                           unread=ops.unread_count(current_user), say=said.say)


@bp.route("/notifications/read", methods=["POST"])
@login_required
def read_notifications() -> ResponseReturnValue:
    ops.mark_all_read(current_user)
    db.session.commit()
    return redirect(url_for("feedback.notifications"), code=303)


@bp.app_context_processor
def feedback_template_helpers() -> dict[str, Any]:
    """Helpers every template may use: the unread count for the navigation, the per-clause
    chart data for the code overview include, and the chart functions."""
    return {"unread_notifications": _unread_notifications, "feedback_overview": feedback_overview,
            "fb_bar": stacked_bar, "fb_swatch": legend_swatch, "round_state_label": round_state_label,
            "disposition_label": labels.disposition_label}


def round_state_label(state: str) -> str:
    """The words every page uses for a round's state (FeedbackRound.state)."""
    return {"upcoming": _("scheduled"), "open": _("open"), "closed": _("closed"),
            "published": _("closed, responses published")}.get(state, state)


def _unread_notifications() -> int:
    return ops.unread_count(current_user) if current_user.is_authenticated else 0


def feedback_overview(code: Code) -> dict[str, Any]:
    """Counts by stakeholder category per clause of ``code`` (one GROUP BY), for the overview."""
    counts = ops.counts_by_clause(code, current_user, ops.FeedbackFilter())
    totals = [sum(per.values()) for per in counts.values()]
    return {"counts": counts, "categories": list(labels.stakeholder_categories().items()),
            "total": sum(totals), "scale_max": max(totals, default=0)}


# --- API -------------------------------------------------------------------------------------


def comment_json(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id, "kind": comment.kind, "author": comment.author.name,
        "organisation": comment.organisation, "category": comment.category, "status": comment.status,
        "body": comment.body, "quote": comment.quote, "anchor_state": comment.anchor_state,
        "disposition": comment.disposition, "disposition_reason": comment.disposition_reason or None,
        "hidden": comment.hidden, "support_count": comment.support_count, "reply_count": comment.reply_count,
        "round_id": comment.round_id, "created_at": comment.created_at.isoformat() + "Z",
    }


@bp.route("/api/v1/codes/<slug>/clauses/<uid>/comments")
@token_required
def api_clause_comments(slug: str, uid: str) -> ResponseReturnValue:
    """A clause's comments as the token's owner may see them; filters as on the page."""
    user = api_user()
    code = db.session.scalar(select(Code).where(Code.slug == slug))
    clause = db.session.scalar(select(Clause).where(Clause.uid == uid, Clause.code_id == code.id)) if code else None
    if code is None or clause is None or not policy.can_view_clause(user, clause):
        return jsonify(error="No such clause, or you may not see it."), 404
    comments = ops.clause_comments(code, clause, user, ops.FeedbackFilter.from_args(request.args))
    return jsonify(comments=[comment_json(c) for c in comments])
