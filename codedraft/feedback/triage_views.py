"""Pages of a round's triage: the round, its campaign groups, the response table with templates
and bulk answers, the digests by clause and chapter, publishing, and the published annex.

Routes live on the feedback blueprint. The drafting team (``triage.is_drafting_team``) sees
groups, themes and unpublished responses; others get 404 for them, as for anything hidden. The
annex is readable by everyone who may read the code, once published.
"""
from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from codedraft import policy
from codedraft.api.auth import token_required
from codedraft.codes.models import Chapter, Clause, Code
from codedraft.codes.views import load_clause, load_code
from codedraft.drafts.models import Draft
from codedraft.exports.htmlkit import anchor_id
from codedraft.extensions import db
from codedraft.feedback import importing, triage
from codedraft.feedback.blueprint import bp
from codedraft.feedback.models import DISPOSITIONS, AnswerTemplate, CampaignGroup, FeedbackRound
from codedraft.feedback.operations import FeedbackError, NotAllowed
from codedraft.notifications import operations as notify_ops
from codedraft.numbers import stored_integer

TABLE_PAGE = 50


def load_round(slug: str, round_id: int, *, team_only: bool = True) -> tuple[Code, FeedbackRound]:
    code = load_code(slug)
    feedback_round = db.session.get(FeedbackRound, round_id)
    if feedback_round is None or feedback_round.code_id != code.id:
        abort(404)
    if team_only and not triage.is_drafting_team(current_user, code):
        abort(404)
    return code, feedback_round


def _common(code: Code, feedback_round: FeedbackRound) -> dict[str, Any]:
    return {"code": code, "round": feedback_round, "state": feedback_round.state(),
            "categories": list(current_app.config["STAKEHOLDER_CATEGORIES"]),
            "category_names": dict(current_app.config["STAKEHOLDER_CATEGORIES"]),
            "dispositions": list(DISPOSITIONS), "is_admin": policy.can_administer_code(current_user, code)}


def _back_to(endpoint: str, **values: Any) -> ResponseReturnValue:
    target = request.form.get("next", "")
    if target.startswith("/codes/") and "//" not in target and "\\" not in target:
        return redirect(target, code=303)
    return redirect(url_for(endpoint, **values), code=303)


@bp.route("/codes/<slug>/rounds/<int:round_id>")
@login_required
def round_page(slug: str, round_id: int) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id)
    chapters = list(db.session.scalars(select(Chapter).where(Chapter.code_id == code.id).order_by(Chapter.position)))
    return render_template("feedback/round.html", counts=triage.round_counts(feedback_round), chapters=chapters,
                           groups=triage.groups_of_round(feedback_round)[:10], **_common(code, feedback_round))


@bp.route("/codes/<slug>/rounds/<int:round_id>/analyse", methods=["POST"])
@login_required
def analyse_round(slug: str, round_id: int) -> ResponseReturnValue:
    """Group the campaign copies and find the themes again (a chair's or the Office's button)."""
    code, feedback_round = load_round(slug, round_id)
    grouped = triage.group_round(feedback_round)
    themed = triage.compute_themes(feedback_round)
    db.session.commit()
    flash(_("%(groups)d campaign groups (%(grouped)d of %(total)d comments) and %(themes)d themes found.",
            groups=grouped.groups, grouped=grouped.grouped_comments, total=grouped.comments,
            themes=themed.themes), "info")
    return _back_to("feedback.round_page", slug=code.slug, round_id=feedback_round.id)


@bp.route("/codes/<slug>/rounds/<int:round_id>/groups")
@login_required
def round_groups(slug: str, round_id: int) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id)
    groups = triage.groups_of_round(feedback_round)
    return render_template("feedback/groups.html", groups=groups, templates=triage.templates_of(code),
                           scale_max=max((g.size for g in groups), default=1), **_common(code, feedback_round))


