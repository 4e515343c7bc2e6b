"""Reading published drafts as they were, and publishing new ones."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from codedraft import policy
from codedraft.codes.views import load_code
from codedraft.drafts import operations as ops
from codedraft.drafts.models import Draft
from codedraft.extensions import db
from codedraft.markdown import render_markdown

bp = Blueprint("drafts", __name__)


def load_draft(slug: str, number: int) -> tuple[object, Draft]:
    code = load_code(slug)
    draft = db.session.scalar(select(Draft).where(Draft.code_id == code.id, Draft.number == number))
    if draft is None:
        abort(404)
    return code, draft


@bp.route("/codes/<slug>/drafts/<int:number>")
@login_required
def show(slug: str, number: int) -> ResponseReturnValue:
    code, draft = load_draft(slug, number)
    chapters = [
        (chapter_number, title, [(clause, render_markdown(clause.body)) for clause in clauses])
        for chapter_number, title, clauses in ops.draft_chapters(draft)
    ]
    return render_template("drafts/show.html", code=code, draft=draft, chapters=chapters)


@bp.route("/codes/<slug>/drafts", methods=["POST"])
@login_required
def publish(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    if not policy.can_publish_draft(current_user, code):
        abort(403)
    draft = ops.publish_draft(code, request.form.get("name", ""), by=current_user, note=request.form.get("note", ""))
    db.session.commit()
    flash(_("%(name)s is published.", name=draft.name), "info")
    return redirect(url_for("drafts.show", slug=code.slug, number=draft.number))
