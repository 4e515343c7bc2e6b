"""Every form route, tried by the administrator of one code against the things of another.

Each POST route of the app is called by a code admin of code B twice: once naming code B in the
URL with every id (chapter, clause, round, comment, theme, structure change, template, token,
notification, application) taken from code A, and once naming code A itself. Form fields carry
code A's ids and hostile values. Nothing of code A may change and no answer may be a 500; the
routes list is taken from the app, so a route added later is swept too.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from codedraft.accounts import operations as accounts
from codedraft.codes import operations as codes
from codedraft.codes import structure
from codedraft.codes.models import Chapter, Clause, Code, Role
from codedraft.demo import DEMO_SLUG, seed_demo
from codedraft.drafts.models import Draft
from codedraft.exports.jobs import ExportJob
from codedraft.extensions import db
from codedraft.feedback import operations as feedback
from codedraft.feedback import triage
from codedraft.feedback.models import Amendment, CampaignGroup, Theme
from codedraft.registration.models import Application
from codedraft.timeutil import utcnow
from tests.conftest import PASSWORD, csrf_token, login

# Rows written by any signed-in request, whoever makes it: not code A's data.
BOOKKEEPING = {"audit_events", "login_sessions", "alembic_version"}

# One of each kind: too long, a NUL, a negative id, a number past every integer column, Polish letters,
# and digits that are not ASCII ("²" passes str.isdigit and fails int; "١٢" passes both).
HOSTILE_TEXT = ("x" * 5000, "\x00", "-1", "99999999999999999999", "ą" * 300, "²", "١٢")


def _rows(table: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in db.session.execute(text(f'SELECT * FROM "{table}" ORDER BY 1'))]


def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    db.session.expire_all()
    return {t.name: _rows(t.name) for t in db.metadata.sorted_tables if t.name not in BOOKKEEPING}


class Victim:
    """Code A, with one of everything a route can name by id."""

    def __init__(self) -> None:
        seed_demo()
        self.code = db.session.query(Code).filter_by(slug=DEMO_SLUG).one()
        self.office = accounts.find_user_by_email("office@demo.test")
        chair = accounts.find_user_by_email("chair.open@demo.test")
        reviewer = accounts.find_user_by_email("provider@demo.test")
        self.clause = db.session.query(Clause).filter_by(code_id=self.code.id, number="1").one()
        self.chapter = db.session.get(Chapter, self.clause.chapter_id)
        draft = db.session.query(Draft).filter_by(code_id=self.code.id).one()
        self.round = feedback.open_round(self.code, draft, utcnow() + timedelta(days=7), by=self.office)
        self.comment = feedback.post_comment(self.code, self.clause, reviewer, "A comment of code A.")
        db.session.add(Amendment(comment_id=self.comment.id, replacement="New words"))
        self.group = CampaignGroup(round_id=self.round.id, shared_text="shared", size=1)
        self.theme = Theme(round_id=self.round.id, clause_id=self.clause.id, name="A theme")
        db.session.add_all([self.group, self.theme])
        db.session.flush()
        self.template = triage.add_template(self.code, chair, "Template", "Thanks.", "accepted")
        self.change = structure.retitle(self.clause, "Model cards, retitled", chair)
        token, _ = accounts.create_api_token(self.office, "office token")
        self.token_id = token.id
        self.notification = feedback.notify(chair.id, "Something happened", "/")
        applicant = accounts.create_user("applicant@example.test", "Applicant", PASSWORD)
        self.application = Application(user_id=applicant.id, code_id=self.code.id, category="academia")
        db.session.add(self.application)
        self.office_id = self.office.id
        self.job = ExportJob(id="a" * 40, code_id=self.code.id, user_id=self.office.id, kind="feedback",
                             format="csv", status="done", message="A comment of code A.")
        db.session.add(self.job)
        db.session.commit()


class Attacker:
    """Code B and its administrator, who has no role on code A."""

    def __init__(self) -> None:
        self.code = codes.create_code("Code B", slug="code-b")
        chapter = codes.add_chapter(self.code, "B's chapter")
        self.clause = codes.add_clause(chapter, kind="commitment", number="1", title="B", body="B's text.")
        self.user = accounts.create_user("admin.b@example.test", "B Admin", PASSWORD)
        accounts.grant_role(self.user, self.code, Role.admin)
        db.session.commit()


@pytest.fixture
def scene(app: Flask, client: FlaskClient) -> Iterator[tuple[Victim, Attacker, FlaskClient]]:
    victim = Victim()
    attacker = Attacker()
    response = login(client, attacker.user.email)
    assert response.status_code == 302
    yield victim, attacker, client


def _url_values(victim: Victim, slug: str) -> dict[str, Any]:
    return {
        "slug": slug, "uid": victim.clause.uid, "chapter_id": victim.chapter.id, "round_id": victim.round.id,
        "comment_id": victim.comment.id, "theme_id": victim.theme.id, "change_id": victim.change.id,
        "token_id": victim.token_id, "notification_id": victim.notification.id,
        "application_id": victim.application.id, "token": "not-a-real-token", "number": 1,
        "group_id": victim.group.id, "job_id": victim.job.id,
    }


def _forms(victim: Victim) -> Iterator[dict[str, Any]]:
    """Form bodies naming code A's things, then the same keys with hostile values."""
    ids = {
        "chapter": victim.chapter.id, "chapter_id": victim.chapter.id, "clause": victim.clause.id,
        "comment": victim.comment.id, "other": victim.theme.id, "group": victim.group.id,
        "template": victim.template.id, "user_id": victim.office_id, "draft": victim.round.draft_id,
        "target": [f"comment:{victim.comment.id}", f"theme:{victim.theme.id}", f"group:{victim.group.id}"],
        "role": "admin", "action": "accept", "disposition": "accepted", "status": "resolved",
        "title": "Taken over", "name": "Taken over", "body": "Taken over", "reason": "Taken over",
        "summary": "Taken over", "number": "99", "kind": "measure", "step": "1", "public": "1",
        "members_may_edit": "1", "publish": "1", "email": "office@demo.test", "code": victim.code.slug,
        "organisation": "Org", "category": "academia", "closes_at": "2030-01-01T00:00",
        "opens_at": "2020-01-01T00:00", "language": "pl", "replacement": "New", "quote": "Model",
        "text": "Taken over", "note": "Taken over", "checkpoint": "Taken over", "mail": "instant",
        "licence": "CC-BY-4.0", "audience": "public", "working_group": "",
    }
    yield ids
    for hostile in HOSTILE_TEXT:
        yield {key: hostile for key in ids}
    yield {key: [str(value), str(value)] if not isinstance(value, list) else value * 2 for key, value in ids.items()}


