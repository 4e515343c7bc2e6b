"""The mail preference page and opening a notification (which marks it read)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from codedraft.extensions import db
from codedraft.feedback.models import Notification
from codedraft.i18n import language_name
from codedraft.mail import mail_enabled
from codedraft.notifications import operations as ops
from codedraft.notifications.models import MAIL_MODES

bp = Blueprint("notifications", __name__)


@bp.route("/notifications/settings", methods=["GET", "POST"])
@login_required
def settings() -> ResponseReturnValue:
    if request.method == "POST":
        try:
            ops.set_mail_mode(current_user, request.form.get("mail", ""))
            if "language" in request.form:
                ops.set_language(current_user, request.form.get("language", ""))
        except ops.PreferenceError as error:
            db.session.rollback()
            flash(str(error), "error")
            return redirect(url_for("notifications.settings"), code=303)
        db.session.commit()
        flash(_("Your mail preference was saved."), "info")
        return redirect(url_for("notifications.settings"), code=303)
    labels = {"immediately": _("Immediately, one mail per batch"), "daily": _("A daily digest"),
              "never": _("Never")}
    return render_template("notifications/settings.html", mode=ops.mail_mode(current_user.id),
                           modes=[(mode, labels[mode]) for mode in MAIL_MODES], mail_on=mail_enabled(),
                           language=ops.mail_language(current_user.id),
                           languages=[(code, language_name(code)) for code in current_app.config["LANGUAGES"]])


@bp.route("/notifications/<int:notification_id>/open", methods=["POST"])
@login_required
def open_notification(notification_id: int) -> ResponseReturnValue:
    """Mark one notification read and go where it points; a batch closes once it is read."""
    if not ops.mark_read(current_user, notification_id):
        abort(404)
    db.session.commit()
    link = db.session.get(Notification, notification_id).link  # type: ignore[union-attr]
    # Only paths of this site: a stored link is never an open redirect.
    if not link.startswith("/") or link.startswith("//") or "\\" in link:
        link = url_for("feedback.notifications")
    return redirect(link, code=303)
