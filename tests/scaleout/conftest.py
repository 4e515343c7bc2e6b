"""Fixtures for scale-out tests: a fresh PostgreSQL database per session, Redis, real servers.

Outside CI these tests skip with a message when PostgreSQL or Redis is not running; under
CI=true they fail instead, so a missing service can never pass silently.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Code
from codedraft.collab.store import store_for
from codedraft.extensions import db
from codedraft.search.sync import stop_live_indexer
from tests.scaleout import cluster as cl


def _require_services() -> None:
    problem = cl.services_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"scale-out tests need PostgreSQL and Redis under CI: {problem}")
    pytest.skip(f"scale-out tests need PostgreSQL and Redis: {problem}")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The SQLAlchemy URL of a database created for this test session (schema included)."""
    _require_services()
    cl.ensure_redis()
    cl.clear_rate_limits()
    with cl.fresh_database() as name:
        uri = cl.sqlalchemy_url(name)
        app = cl.local_app(uri)
        with app.app_context():
            db.create_all()
            db.session.remove()
            db.engine.dispose()
        yield uri


@pytest.fixture(scope="session")
def pg_app(pg_database: str) -> Iterator[Flask]:
    app = cl.local_app(pg_database)
    yield app
    stop_live_indexer(app)  # its thread holds a pooled connection while it runs a pass
    store_for(app).close()  # the co-editing writer's own connection
    with app.app_context():
        db.engine.dispose()


@dataclass
class Scene:
    """A code with one clause and a chair and a member, committed in the shared database."""

    app: Flask
    code: Code
    clause: Clause
    people: dict[str, User]

    def cookie(self, who: str) -> str:
        return cl.session_cookie(self.app, self.people[who].email)




def make_scene(app: Flask, body: str = "Seed text.") -> Scene:
    """Create a code, a clause and its people in ``app``'s database and commit."""
    from codedraft.accounts import operations as accounts
    from codedraft.codes.models import Role

    n = uuid.uuid4().hex[:12]  # unique even when this module is imported twice (conftest and import)
    with app.app_context():
        code = codes.create_code(f"Scaled Code {n}")
        chapter = codes.add_chapter(code, "Chapter")
        clause = codes.add_clause(chapter, kind="commitment", number="1", title="Live", body=body)
        people: dict[str, User] = {}
        for role in ("chair", "member", "reviewer"):
            user = accounts.create_user(f"{role}{n}@scale.test", role.title(), cl.PASSWORD)
            accounts.grant_role(user, code, Role[role])
            people[role] = user
        db.session.commit()
        for obj in (code, clause, *people.values()):
            db.session.refresh(obj)
        db.session.expunge_all()
        db.session.remove()
    return Scene(app, code, clause, people)


@pytest.fixture
def scene(pg_app: Flask) -> Scene:
    return make_scene(pg_app)


@pytest.fixture
def pg_cluster(pg_database: str, tmp_path: Path) -> Iterator[cl.Cluster]:
    cluster = cl.Cluster(pg_database, tmp_path, cl.redis_url())
    try:
        yield cluster
    finally:
        cluster.close()


def with_second_clause(scene: Scene, body: str) -> tuple[Clause, Clause]:
    """The scene's clause and a second one in its chapter, committed (inside an app context)."""
    first = db.session.get(Clause, scene.clause.id)
    assert first is not None
    second = codes.add_clause(first.chapter, kind="commitment", number="2", title="Second", body=body)
    db.session.commit()
    return first, second
