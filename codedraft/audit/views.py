"""The Office reads the audit log."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from codedraft.audit.operations import ACTIONS, AuditFilter, audit_page
from codedraft.database import stored_integer

bp = Blueprint("audit", __name__)

#: What the Office reads for each recorded act.
ACTION_LABELS = {
    "role.granted": _l("Role granted"),
    "role.removed": _l("Role removed"),
    "invitation.sent": _l("Invitation sent"),
    "invitation.accepted": _l("Invitation accepted"),
    "password.changed": _l("Password changed"),
    "token.created": _l("API token created"),
    "token.revoked": _l("API token revoked"),
    "organisation.set": _l("Organisation set"),
}


@bp.route("/admin/audit")
@login_required
def log() -> ResponseReturnValue:
    if not current_user.is_office:
        abort(403)
    action = request.args.get("action", "")
    wanted = AuditFilter(
        action=action if action in ACTIONS else "",
        actor=request.args.get("actor", "")[:200],
        code_id=stored_integer(request.args.get("code", "")),
    )
    page = min(max(stored_integer(request.args.get("page", "")) or 1, 1), 100_000)
    return render_template("audit/log.html", result=audit_page(wanted, page=page), wanted=wanted, actions=ACTIONS,
                           labels=ACTION_LABELS)
