"""Sign-in, sign-out, invitations, personal access tokens, language."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from codedraft.accounts import operations as ops
from codedraft.extensions import db, limiter
from codedraft.web import LOGIN_SESSION_KEY

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("codes.index")


def _login_limit() -> str:
    from flask import current_app

    return f"{current_app.config['LOGIN_ATTEMPTS_PER_MINUTE']} per minute"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> ResponseReturnValue:
    if request.method == "POST":
        user = ops.authenticate(request.form.get("email", ""), request.form.get("password", ""))
        if user is None:
            # One message for unknown e-mail and wrong password: no account enumeration.
            flash(_("E-mail or password is wrong."), "error")
            return render_template("accounts/login.html", email=request.form.get("email", "")), 401
        sign_in(user)
        db.session.commit()
        return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", email="")


def sign_in(user: ops.User) -> None:
    """Start a fresh session: whatever the browser held before sign-in is discarded."""
    ops.end_login_session(session.get(LOGIN_SESSION_KEY))
    lang = session.get("lang")
    session.clear()
    login = ops.start_login_session(user)
    session[LOGIN_SESSION_KEY] = login.id
    if lang:
        session["lang"] = lang
    session.permanent = True
    login_user(user)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    login_session = session.get(LOGIN_SESSION_KEY)
    ops.end_login_session(login_session)
    db.session.commit()
    logout_user()
    session.clear()
    from codedraft.realtime_hooks import login_session_ended

    login_session_ended(login_session)
    flash(_("You are signed out."), "info")
    return redirect(url_for("accounts.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def accept_invitation(token: str) -> ResponseReturnValue:
    invitation = ops.open_invitation(token)
    if invitation is None:
        abort(404)
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("password_again", ""):
            flash(_("The two passwords differ."), "error")
        else:
            try:
                user = ops.accept_invitation(token, password)
            except ops.AccountError as error:
                flash(str(error), "error")
            else:
                sign_in(user)
                db.session.commit()
                flash(_("Welcome, %(name)s.", name=user.name), "info")
                return redirect(url_for("codes.index"))
    return render_template("accounts/invitation.html", invitation=invitation)


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> ResponseReturnValue:
    new_token = None
    if request.method == "POST":
        _record, new_token = ops.create_api_token(current_user, request.form.get("name", ""))
        db.session.commit()
    from sqlalchemy import select

    from codedraft.accounts.models import ApiToken

    rows = db.session.scalars(select(ApiToken).where(ApiToken.user_id == current_user.id)).all()
    return render_template("accounts/tokens.html", tokens=rows, new_token=new_token)


@bp.route("/language", methods=["POST"])
def language() -> ResponseReturnValue:
    chosen = request.form.get("lang")
    if chosen in current_app.config["LANGUAGES"]:
        session["lang"] = chosen
    return redirect(_safe_next(request.form.get("next")))