@bp.route("/codes/<slug>/rounds/<int:round_id>/groups/<int:group_id>")
@login_required
def round_group(slug: str, round_id: int, group_id: int) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id)
    group = db.session.get(CampaignGroup, group_id)
    if group is None or group.round_id != feedback_round.id:
        abort(404)
    summary = next((s for s in triage.groups_of_round(feedback_round) if s.group.id == group.id), None)
    if summary is None:
        abort(404)
    return render_template("feedback/group.html", summary=summary, members=triage.group_members(group),
                           templates=triage.templates_of(code), **_common(code, feedback_round))


@bp.route("/codes/<slug>/rounds/<int:round_id>/responses")
@login_required
def response_table(slug: str, round_id: int) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id)
    page = max(1, stored_integer(request.args.get("page")) or 1)
    clause_id = stored_integer(request.args.get("clause"))
    unanswered = request.args.get("unanswered") == "1"
    table = triage.response_table(feedback_round, clause_id=clause_id, unanswered=unanswered,
                                  limit=TABLE_PAGE, offset=(page - 1) * TABLE_PAGE)
    clauses = list(db.session.scalars(select(Clause).where(Clause.code_id == code.id, Clause.withdrawn.is_(False))
                                      .order_by(Clause.chapter_id, Clause.position)))
    return render_template("feedback/responses.html", table=table, page=page,
                           pages=max(1, -(-table.total // TABLE_PAGE)), clause_id=clause_id, unanswered=unanswered,
                           clauses=clauses, templates=triage.templates_of(code), **_common(code, feedback_round))


@bp.route("/codes/<slug>/rounds/<int:round_id>/responses", methods=["POST"])
@login_required
def answer(slug: str, round_id: int) -> ResponseReturnValue:
    """Answer one or many comments, groups or themes at once (``target`` repeated)."""
    code, feedback_round = load_round(slug, round_id)
    targets = [t for t in (triage.Target.parse(raw) for raw in request.form.getlist("target")) if t is not None]
    template = None
    template_id = stored_integer(request.form.get("template"))
    if template_id is not None:
        template = db.session.get(AnswerTemplate, template_id)
        if template is None or template.code_id != code.id:
            template = None
            flash(_("That answer template does not exist."), "error")
            return _back_to("feedback.response_table", slug=code.slug, round_id=feedback_round.id)
    if not targets:
        flash(_("Choose what to answer."), "error")
        return _back_to("feedback.response_table", slug=code.slug, round_id=feedback_round.id)
    try:
        report = triage.bulk_answer(feedback_round, current_user, targets, request.form.get("body", ""),
                                    request.form.get("disposition", ""), template)
    except NotAllowed:
        abort(403)
    except FeedbackError as error:
        db.session.rollback()
        flash(str(error), "error")
        return _back_to("feedback.response_table", slug=code.slug, round_id=feedback_round.id)
    db.session.commit()
    if report.answered:
        flash(_("%(n)d answered; the responses stay with the drafting team until the round is published.",
                n=report.answered), "info")
    if report.refused:
        flash(_("Not answered: %(list)s", list="; ".join(report.refused)), "error")
    return _back_to("feedback.response_table", slug=code.slug, round_id=feedback_round.id)


@bp.route("/codes/<slug>/rounds/<int:round_id>/templates", methods=["GET", "POST"])
@login_required
def answer_templates(slug: str, round_id: int) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id)
    if request.method == "POST":
        try:
            triage.add_template(code, current_user, request.form.get("title", ""), request.form.get("body", ""),
                                request.form.get("disposition", ""))
        except NotAllowed:
            abort(403)
        except FeedbackError as error:
            flash(str(error), "error")
        else:
            db.session.commit()
            flash(_("The answer template was saved."), "info")
        return redirect(url_for("feedback.answer_templates", slug=code.slug, round_id=feedback_round.id), code=303)
    return render_template("feedback/templates.html", templates=triage.templates_of(code),
                           **_common(code, feedback_round))


@bp.route("/codes/<slug>/rounds/<int:round_id>/publish", methods=["POST"])
@login_required
def publish_responses(slug: str, round_id: int) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id)
    try:
        answered = triage.publish_responses(feedback_round, current_user)
    except NotAllowed:
        abort(403)
    except FeedbackError as error:
        flash(str(error), "error")
        return redirect(url_for("feedback.round_page", slug=code.slug, round_id=feedback_round.id), code=303)
    db.session.commit()
    flash(_("The responses were published: %(n)d comments answered.", n=answered), "info")
    return redirect(url_for("feedback.round_annex", slug=code.slug, round_id=feedback_round.id), code=303)


