"""The permission policy: roles per code and per working group, read live."""
from __future__ import annotations

import pytest

from codedraft import policy
from codedraft.accounts import operations as accounts
from codedraft.codes import operations as codes
from codedraft.codes.models import Role
from codedraft.extensions import db


@pytest.fixture
def setting(make_code, make_user):
    code = make_code()
    group = codes.add_working_group(code, "WG 1")
    strict = codes.add_working_group(code, "WG 2", members_may_edit=False)
    open_clause = codes.add_clause(codes.add_chapter(code, "One", working_group=group), kind="section", title="A")
    strict_clause = codes.add_clause(codes.add_chapter(code, "Two", working_group=strict), kind="section", title="B")
    return code, group, open_clause, strict_clause


@pytest.mark.parametrize(
    ("role", "view", "edit_open", "edit_strict", "comment", "admin"),
    [
        ("observer", True, False, False, False, False),
        ("reviewer", True, False, False, True, False),
        ("member", True, True, False, True, False),
        ("chair", True, True, True, True, False),
        ("admin", True, True, True, True, True),
        (None, False, False, False, False, False),
    ],
)
def test_role_matrix(setting, make_user, role, view, edit_open, edit_strict, comment, admin):
    code, _group, open_clause, strict_clause = setting
    user = make_user(role, code)
    assert policy.can_view_clause(user, open_clause) is view
    assert policy.can_edit_clause(user, open_clause) is edit_open
    assert policy.can_edit_clause(user, strict_clause) is edit_strict
    assert policy.can_comment_on_clause(user, open_clause) is comment
    assert policy.can_administer_code(user, code) is admin


def _person(role, code, group, make_user):
    """A person with ``role`` on ``code``; "office" is the Office, "group-chair" a member who
    chairs ``group``."""
    if role == "office":
        return make_user(office=True)
    if role == "group-chair":
        user = make_user("member", code)
        accounts.grant_role(user, code, Role.chair, group)
        return user
    return make_user(role, code)


@pytest.mark.parametrize("role", ["observer", "reviewer", "member", "chair", "admin", None, "office", "group-chair"])
def test_one_query_rights_agree_with_the_policy(setting, make_user, role):
    code, group, open_clause, strict_clause = setting
    user = _person(role, code, group, make_user)
    strict_clause.withdrawn = role == "admin"  # a withdrawn clause is read-only even for admins
    db.session.flush()
    for clause in (open_clause, strict_clause):
        rights = policy.clause_rights(user, clause.uid)
        expected_role = policy.clause_role(user, clause)
        assert (rights.role if rights else None) == expected_role
        assert (rights.may_edit if rights else False) == policy.can_edit_clause(user, clause)
        assert (rights.may_suggest if rights else False) == policy.can_suggest_on_clause(user, clause)
    assert policy.clause_rights(user, "no-such-clause") is None


def test_a_chair_of_one_group_chairs_only_that_group(setting, make_user):
    code, group, open_clause, strict_clause = setting
    user = make_user("reviewer", code)
    accounts.grant_role(user, code, Role.chair, group)
    assert policy.can_edit_clause(user, open_clause)
    assert not policy.can_edit_clause(user, strict_clause)
    assert policy.can_answer_feedback(user, open_clause)
    assert not policy.can_answer_feedback(user, strict_clause)


def test_group_only_membership_reads_the_code_as_observer(setting, make_user):
    code, group, open_clause, strict_clause = setting
    user = make_user()
    accounts.grant_role(user, code, Role.member, group)
    assert policy.code_role(user, code.id) == Role.observer
    assert policy.can_edit_clause(user, open_clause)
    assert not policy.can_comment_on_clause(user, strict_clause)


def test_role_changes_apply_at_once(setting, make_user):
    code, _group, open_clause, _ = setting
    user = make_user("member", code)
    assert policy.can_edit_clause(user, open_clause)
    accounts.grant_role(user, code, Role.reviewer)
    db.session.flush()
    assert not policy.can_edit_clause(user, open_clause)
    accounts.revoke_role(user, code)
    assert not policy.can_view_clause(user, open_clause)


def test_the_office_administers_every_code(make_code, make_user):
    office = make_user(office=True)
    assert policy.can_administer_code(office, make_code())


def test_other_codes_are_invisible(setting, make_code, make_user):
    code, *_ = setting
    other = make_code()
    user = make_user("chair", other)
    assert not policy.can_view_code(user, code)


@pytest.mark.parametrize("role", ["observer", "member", "chair", None, "office", "group-chair"])
def test_socket_rights_agree_with_the_policy_and_follow_the_login(setting, make_user, role):
    code, group, open_clause, strict_clause = setting
    user = _person(role, code, group, make_user)
    login = accounts.start_login_session(user)
    db.session.flush()
    for clause in (open_clause, strict_clause):
        answer = policy.socket_rights(login.id, clause.uid)
        assert answer.login_alive and answer.user_id == user.id
        assert answer.rights == policy.clause_rights(user, clause.uid)
    assert policy.socket_rights(login.id, "no-such-clause") == (True, user.id, None)
    accounts.end_login_session(login.id)
    db.session.flush()
    assert policy.socket_rights(login.id, open_clause.uid) == (False, None, None)
    assert policy.socket_rights("no-such-login", open_clause.uid).login_alive is False


def test_socket_rights_end_with_a_deactivated_account(setting, make_user):
    code, _group, open_clause, _strict = setting
    user = make_user("chair", code)
    login = accounts.start_login_session(user)
    db.session.flush()
    assert policy.socket_rights(login.id, open_clause.uid).rights.may_edit
    user.is_active_account = False
    db.session.flush()
    assert policy.socket_rights(login.id, open_clause.uid).login_alive is False
