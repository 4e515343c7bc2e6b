"""Reading and administering codes, chapters and clauses."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from codedraft import labels, policy
from codedraft.accounts import operations as accounts
from codedraft.accounts.models import Organisation, User
from codedraft.audit.operations import record_event
from codedraft.codes import operations as ops
from codedraft.codes import structure
from codedraft.codes.models import Chapter, Clause, Code, Membership, Role, StructureChange, WorkingGroup
from codedraft.codes.panels import clause_panels
from codedraft.codes.tree import build_tree
from codedraft.database import storable_text
from codedraft.drafts.operations import clause_history, drafts_of
from codedraft.extensions import db, limiter
from codedraft.mail.operations import send_invitation_mail
from codedraft.markdown import render_markdown
from codedraft.numbers import stored_integer

bp = Blueprint("codes", __name__)


def load_code(slug: str) -> Code:
    """The code, or 404 whether it is missing or hidden (SECURITY-CASES 27: same answer)."""
    if not storable_text(slug):
        abort(404)  # no slug holds it, and PostgreSQL would refuse the comparison (a 500)
    code = db.session.scalar(select(Code).where(Code.slug == slug))
    if code is None or not policy.can_view_code(current_user, code):
        abort(404)
    return code


def load_clause(slug: str, uid: str) -> tuple[Code, Clause]:
    code = load_code(slug)
    if not storable_text(uid):
        abort(404)
    clause = db.session.scalar(select(Clause).where(Clause.uid == uid, Clause.code_id == code.id))
    if clause is None or not policy.can_view_clause(current_user, clause):
        abort(404)
    return code, clause

def chapter_of(code: Code, chapter_id: int) -> Chapter:
    """The chapter of ``code`` with that id; 404 for a missing one or another code's."""
    chapter = db.session.get(Chapter, chapter_id)
    if chapter is None or chapter.code_id != code.id:
        abort(404)
    return chapter


def save_or_explain(change: Callable[[], object]) -> bool:
    """Make ``change`` and commit it; a refused change (CodeError) is rolled back and shown as a
    message instead. Returns whether it was saved."""
    try:
        change()
    except ops.CodeError as error:
        db.session.rollback()
        flash(str(error), "error")
        return False
    db.session.commit()
    return True


def require_admin(code: Code) -> None:
    if not policy.can_administer_code(current_user, code):
        abort(403)


def visible_codes(user: User) -> list[Code]:
    codes = db.session.scalars(select(Code).order_by(Code.title)).all()
    return [code for code in codes if policy.can_view_code(user, code)]


@bp.route("/")
@login_required
def index() -> ResponseReturnValue:
    return render_template("codes/index.html", codes=visible_codes(current_user),
                           may_create=policy.can_create_code(current_user))


@bp.route("/codes/new", methods=["GET", "POST"])
@login_required
def new_code() -> ResponseReturnValue:
    if not policy.can_create_code(current_user):
        abort(403)
    if request.method == "POST":
        try:
            code = ops.create_code(request.form.get("title", ""), summary=request.form.get("summary", ""),
                                   language=request.form.get("language", "en"))
        except ops.CodeError as error:
            flash(str(error), "error")
        else:
            db.session.commit()
            return redirect(url_for("codes.settings", slug=code.slug))
    return render_template("codes/new.html")