@bp.route("/codes/<slug>/rounds/<int:round_id>/annex")
@login_required
def round_annex(slug: str, round_id: int) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id, team_only=False)
    current, following = _draft_pair(feedback_round)

    def redline_link(clause: Clause) -> str:
        """Where the next draft's redline shows what became of this clause."""
        if current is None or following is None:
            return ""
        return url_for("exports.compare", slug=code.slug, **{"from": current.number, "to": following.number}) + \
            "#" + anchor_id("clause", clause.uid)

    return render_template("feedback/annex.html", entries=triage.annex(feedback_round), next_draft=following,
                           redline_link=redline_link, **_common(code, feedback_round))


def _draft_pair(feedback_round: FeedbackRound) -> tuple[Any, Any]:
    """The round's draft and the draft published after it (None until there is one)."""
    current = db.session.get(Draft, feedback_round.draft_id)
    if current is None:
        return None, None
    following = db.session.scalar(select(Draft).where(Draft.code_id == current.code_id,
                                                      Draft.number > current.number).order_by(Draft.number).limit(1))
    return current, following


# --- digests and themes ----------------------------------------------------------------------


@bp.route("/codes/<slug>/rounds/<int:round_id>/digest")
@login_required
def chapter_digest(slug: str, round_id: int) -> ResponseReturnValue:
    """Per chapter: each clause's comments by stakeholder category (a chart) and its themes."""
    code, feedback_round = load_round(slug, round_id)
    chapters = list(db.session.scalars(select(Chapter).where(Chapter.code_id == code.id).order_by(Chapter.position)))
    if not chapters:
        abort(404)
    chapter_id = stored_integer(request.args.get("chapter")) or chapters[0].id
    chapter = next((c for c in chapters if c.id == chapter_id), None)
    if chapter is None:
        abort(404)
    clauses = [c for c in chapter.clauses if not c.withdrawn]
    totals = triage.category_totals(feedback_round, [c.id for c in clauses])
    digests = triage.chapter_digest(feedback_round, [c for c in clauses if c.id in totals])
    return render_template("feedback/digest_chapter.html", chapter=chapter, chapters=chapters, totals=totals,
                           digests=digests, scale_max=max((sum(t.values()) for t in totals.values()), default=1),
                           chapter_totals=_sum_categories(totals.values()), **_common(code, feedback_round))


def _sum_categories(per_clause: Any) -> dict[str, int]:
    summed: dict[str, int] = {}
    for counts in per_clause:
        for category, number in counts.items():
            summed[category] = summed.get(category, 0) + number
    return summed


@bp.route("/codes/<slug>/rounds/<int:round_id>/clauses/<uid>/digest")
@login_required
def clause_digest(slug: str, round_id: int, uid: str) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id)
    _code, clause = load_clause(slug, uid)
    digests = triage.clause_digest(feedback_round, clause)
    totals = triage.category_totals(feedback_round, [clause.id]).get(clause.id, {})
    return render_template("feedback/digest_clause.html", clause=clause, digests=digests, totals=totals,
                           groups=triage.groups_of_round(feedback_round, clause=clause),
                           scale_max=max((d.size for d in digests), default=1), templates=triage.templates_of(code),
                           may_curate=policy.can_answer_feedback(current_user, clause),
                           **_common(code, feedback_round))


