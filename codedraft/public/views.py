"""Public reading: a code's published drafts, redlines, process and published feedback for
anyone, without an account; and the Office's settings for it.

Every public page loads the code through :func:`load_public_code`: a code that is missing or not
public answers the same 404. The pages read only published material (see operations.py).
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from codedraft import policy
from codedraft.codes.models import Code
from codedraft.codes.views import load_code
from codedraft.database import storable_text
from codedraft.drafts.models import Draft
from codedraft.drafts.operations import draft_chapters, drafts_of
from codedraft.exports import builders
from codedraft.exports.compare import compare_documents
from codedraft.exports.filenames import content_disposition
from codedraft.exports.redline import render_inline, render_side_by_side, render_summary
from codedraft.extensions import db
from codedraft.feedback.models import FeedbackRound
from codedraft.markdown import render_markdown
from codedraft.numbers import stored_integer
from codedraft.public import operations as ops
from codedraft.public import shared_pages
from codedraft.public.cache import fragments_of
from codedraft.public.models import PublicCode
from codedraft.registration.models import APPROVED
from codedraft.registration.operations import application_of, may_apply

bp = Blueprint("public", __name__)



def load_public_code(slug: str) -> tuple[Code, PublicCode]:
    """The public code ``slug``; 404 when it is missing or not public (the same answer)."""
    code = db.session.scalar(select(Code).where(Code.slug == slug)) if storable_text(slug) else None
    setting = policy.public_setting(code) if code is not None else None
    if code is None or setting is None:
        abort(404)
    return code, setting


@bp.before_app_request
def landing_for_visitors() -> ResponseReturnValue | None:
    """The home page is the list of codes for people with an account; a visitor without one,
    or an applicant the Office has not approved, gets the public landing page there instead."""
    if request.endpoint != "codes.index":
        return None
    application = application_of(current_user)
    if not current_user.is_authenticated or (application is not None and application.status != APPROVED):
        return landing()
    if application is None and may_apply(current_user) and ops.public_codes():
        return landing()  # signed in (with an identity provider) but no part in any code yet: apply
    return None


@bp.route("/public")
def landing() -> ResponseReturnValue:
    codes = [(code, ops.round_stage(code), drafts_of(code)) for code in ops.public_codes()]
    return render_template("public/landing.html", codes=codes, application=application_of(current_user),
                           may_apply=may_apply(current_user))


@bp.route("/public/<slug>")
def code_home(slug: str) -> ResponseReturnValue:
    code, setting = load_public_code(slug)
    return render_template("public/code.html", code=code, setting=setting, stage=ops.round_stage(code),
                           drafts=drafts_of(code), has_feedback=bool(ops.published_round_ids(code)),
                           licence_url=ops.DATA_LICENCES.get(setting.data_licence), may_apply=may_apply(current_user))


@bp.route("/public/<slug>/process")
def process(slug: str) -> ResponseReturnValue:
    code, _setting = load_public_code(slug)
    published = ops.published_round_ids(code)
    return render_template("public/process.html", code=code, groups=ops.working_groups_on_record(code),
                           rounds=ops.rounds_with_drafts(code), published=published,
                           drafts=drafts_of(code), stage=ops.round_stage(code))


@bp.route("/public/<slug>/drafts/<int:number>")
def draft(slug: str, number: int) -> ResponseReturnValue:
    shared = shared_pages.cached_response(slug)
    if shared is not None:
        return shared
    code, _setting = load_public_code(slug)
    found = ops.published_draft(code, number)
    if found is None:
        abort(404)

    def render_text() -> str:
        chapters = [(chapter_number, title, [(clause, render_markdown(clause.body)) for clause in clauses])
                    for chapter_number, title, clauses in draft_chapters(found)]
        return render_template("drafts/_text.html", chapters=chapters)

    def render_page(shared: bool) -> str:
        text = fragments_of(current_app).get_or_render(("draft", found.id, str(get_locale())), render_text)
        return render_template("public/draft.html", code=code, draft=found, text=Markup(text),
                               shared_page=shared)

    return shared_pages.shared_response(slug, render_page)


@bp.route("/public/<slug>/compare")
def compare(slug: str) -> ResponseReturnValue:
    """The redline between two published drafts (never the live text)."""
    shared = shared_pages.cached_response(slug)
    if shared is not None:
        return shared
    code, _setting = load_public_code(slug)
    drafts = drafts_of(code)
    if len(drafts) < 2:
        return render_template("public/compare.html", code=code, drafts=drafts, old=None, new=None,
                               layout="inline", fragment=None, summary=None)
    old = _draft_arg(code, "from", drafts[-2].number)
    new = _draft_arg(code, "to", drafts[-1].number)
    layout = "side" if request.args.get("layout") == "side" else "inline"

    def render_redline() -> str:
        comparison = compare_documents(builders.document_from_draft(code, old), builders.document_from_draft(code, new))
        words = builders.redline_words()
        body = (render_side_by_side if layout == "side" else render_inline)(comparison, words=words)
        return render_summary(comparison, words=words) + "\n<!-- redline -->\n" + body

    def render_page(shared: bool) -> str:
        key = ("redline", old.id, new.id, layout, str(get_locale()))
        cached = fragments_of(current_app).get_or_render(key, render_redline)
        summary, fragment = cached.split("\n<!-- redline -->\n", 1)
        return render_template("public/compare.html", code=code, drafts=drafts, old=old, new=new, layout=layout,
                               summary=Markup(summary), fragment=Markup(fragment),
                               shared_page=shared)

    return shared_pages.shared_response(slug, render_page)


def _draft_arg(code: Code, name: str, default: int) -> Draft:
    raw = request.args.get(name)
    number = default if raw in (None, "") else stored_integer(raw)
    found = ops.published_draft(code, number) if number else None
    if found is None:
        abort(404)
    return found


@bp.route("/public/<slug>/drafts/<int:number>.akn.xml")
def akoma_ntoso(slug: str, number: int) -> ResponseReturnValue:
    """The published draft as Akoma Ntoso XML (open data), rendered once per draft."""
    code, _setting = load_public_code(slug)
    found = ops.published_draft(code, number)
    if found is None:
        abort(404)

    def render_xml() -> str:
        # Imported here: lxml is about 4 MB of every server process, and few requests export.
        from codedraft.exports.akoma_ntoso import Identity, export_akoma_ntoso

        with force_locale(builders.export_language(code)):  # the document's language, not the reader's
            office_name = _("The Office")
        identity = Identity(code_slug=code.slug, draft_number=found.number, published_at=found.published_at,
                            draft_name=found.name, office_name=office_name)
        return export_akoma_ntoso(builders.document_from_draft(code, found), identity).decode("utf-8")

    xml = fragments_of(current_app).get_or_render(("akn", found.id, code.language), render_xml)
    response = current_app.response_class(xml, mimetype="application/akn+xml")
    name = f"{code.slug}-draft-{found.number}.akn"
    response.headers["Content-Disposition"] = content_disposition(name, "xml", inline=True)
    return response


@bp.route("/public/<slug>/feedback.json")
def feedback_dataset(slug: str) -> ResponseReturnValue:
    """The published feedback dataset, with its licence: the comments of published rounds and
    the drafters' responses, as the public feedback page shows them."""
    code, setting = load_public_code(slug)
    labels = dict(current_app.config["STAKEHOLDER_CATEGORIES"])
    dataset = {
        "code": {"slug": code.slug, "title": code.title},
        "licence": {"id": setting.data_licence, "url": ops.DATA_LICENCES.get(setting.data_licence)},
        "comments": [
            {"id": c.id, "round": c.round_name, "clause_uid": c.clause_uid, "clause": c.clause_heading,
             "organisation": c.organisation, "stakeholder_category": c.category,
             "stakeholder_category_name": labels.get(c.category, c.category), "kind": c.kind, "quote": c.quote,
             "comment": c.body, "status": c.status, "disposition": c.disposition, "response": c.disposition_reason,
             "created_at": c.created_at.isoformat() + "Z"}
            for c in ops.published_comments(code)
        ],
    }
    response = jsonify(dataset)
    response.headers["Content-Disposition"] = content_disposition(f"{code.slug}-feedback", "json", inline=True)
    return response