def _post_rules(app: Flask) -> list[Any]:
    return sorted((rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or set())
                   and not rule.rule.startswith(("/api/", "/socket.io", "/login", "/logout", "/account/password"))),
                  key=lambda rule: rule.rule)


def _path(rule: Any, values: dict[str, Any], action: str) -> str:
    path = rule.rule
    for name in rule.arguments:
        value = action if name == "action" else values[name]
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", str(value), path)
    return path


ACTIONS = ("accept", "reject", "rebase", "rename", "merge", "split", "preview", "apply")


def _sweep(app: Flask, client: FlaskClient, victim: Victim, slug: str) -> list[str]:
    token = csrf_token(client, "/")
    problems = []
    for rule, form, action in itertools.product(_post_rules(app), list(_forms(victim)), ACTIONS):
        if "action" not in rule.arguments and action != ACTIONS[0]:
            continue
        path = _path(rule, _url_values(victim, slug), action)
        response = client.post(path, data={**form, "csrf_token": token})
        if response.status_code >= 500:
            problems.append(f"{response.status_code} from POST {path} with {sorted(form)[:3]}...")
    return problems


def _changes(before: dict[str, list[Any]], after: dict[str, list[Any]], attacker: Attacker) -> list[str]:
    """Rows that appeared or went, except rows of code B or of its admin's own account."""
    def column(table: str, name: str) -> int | None:
        names = [c.name for c in db.metadata.tables[table].columns]
        return names.index(name) if name in names else None

    code_b, user_b = attacker.code.id, attacker.user.id
    b_clauses = {row[0] for row in after["clauses"] if row[column("clauses", "code_id")] == code_b}
    b_comments = {row[0] for row in after["feedback_comments"]
                  if row[column("feedback_comments", "code_id")] == code_b}
    b_drafts = {row[0] for row in after["drafts"] if row[column("drafts", "code_id")] == code_b}
    b_rounds = {row[0] for row in after["feedback_rounds"] if row[column("feedback_rounds", "code_id")] == code_b}

    def attackers_own(table: str, row: tuple[Any, ...]) -> bool:
        owned = {"code_id": {code_b}, "clause_id": b_clauses, "comment_id": b_comments, "user_id": {user_b},
                 "draft_id": b_drafts, "round_id": b_rounds}
        if table in ("codes", "users"):
            return row[0] == (code_b if table == "codes" else user_b)
        return any(row[index] in ids for name, ids in owned.items()
                   if (index := column(table, name)) is not None)

    changed = []
    for table, rows in before.items():
        moved = set(rows) ^ set(after[table])
        foreign = sorted((row for row in moved if not attackers_own(table, row)), key=repr)
        if foreign:
            changed.append(f"{table}: {foreign[:3]}")
    return changed