@bp.route("/codes/<slug>/rounds/<int:round_id>/themes/<int:theme_id>/<action>", methods=["POST"])
@login_required
def theme_action(slug: str, round_id: int, theme_id: int, action: str) -> ResponseReturnValue:
    code, feedback_round = load_round(slug, round_id)
    form = request.form
    try:
        if action == "rename":
            theme = triage.rename_theme(feedback_round, current_user, theme_id, form.get("name", ""))
            message = _("The theme was renamed.")
        elif action == "merge":
            others = [n for n in (stored_integer(v) for v in form.getlist("other")) if n is not None]
            theme = triage.merge_themes(feedback_round, current_user, theme_id, others)
            message = _("The themes were merged.")
        elif action == "split":
            chosen = [n for n in (stored_integer(v) for v in form.getlist("comment")) if n is not None]
            theme = triage.split_theme(feedback_round, current_user, theme_id, chosen, form.get("name", ""))
            message = _("A new theme was split off.")
        else:
            abort(404)
    except NotAllowed:
        abort(403)
    except FeedbackError as error:
        flash(str(error), "error")
        return _back_to("feedback.round_page", slug=code.slug, round_id=feedback_round.id)
    db.session.commit()
    flash(message, "info")
    clause = db.session.get(Clause, theme.clause_id)
    return redirect(url_for("feedback.clause_digest", slug=code.slug, round_id=feedback_round.id,
                            uid=clause.uid if clause else ""), code=303)


# --- importing a survey file -----------------------------------------------------------------


@bp.route("/codes/<slug>/rounds/<int:round_id>/import", methods=["GET", "POST"])
@login_required
def import_submissions(slug: str, round_id: int) -> ResponseReturnValue:
    """The Office imports a survey tool's CSV or XLSX into the round; the report says what was
    imported, what was skipped and why, and lists the rows whose clause must be chosen by hand."""
    code, feedback_round = load_round(slug, round_id)
    if not policy.can_administer_code(current_user, code):
        abort(403)
    context = {"report": None, "refused": None, "clauses": _clauses_of(code), **_common(code, feedback_round)}
    if request.method == "GET":
        return render_template("feedback/import.html", **context)
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        context["refused"] = _("The file is larger than this server accepts; split it.")
        return render_template("feedback/import.html", **context), 413
    if upload is None or not upload.filename:
        context["refused"] = _("Choose a CSV or XLSX file.")
        return render_template("feedback/import.html", **context), 400
    try:
        data = upload.read(importing.MAX_FILE_BYTES + 1)
        report = importing.import_file(code, feedback_round, current_user, upload.filename, data)
    except RequestEntityTooLarge:
        context["refused"] = _("The file is larger than this server accepts; split it.")
        return render_template("feedback/import.html", **context), 413
    except NotAllowed:
        abort(403)
    except FeedbackError as error:
        db.session.rollback()
        context["refused"] = str(error)
        return render_template("feedback/import.html", **context), 400
    db.session.commit()
    if notify_ops.mail_now(report.opened_notifications):
        db.session.commit()
    context["report"] = report
    return render_template("feedback/import.html", **context)


@bp.route("/codes/<slug>/rounds/<int:round_id>/import/resolve", methods=["POST"])
@login_required
def import_resolve(slug: str, round_id: int) -> ResponseReturnValue:
    """Import the held rows with the clauses the Office chose for them."""
    code, feedback_round = load_round(slug, round_id)
    if not policy.can_administer_code(current_user, code):
        abort(403)
    form = request.form
    rows = []
    for index in range(min(len(form.getlist("text")), importing.MAX_UNMATCHED)):
        clause_id = stored_integer((form.getlist("clause") + [""] * importing.MAX_UNMATCHED)[index])
        rows.append((clause_id or 0, form.getlist("organisation")[index] if index < len(form.getlist("organisation"))
                     else "", form.getlist("category")[index] if index < len(form.getlist("category")) else "",
                     form.getlist("text")[index]))
    try:
        report = importing.import_resolved(code, feedback_round, current_user, rows)
    except NotAllowed:
        abort(403)
    db.session.commit()
    flash(_("%(n)d held rows imported; %(skipped)d left out.", n=report.imported, skipped=len(report.skipped)),
          "info")
    return redirect(url_for("feedback.import_submissions", slug=code.slug, round_id=feedback_round.id), code=303)


