"""Sign-in, sign-out, invitations, password changes, personal access tokens, language."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from codedraft.accounts import operations as ops
from codedraft.extensions import db, limiter
from codedraft.notifications.operations import adopt_language, set_language
from codedraft.numbers import stored_integer
from codedraft.realtime_hooks import login_session_ended
from codedraft.security import safe_local_path
from codedraft.web import LOGIN_SESSION_KEY

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in or a language switch (SECURITY-CASES 36)."""
    return safe_local_path(target) or url_for("codes.index")


def _login_limit() -> str:
    from flask import current_app

    return f"{current_app.config['LOGIN_ATTEMPTS_PER_MINUTE']} per minute"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> ResponseReturnValue:
    if request.method == "POST":
        user = ops.authenticate(request.form.get("email", "")[:254], request.form.get("password", "")[:1000])
        if user is None:
            # One message for unknown e-mail and wrong password: no account enumeration.
            flash(_("E-mail or password is wrong."), "error")
            return render_template("accounts/login.html", email=request.form.get("email", "")[:254]), 401
        sign_in(user)
        db.session.commit()
        return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", email="")


def sign_in(user: ops.User) -> None:
    """Start a fresh session: whatever the browser held before sign-in is discarded."""
    # The account itself, never the current_user proxy (OIDC links the signed-in account): once
    # logged in, a proxy would resolve to itself.
    user = getattr(user, "_get_current_object", lambda: user)()
    ops.end_login_session(session.get(LOGIN_SESSION_KEY))
    lang = session.get("lang")
    session.clear()
    login = ops.start_login_session(user)
    session[LOGIN_SESSION_KEY] = login.id
    if lang:
        session["lang"] = lang
    session.permanent = True
    login_user(user)
    adopt_language(user, str(get_locale() or ""))  # mail in the language they sign in with, until they choose


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    login_session = session.get(LOGIN_SESSION_KEY)
    ops.end_login_session(login_session)
    db.session.commit()
    logout_user()
    session.clear()
    login_session_ended(login_session)
    flash(_("You are signed out."), "info")
    return redirect(url_for("accounts.login"))


# --- Invitations (SECURITY-CASES 31) ----------------------------------------------------------


@bp.route("/invite/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def accept_invitation(token: str) -> ResponseReturnValue:
    invitation = ops.open_invitation(token)
    if invitation is None:
        abort(404)
    if ops.invited_account(invitation) is not None:
        return _accept_for_existing_account(token, invitation)
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("password_again", ""):
            flash(_("The two passwords differ."), "error")
        else:
            try:
                user = ops.accept_invitation(token, password)
            except ops.AccountError as error:
                flash(_account_message(error), "error")
            else:
                sign_in(user)
                db.session.commit()
                flash(_("Welcome, %(name)s.", name=user.name), "info")
                return redirect(url_for("codes.index"))
    return render_template("accounts/invitation.html", invitation=invitation, existing=False)


def _accept_for_existing_account(token: str, invitation: ops.Invitation) -> ResponseReturnValue:
    """The e-mail has an account: its owner signs in as usual, then accepts. The link itself
    never signs anyone in and never touches the password."""
    signed_in_as_invitee = (current_user.is_authenticated
                            and ops.normalise_email(current_user.email) == invitation.email)
    if request.method == "POST" and signed_in_as_invitee:
        try:
            ops.accept_invitation_as(token, current_user)
        except ops.AccountError as error:
            flash(_account_message(error), "error")
        else:
            db.session.commit()
            flash(_("Invitation accepted: you now have the role %(role)s.", role=_role_label(invitation.role)),
                  "info")
            return redirect(url_for("codes.index"))
    elif request.method == "POST":
        abort(403)
    return render_template("accounts/invitation.html", invitation=invitation, existing=True,
                           signed_in_as_invitee=signed_in_as_invitee,
                           login_url=url_for("accounts.login", next=request.path))


def _role_label(role: str) -> str:
    labels = {"observer": _("observer"), "reviewer": _("reviewer"), "member": _("member"), "chair": _("chair"),
              "admin": _("admin")}
    return labels.get(role, role)


def _account_message(error: ops.AccountError) -> str:
    """The user's language for the operations' messages (they are English constants)."""
    messages = {
        "Choose a password of at least 10 characters.": _("Choose a password of at least 10 characters."),
        "Choose a password of at most 1,000 characters.": _("Choose a password of at most 1,000 characters."),
        "This invitation link is not valid any more.": _("This invitation link is not valid any more."),
        "An account with this e-mail address exists already: sign in to accept the invitation.":
            _("An account with this e-mail address exists already: sign in to accept the invitation."),
        "This invitation is for another e-mail address. Sign out and sign in with that one.":
            _("This invitation is for another e-mail address. Sign out and sign in with that one."),
        "Your current password is not right.": _("Your current password is not right."),
        "No such token.": _("No such token."),
        "A token may expire after 1 to 3,650 days.": _("A token may expire after 1 to 3,650 days."),
    }
    return messages.get(str(error), str(error))


# --- Password (SECURITY-CASES 32) -------------------------------------------------------------


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@limiter.limit("10 per minute", methods=["POST"])
def change_password() -> ResponseReturnValue:
    if request.method == "POST":
        new = request.form.get("new_password", "")
        if new != request.form.get("new_password_again", ""):
            flash(_("The two passwords differ."), "error")
        else:
            try:
                ended = ops.change_password(current_user, request.form.get("current_password", ""), new,
                                            keep_session=session.get(LOGIN_SESSION_KEY))
            except ops.AccountError as error:
                flash(_account_message(error), "error")
            else:
                db.session.commit()
                for login_session in ended:
                    login_session_ended(login_session)
                flash(_("Password changed. Your other sessions are signed out and your API tokens revoked."),
                      "info")
                return redirect(url_for("accounts.change_password"))
    return render_template("accounts/password.html")


# --- Personal access tokens (SECURITY-CASES 37) -----------------------------------------------


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> ResponseReturnValue:
    new_token = None
    if request.method == "POST":
        days = request.form.get("expires_in_days", "").strip()
        try:
            _record, new_token = ops.create_api_token(
                current_user, request.form.get("name", ""),
                expires_in_days=stored_integer(days) if len(days) < 6 else None,
            )
        except ops.AccountError as error:
            flash(_account_message(error), "error")
        else:
            db.session.commit()
    return render_template("accounts/tokens.html", tokens=ops.tokens_of(current_user), new_token=new_token)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    try:
        api_token = ops.revoke_api_token(current_user, token_id)
    except ops.AccountError:
        abort(404)
    db.session.commit()
    flash(_("Token %(name)s revoked: it no longer works.", name=api_token.name), "info")
    return redirect(url_for("accounts.tokens"))


@bp.route("/language", methods=["POST"])
def language() -> ResponseReturnValue:
    chosen = request.form.get("lang")
    if chosen in current_app.config["LANGUAGES"]:
        session["lang"] = chosen
        if current_user.is_authenticated:  # mail follows the language chosen last
            set_language(current_user, str(chosen))
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")))