@bp.route("/codes/<slug>")
@login_required
def overview(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    # A chapter whose clauses were all withdrawn (an earlier version's part) is left out; a new,
    # still empty chapter is shown.
    chapters = [(chapter, build_tree(c for c in chapter.clauses if not c.withdrawn)) for chapter in code.chapters
                if not chapter.clauses or any(not c.withdrawn for c in chapter.clauses)]
    return render_template(
        "codes/overview.html", code=code, chapters=chapters, drafts=drafts_of(code),
        is_admin=policy.can_administer_code(current_user, code),
    )


@bp.route("/codes/<slug>/clauses/<uid>")
@login_required
def clause(slug: str, uid: str) -> ResponseReturnValue:
    code, clause = load_clause(slug, uid)
    return render_template(
        "codes/clause.html", code=code, clause=clause, body_html=render_markdown(clause.body),
        notes_html={note.id: render_markdown(note.body) for note in clause.notes},
        may_restructure=may_restructure(clause), structure_changes=structure.changes_of_clause(clause),
        describe_change=structure.describe, chapters=_chapters_for(code, clause),
        history=clause_history(clause.uid), may_edit=policy.can_edit_clause(current_user, clause),
        panels=clause_panels(code, clause, current_user),
    )


@bp.route("/preview", methods=["POST"])
@login_required
@limiter.limit("120 per minute")
def preview() -> ResponseReturnValue:
    """Render Markdown for the editor's live preview through the one safe renderer."""
    payload = request.get_json(silent=True) or {}
    text = payload.get("text")
    if not isinstance(text, str):
        return jsonify(error="Send JSON {\"text\": \"...\"}."), 400
    return jsonify(html=render_markdown(text))


# --- The Office: setting a code up -------------------------------------------------------


@bp.route("/codes/<slug>/settings")
@login_required
def settings(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    memberships = db.session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id).where(Membership.code_id == code.id)
        .order_by(User.name)
    ).all()
    groups = {group.id: group for group in code.working_groups}
    organisations = db.session.scalars(select(Organisation).order_by(Organisation.name)).all()
    # SECURITY-CASES 33: a code admin picks among the people of the codes they administer only.
    people = accounts.people_visible_to(current_user)
    return render_template(
        "codes/settings.html", code=code, memberships=memberships, groups=groups,
        organisations=organisations, people=people, roles=[r.name for r in _grantable_roles(code)],
        categories=list(labels.stakeholder_categories().items()),
    )


def _group_from_form(code: Code, field: str = "working_group") -> WorkingGroup | None:
    raw = (request.form.get(field) or "").strip()
    if not raw:
        return None  # "no working group"
    number = stored_integer(raw)
    group = db.session.get(WorkingGroup, number) if number is not None else None
    if group is None or group.code_id != code.id:
        abort(400, description=_("There is no such working group in this code."))
    return group


def _grantable_roles(code: Code) -> list[Role]:
    """The roles the signed-in person may give on ``code``: none above their own."""
    own = policy.code_role(current_user, code.id)
    return [role for role in Role if own is not None and role <= own]


def _role_from_form(code: Code) -> Role:
    try:
        role = Role[request.form.get("role", "")]
    except KeyError:
        abort(400)
    if role not in _grantable_roles(code):
        abort(403)
    return role


def _person_from_form() -> User:
    """The account named by the form, if the signed-in person may manage it (else 404 or 403)."""
    user = db.session.get(User, stored_integer(request.form.get("user_id")) or 0)
    if user is None:
        abort(400)
    if not accounts.may_manage_person(current_user, user):
        abort(403)
    return user