@bp.app_errorhandler(RequestEntityTooLarge)
def upload_too_large(_error: RequestEntityTooLarge) -> ResponseReturnValue:
    """A body over MAX_CONTENT_LENGTH is refused before any view runs (the CSRF check reads the
    form first): say so plainly instead of the bare 413."""
    message = _("The file is larger than this server accepts; split it.")
    if request.path.startswith("/api/"):
        return {"error": message}, 413
    return render_template("error.html", title=_("Nothing was imported."), message=message, status=413), 413


def _clauses_of(code: Code) -> list[Clause]:
    return list(db.session.scalars(select(Clause).where(Clause.code_id == code.id, Clause.withdrawn.is_(False))
                                   .order_by(Clause.chapter_id, Clause.position)))


# --- API -------------------------------------------------------------------------------------


def _api_round(slug: str, round_id: int) -> tuple[Any, Code | None, FeedbackRound | None]:
    """The token's user, the code and the round, or Nones when missing or not the user's to see."""
    from codedraft.api.auth import api_user

    user = api_user()
    code = db.session.scalar(select(Code).where(Code.slug == slug)) if len(slug) <= 80 else None
    feedback_round = db.session.get(FeedbackRound, round_id) if code is not None else None
    if code is None or feedback_round is None or feedback_round.code_id != code.id \
            or not policy.can_view_code(user, code):
        return user, None, None
    return user, code, feedback_round


def _not_found() -> ResponseReturnValue:
    return jsonify(error="No such round, or you may not see it."), 404


@bp.route("/api/v1/codes/<slug>/rounds/<int:round_id>/groups")
@token_required
def api_round_groups(slug: str, round_id: int) -> ResponseReturnValue:
    """The round's campaign groups (drafting team only)."""
    user, code, feedback_round = _api_round(slug, round_id)
    if code is None or feedback_round is None or not triage.is_drafting_team(user, code):
        return _not_found()
    return jsonify(groups=[{
        "id": s.group.id, "clause": s.clause.uid, "size": s.size, "shared_text": s.group.shared_text,
        "by_category": s.by_category, "organisations": s.organisations,
        "comment_ids": [c.id for c in triage.group_members(s.group)],
    } for s in triage.groups_of_round(feedback_round)])


@bp.route("/api/v1/codes/<slug>/rounds/<int:round_id>/themes")
@token_required
def api_round_themes(slug: str, round_id: int) -> ResponseReturnValue:
    """The round's themes per clause with counts by category (drafting team only)."""
    user, code, feedback_round = _api_round(slug, round_id)
    if code is None or feedback_round is None or not triage.is_drafting_team(user, code):
        return _not_found()
    clauses = _clauses_of(code)
    uid_of = {c.id: c.uid for c in clauses}
    return jsonify(themes=[{
        "id": d.theme.id, "clause": uid_of.get(d.theme.clause_id, ""), "name": d.theme.name,
        "key_terms": [t for t in d.theme.key_terms.split(", ") if t], "curated": d.theme.curated, "size": d.size,
        "by_category": d.by_category,
    } for _clause, digests in triage.chapter_digest(feedback_round, clauses) for d in digests])


@bp.route("/api/v1/codes/<slug>/rounds/<int:round_id>/responses")
@token_required
def api_round_responses(slug: str, round_id: int) -> ResponseReturnValue:
    """The round's responses: to the drafting team always, to everyone once published."""
    user, code, feedback_round = _api_round(slug, round_id)
    if code is None or feedback_round is None:
        return _not_found()
    published = feedback_round.responses_published_at is not None
    if not published and not triage.is_drafting_team(user, code):
        return _not_found()
    return jsonify(published=published, responses=[{
        "id": r.id, "target": str(t), "body": r.body, "disposition": r.disposition,
        "updated_at": r.updated_at.isoformat() + "Z",
    } for t, r in sorted(triage.responses_by_target(feedback_round).items(), key=lambda item: item[1].id)])