@pytest.mark.parametrize("naming", ["own code", "other code"])
def test_a_code_admin_changes_nothing_of_another_code(app, scene, naming):
    victim, attacker, client = scene
    before = _snapshot()
    problems = _sweep(app, client, victim, attacker.code.slug if naming == "own code" else victim.code.slug)
    assert problems == []
    # Code B may have gained things of its own (a chapter titled "Taken over"); nothing else may change.
    assert _changes(before, _snapshot(), attacker) == []


def test_the_sweep_reaches_the_routes(app, scene):
    # The same requests from code A's own Office do change code A: the sweep is not refused wholesale
    # by something that has nothing to do with rights (a wrong CSRF token, a wrong URL).
    victim, attacker, client = scene
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert login(client, "office@demo.test", "codedraft-demo-2026").status_code == 302
    before = _snapshot()
    assert _sweep(app, client, victim, victim.code.slug) == []
    assert len(_changes(before, _snapshot(), attacker)) >= 5


def _get_rules(app: Flask) -> list[Any]:
    return sorted((rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or set())
                   and rule.arguments and not rule.rule.startswith(("/static", "/socket.io", "/invite"))),
                  key=lambda rule: rule.rule)


@pytest.mark.parametrize("naming", ["own code", "other code"])
def test_no_page_shows_another_codes_feedback_to_a_code_admin(app, scene, naming):
    victim, attacker, client = scene
    slug = attacker.code.slug if naming == "own code" else victim.code.slug
    leaks, errors = [], []
    for rule, action in itertools.product(_get_rules(app), ACTIONS):
        if "action" not in rule.arguments and action != ACTIONS[0]:
            continue
        path = _path(rule, _url_values(victim, slug), action)
        response = client.get(path)
        if response.status_code >= 500:
            errors.append(f"{response.status_code} from GET {path}")
        elif b"A comment of code A." in response.get_data():
            leaks.append(path)
    assert errors == []
    assert leaks == []


