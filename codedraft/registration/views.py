"""Applying for an account (anyone, rate limited) and the Office's queue of applications."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from codedraft import labels
from codedraft.extensions import db, limiter
from codedraft.public import operations as public
from codedraft.registration import operations as ops
from codedraft.registration.models import Application

bp = Blueprint("registration", __name__)


def _apply_limit() -> str:
    return f"{current_app.config['REGISTRATIONS_PER_HOUR']} per hour"


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_apply_limit, methods=["POST"])
def apply() -> ResponseReturnValue:
    """The application form: for the public codes only (a private code takes invitations)."""
    codes = public.public_codes()
    form = ops.ApplicationForm(*(request.form.get(field, "") for field in (
        "email", "name", "password", "password_again", "organisation", "category", "message")))
    chosen = request.form.get("code") or request.args.get("code", "")
    signed_in = current_user.is_authenticated
    if request.method == "POST":
        code = next((c for c in codes if c.slug == chosen), None)
        try:
            if code is None:
                raise ops.RegistrationError(_("Choose the code you want to take part in."))
            if signed_in:  # an account already (an identity provider's): no address or password asked
                ops.apply_as(current_user, code, organisation=form.organisation, category=form.category,
                             message=form.message)
                db.session.commit()
                flash(_("Your application is filed; the Office decides on it."), "info")
                return redirect(url_for("codes.index"), code=303)
            ops.apply(code, form)
            db.session.commit()
        except ops.RegistrationError as error:
            db.session.rollback()
            flash(str(error), "error")
            return render_template("registration/apply.html", codes=codes, form=form, chosen=chosen,
                                   categories=labels.stakeholder_categories(), signed_in=signed_in), 400
        except IntegrityError:
            db.session.rollback()  # the same address, filed at the same moment: the same answer
        return render_template("registration/applied.html", email=form.email)
    return render_template("registration/apply.html", codes=codes, form=form, chosen=chosen,
                           categories=labels.stakeholder_categories(), signed_in=signed_in)


def _require_office() -> None:
    if not current_user.is_office:
        abort(403)


@bp.route("/office/applications")
@login_required
def queue() -> ResponseReturnValue:
    _require_office()
    return render_template("registration/queue.html", pending=ops.pending_applications(),
                           decided=ops.decided_applications(), organisations=ops.organisations(),
                           categories=labels.stakeholder_categories())


def _application(application_id: int) -> Application:
    application = db.session.get(Application, application_id)
    if application is None:
        abort(404)
    return application


@bp.route("/office/applications/<int:application_id>/approve", methods=["POST"])
@login_required
def approve(application_id: int) -> ResponseReturnValue:
    _require_office()
    application = _application(application_id)
    try:
        ops.approve(application, current_user, organisation=request.form.get("organisation", ""),
                    category=request.form.get("category", ""))
    except ops.RegistrationError as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(_("%(name)s is now a reviewer.", name=application.applicant.name), "info")
    return redirect(url_for("registration.queue"))


@bp.route("/office/applications/<int:application_id>/refuse", methods=["POST"])
@login_required
def refuse(application_id: int) -> ResponseReturnValue:
    _require_office()
    application = _application(application_id)
    try:
        ops.refuse(application, current_user, request.form.get("reason", ""))
    except ops.RegistrationError as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(_("The application of %(name)s is refused.", name=application.applicant.name), "info")
    return redirect(url_for("registration.queue"))