@bp.route("/codes/<slug>/working-groups", methods=["POST"])
@login_required
def add_working_group(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    save_or_explain(lambda: ops.add_working_group(code, request.form.get("name", ""),
                                                  members_may_edit=request.form.get("members_may_edit") == "on"))
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/chapters", methods=["POST"])
@login_required
def add_chapter(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    ops.add_chapter(code, request.form.get("title", ""), number=request.form.get("number", ""),
                    working_group=_group_from_form(code))
    db.session.commit()
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/chapters/<int:chapter_id>", methods=["POST"])
@login_required
def update_chapter(slug: str, chapter_id: int) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    chapter = chapter_of(code, chapter_id)
    ops.assign_working_group(chapter, _group_from_form(code))
    db.session.commit()
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/chapters/<int:chapter_id>/clauses", methods=["POST"])
@login_required
def add_clause(slug: str, chapter_id: int) -> ResponseReturnValue:
    code = load_code(slug)
    chapter = chapter_of(code, chapter_id)
    require_admin(code)
    added: list[Clause] = []
    if not save_or_explain(lambda: added.append(ops.add_clause(
            chapter, kind=request.form.get("kind", "section"), number=request.form.get("number", ""),
            title=request.form.get("title", ""), body=request.form.get("body", "")))):
        return redirect(url_for("codes.overview", slug=code.slug))
    return redirect(url_for("codes.clause", slug=code.slug, uid=added[0].uid))


@bp.route("/codes/<slug>/clauses/<uid>/label", methods=["POST"])
@login_required
def relabel_clause(slug: str, uid: str) -> ResponseReturnValue:
    code, clause = load_clause(slug, uid)
    if not may_restructure(clause):
        abort(403)
    save_or_explain(lambda: _relabel(code, clause, request.form.get("number", clause.number)))
    return redirect(url_for("codes.clause", slug=code.slug, uid=clause.uid))


# --- Structure editing: the Office everywhere, chairs within their group's chapters ---------


def _audit_structure(code: Code, change: StructureChange | None, subject: str) -> None:
    """Record a structure change in the audit log, in the same transaction as the change."""
    if change is None:
        return
    action = "structure.undo" if change.action.startswith("undo_") else f"structure.{change.action}"
    record_event(action, actor=current_user, code=code, subject=subject[:300],
                 details={"change": change.id, "before": change.before[:500], "after": change.after[:500]})


def _relabel(code: Code, clause: Clause, number: str) -> None:
    _audit_structure(code, structure.renumber(clause, number, current_user), clause.heading)
    _audit_structure(code, structure.retitle(clause, request.form.get("title", clause.title), current_user),
                     clause.heading)


def may_restructure(clause: Clause) -> bool:
    """The Office, or a chair of the working group that owns the clause's chapter."""
    return policy.can_answer_feedback(current_user, clause)


def may_edit_chapter(code: Code, chapter: Chapter) -> bool:
    """The Office, a code-wide chair, or a chair of the working group that owns the chapter."""
    if policy.can_administer_code(current_user, code):
        return True
    rows = db.session.scalars(select(Membership).where(
        Membership.user_id == current_user.id, Membership.code_id == code.id)).all()
    return any(row.rank >= Role.chair and row.working_group_id in (None, chapter.working_group_id) for row in rows)


def _chapters_for(code: Code, clause: Clause) -> list[Chapter]:
    """The chapters this person may move the clause to."""
    return [chapter for chapter in code.chapters if may_edit_chapter(code, chapter)]


@bp.route("/codes/<slug>/clauses/<uid>/structure", methods=["POST"])
@login_required
@limiter.limit("120 per minute")
def restructure_clause(slug: str, uid: str) -> ResponseReturnValue:
    """Retitle, renumber, move or withdraw one clause; every change is recorded and undoable."""
    code, clause = load_clause(slug, uid)
    if not may_restructure(clause):
        abort(403)
    action = request.form.get("action", "")
    if action not in ("label", "up", "down", "chapter", "withdraw", "restore"):
        flash(_("Unknown change."), "error")
        return redirect(url_for("codes.clause", slug=code.slug, uid=clause.uid)), 400
    save_or_explain(lambda: _restructure(code, clause, action))
    return redirect(url_for("codes.clause", slug=code.slug, uid=clause.uid))


def _restructure(code: Code, clause: Clause, action: str) -> None:
    if action == "label":
        _relabel(code, clause, request.form.get("number", ""))
    elif action in ("up", "down"):
        _audit_structure(code, structure.move(clause, current_user, step=-1 if action == "up" else 1), clause.heading)
    elif action == "chapter":
        target = chapter_of(code, request.form.get("chapter_id", type=int) or 0)
        if not may_edit_chapter(code, target):
            abort(404)
        _audit_structure(code, structure.move(clause, current_user, chapter=target), clause.heading)
    elif action == "withdraw":
        _audit_structure(code, structure.withdraw(clause, current_user), clause.heading)
    else:
        _audit_structure(code, structure.restore(clause, current_user), clause.heading)


@bp.route("/codes/<slug>/structure-changes/<int:change_id>/undo", methods=["POST"])
@login_required
def undo_structure_change(slug: str, change_id: int) -> ResponseReturnValue:
    code = load_code(slug)
    change = db.session.get(StructureChange, change_id)
    if change is None or change.code_id != code.id:
        abort(404)
    clause = db.session.get(Clause, change.clause_id) if change.clause_id else None
    chapter = db.session.get(Chapter, change.chapter_id) if change.chapter_id else None
    allowed = (may_restructure(clause) if clause is not None
               else may_edit_chapter(code, chapter) if chapter is not None
               else policy.can_administer_code(current_user, code))
    if not allowed:
        abort(403)
    subject = clause.heading if clause is not None else chapter.title if chapter is not None else code.title
    if save_or_explain(lambda: _audit_structure(code, structure.undo(change, current_user), subject)):
        flash(_("The change was undone."), "success")
    if clause is not None:
        return redirect(url_for("codes.clause", slug=code.slug, uid=clause.uid))
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/rename", methods=["POST"])
@login_required
def rename_code(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    save_or_explain(lambda: _audit_structure(
        code, structure.rename_code(code, request.form.get("title", ""), current_user), code.title))
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/chapters/<int:chapter_id>/rename", methods=["POST"])
@login_required
def rename_chapter(slug: str, chapter_id: int) -> ResponseReturnValue:
    code = load_code(slug)
    chapter = chapter_of(code, chapter_id)
    if not may_edit_chapter(code, chapter):
        abort(403)
    save_or_explain(lambda: _audit_structure(code, structure.rename_chapter(
        chapter, request.form.get("title", ""), current_user, number=request.form.get("number")), chapter.title))
    if request.form.get("back") == "overview":
        return redirect(url_for("codes.overview", slug=code.slug))
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/renumber", methods=["POST"])
@login_required
def renumber_code(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    changes = structure.renumber_automatically(code, current_user)
    record_event("structure.renumber_auto", actor=current_user, code=code, subject=code.title,
                 details={"clauses": len(changes)})
    db.session.commit()
    flash(_("%(count)s clauses renumbered.", count=len(changes)), "success")
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/people", methods=["POST"])
@login_required
def set_role(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    user = _person_from_form()
    group = _group_from_form(code)
    if request.form.get("role") == "none":
        accounts.revoke_role(user, code, group, by=current_user)
    else:
        accounts.grant_role(user, code, _role_from_form(code), group, by=current_user)
    db.session.commit()
    flash(_("Role saved for %(name)s.", name=user.name), "info")
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/organisations", methods=["POST"])
@login_required
def set_organisation(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    user = _person_from_form()
    category = request.form.get("category", "")
    if category not in dict(current_app.config["STAKEHOLDER_CATEGORIES"]):
        abort(400)
    name = request.form.get("organisation", "").strip()  # too long: refused at the flush, never cut
    user.organisation = accounts.get_or_create_organisation(name, category) if name else None
    record_event("organisation.set", actor=current_user, code=code, subject=user.email,
                 details={"organisation": name or None, "category": category})
    db.session.commit()
    flash(_("Organisation saved for %(name)s.", name=user.name), "info")
    return redirect(url_for("codes.settings", slug=code.slug))


@bp.route("/codes/<slug>/invitations", methods=["POST"])
@login_required
def invite(slug: str) -> ResponseReturnValue:
    code = load_code(slug)
    require_admin(code)
    email = request.form.get("email", "").strip()
    if "@" not in email or len(email) > 254:
        flash(_("Enter an e-mail address."), "error")
        return redirect(url_for("codes.settings", slug=code.slug))
    name = request.form.get("name", "").strip() or email
    _invitation, token = accounts.invite(
        email, name, code=code, role=_role_from_form(code),
        working_group=_group_from_form(code), invited_by=current_user,
    )
    db.session.commit()
    link = url_for("accounts.accept_invitation", token=token, _external=True)
    if send_invitation_mail(email, name, link, code_title=code.title):
        flash(_("Invitation mailed to %(email)s.", email=email), "info")
    else:  # mail is off (no SMTP_URL) or failed: the Office passes the link on itself
        flash(_("Invitation created. Send this one-time link: %(link)s", link=link), "info")
    return redirect(url_for("codes.settings", slug=code.slug))