# What a reviewer and an observer of code A may leave behind after every route has been tried:
# their own API tokens; a reviewer's replies and support (a round is open), the notifications
# these send and the comment's counters; and the clause's first log entry, written when its
# live text is first opened. No comment's text, status or disposition, no clause, role or round.
MAY_CHANGE = {
    "reviewer": {"api_tokens", "feedback_replies", "feedback_support", "notifications", "feedback_comments",
                 "clause_updates"},
    "observer": {"api_tokens", "clause_updates"},
}


@pytest.mark.parametrize("email, role", [("civil@demo.test", "reviewer"), ("observer@demo.test", "observer")])
def test_a_reviewer_or_observer_changes_only_what_their_role_allows(app, scene, email, role):
    victim, attacker, client = scene
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert login(client, email, "codedraft-demo-2026").status_code == 302
    comment_before = _rows("feedback_comments")
    before = _snapshot()
    assert _sweep(app, client, victim, victim.code.slug) == []
    after = _snapshot()
    changed = {table for table in before if before[table] != after[table]}
    assert changed <= MAY_CHANGE[role], changed - MAY_CHANGE[role]
    names = [c.name for c in db.metadata.tables["feedback_comments"].columns]
    kept = [names.index(n) for n in ("body", "status", "disposition", "hidden_at", "clause_id", "author_id")
            if n in names]
    assert [[row[i] for i in kept] for row in comment_before] == \
        [[row[i] for i in kept] for row in _rows("feedback_comments")]
    updates = after["clause_updates"]
    assert all(row[2] is None for row in updates), "only the clause's first entry, by no one, is written"


@pytest.mark.parametrize("naming", ["own code", "other code"])
def test_the_api_gives_a_code_admin_nothing_of_another_code(app, scene, naming):
    victim, attacker, client = scene
    _, secret = accounts.create_api_token(attacker.user, "sweep")
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    slug = attacker.code.slug if naming == "own code" else victim.code.slug
    values = _url_values(victim, slug)
    before = _snapshot()
    seen = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/"):
            continue
        path = _path(rule, values, "accept")
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            response = client.open(path, method=method, headers=headers,
                                   query_string={"q": "model card", "old": "1", "new": "1", "code": victim.code.slug},
                                   json={"name": "Taken over", "title": "Taken over", "slug": victim.code.slug})
            seen.append((method, path, response.status_code))
            assert response.status_code < 500, (method, path)
            body = response.get_data()
            assert b"A comment of code A." not in body, (method, path)
            assert b"publishing a model card" not in body, (method, path)
    assert _changes(before, _snapshot(), attacker) == []
    assert len(seen) >= 15


QUERY_KEYS = ("action", "actor", "at", "category", "changed_only", "chapter", "clause", "code", "fragment", "from",
              "group", "lang", "layout", "next", "page", "q", "status", "step", "to", "unanswered", "old", "new",
              "format", "sort", "kind", "disposition", "organisation", "round", "author", "draft", "theme", "per_page")
HOSTILE_QUERY_VALUES = ("-1", "99999999999999999999", "NaN", "\x00", "'\"<>", "ą" * 2000, "title:", "(((((((((((",
                        "../../etc/passwd", "²", "١٢")


def test_no_page_fails_on_hostile_query_strings(app, scene):
    # The Office sees every page; every GET route is asked with every known query key set to each
    # hostile value (and all keys at once, twice over): a clear answer every time, never a 500.
    victim, _attacker, client = scene
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert login(client, "office@demo.test", "codedraft-demo-2026").status_code == 302
    values = _url_values(victim, victim.code.slug)
    errors = []
    rules = [rule for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
             if "GET" in (rule.methods or set()) and not rule.rule.startswith(("/static", "/socket.io"))
             and "filename" not in rule.arguments]
    for rule in rules:
        path = _path(rule, values, "accept")
        for value in HOSTILE_QUERY_VALUES:
            query = [(key, value) for key in QUERY_KEYS] * 2
            response = client.get(path, query_string=query)
            if response.status_code >= 500:
                errors.append(f"{response.status_code} GET {path} with every key = {value[:20]!r}")
    assert errors == []