@bp.route("/public/<slug>/feedback")
def feedback(slug: str) -> ResponseReturnValue:
    code, setting = load_public_code(slug)
    return render_template("public/feedback.html", code=code, comments=ops.published_comments(code),
                           setting=setting, licence_url=ops.DATA_LICENCES.get(setting.data_licence),
                           )


# --- The Office: what the public may read -----------------------------------------------------


@bp.route("/codes/<slug>/public-reading", methods=["GET", "POST"])
@login_required
def settings(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    if not policy.can_administer_code(current_user, code):
        abort(403)
    if request.method == "POST":
        try:
            if request.form.get("public") == "on":
                ops.make_public(code, current_user, request.form.get("licence", ""))
                flash(_("Anyone can now read the published drafts of this code."), "info")
            else:
                ops.make_private(code, current_user)
                flash(_("Only participants can read this code now."), "info")
        except ops.PublicError as error:
            flash(str(error), "error")
        else:
            db.session.commit()
        return redirect(url_for("public.settings", slug=code.slug))
    return render_template("public/settings.html", code=code, setting=db.session.get(PublicCode, code.id),
                           licences=ops.DATA_LICENCES, rounds=ops.rounds_with_drafts(code),
                           published=ops.published_round_ids(code))


@bp.route("/codes/<slug>/public-reading/rounds/<int:round_id>", methods=["POST"])
@login_required
def publish_round(slug: str, round_id: int) -> ResponseReturnValue:
    code = load_code(slug)
    if not policy.can_administer_code(current_user, code):
        abort(403)
    feedback_round = db.session.get(FeedbackRound, round_id)
    if feedback_round is None or feedback_round.code_id != code.id:
        abort(404)
    try:
        if request.form.get("publish") == "on":
            ops.publish_round(feedback_round, current_user)
        else:
            ops.unpublish_round(feedback_round, current_user)
    except ops.PublicError as error:
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(_("Saved."), "info")
    return redirect(url_for("public.settings", slug=code.slug))
