"""The Office reads the audit log."""
from __future__ import annotations

import csv
import io
import json

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from codedraft.audit.operations import ACTIONS, AuditFilter, audit_page, audit_rows
from codedraft.codes.models import Code
from codedraft.exports.feedback_export import neutralise_cell
from codedraft.extensions import db
from codedraft.numbers import stored_integer

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
    "import.applied": _l("Document imported"),
    "structure.rename_code": _l("Code renamed"),
    "structure.rename_chapter": _l("Chapter renamed"),
    "structure.retitle": _l("Clause retitled"),
    "structure.renumber": _l("Clause renumbered"),
    "structure.renumber_auto": _l("Clauses numbered automatically"),
    "structure.move": _l("Clause moved"),
    "structure.withdraw": _l("Clause withdrawn"),
    "structure.restore": _l("Clause restored"),
    "structure.undo": _l("Structure change undone"),
    "registration.applied": _l("Application filed by a signed-in person"),
    "registration.approved": _l("Application approved"),
    "registration.refused": _l("Application refused"),
    "public.opened": _l("Code opened to the public"),
    "public.closed": _l("Code closed to the public"),
    "round.published": _l("Round's feedback published"),
    "round.unpublished": _l("Round's feedback withdrawn from publication"),
    "identity.linked": _l("Identity provider linked"),
}


def _wanted() -> AuditFilter:
    if not current_user.is_office:
        abort(403)
    action = request.args.get("action", "")
    return AuditFilter(
        action=action if action in ACTIONS else "",
        actor=request.args.get("actor", "")[:200],
        code_id=stored_integer(request.args.get("code", "")),
    )


@bp.route("/admin/audit")
@login_required
def log() -> ResponseReturnValue:
    wanted = _wanted()
    page = min(max(stored_integer(request.args.get("page", "")) or 1, 1), 100_000)
    codes = db.session.scalars(select(Code).order_by(Code.title)).all()
    return render_template("audit/log.html", result=audit_page(wanted, page=page), wanted=wanted, actions=ACTIONS,
                           codes=codes, labels=ACTION_LABELS)


@bp.route("/admin/audit.csv")
@login_required
def log_csv() -> ResponseReturnValue:
    """The filtered log as CSV; cells that a spreadsheet would run as formulas are neutralised."""
    wanted = _wanted()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["when_utc", "action", "by", "code_id", "about", "details", "address"])
    for event in audit_rows(wanted):
        details = json.dumps(event.details or {}, ensure_ascii=False, sort_keys=True)
        writer.writerow([event.at.strftime("%Y-%m-%d %H:%M:%S"), event.action, neutralise_cell(event.actor_label),
                         event.code_id or "", neutralise_cell(event.subject), neutralise_cell(details),
                         neutralise_cell(event.address)])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})
