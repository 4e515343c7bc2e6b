"""Shared fixtures: an app on a temporary SQLite file, factories, signed-in clients."""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from xdist.scheduler import LoadScopeScheduling

from codedraft import create_app
from codedraft.accounts import operations as accounts
from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Chapter, Clause, Code, Role
from codedraft.extensions import db


def _shared_folder(start: Path) -> Path:
    """The shared documents folder: ``CODEDRAFT_SHARED_DIR``, else the first ``shared`` folder
    beside the project or beside one of its parent folders (a worktree sits one level deeper)."""
    configured = os.environ.get("CODEDRAFT_SHARED_DIR")
    if configured:
        return Path(configured)
    for folder in start.parents:
        if (folder / "shared").is_dir():
            return folder / "shared"
    return start.parent / "shared"


SHARED = _shared_folder(Path(__file__).resolve().parents[1])
PASSWORD = "correct horse battery"


def shared_file(*parts: str) -> Path:
    """A file from ../shared, or skip the test with a clear reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/{'/'.join(parts)} is not present beside the project (a user's own clone?)")
    return path


def app_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'codedraft.sqlite3'}",
        "SEARCH_INDEX_DIR": str(tmp_path / "search"),
        "EXPORT_DIR": str(tmp_path / "exports"),
        "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://",
        # Cheap hashing keeps sign-in fast in tests; production keeps argon2's recommended costs.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        **extra,
    }


class FreshContextClient(FlaskClient):
    """Each request gets its own application context, as in production.

    The fixture holds one app context for the test's own database work; without this, requests
    would share its ``g`` (cached users, CSRF tokens) and its database session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


@contextmanager
def app_with(tmp_path: Path, **extra: Any) -> Iterator[Flask]:
    """An app on a fresh database in ``tmp_path``, with ``extra`` configuration, in its context."""
    app = create_app(app_config(tmp_path, **extra))
    app.test_client_class = FreshContextClient
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    with app_with(tmp_path) as made:
        yield made


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_code(app: Flask) -> Callable[..., Code]:
    counter = iter(range(1, 10_000))

    def factory(title: str | None = None, **kwargs: Any) -> Code:
        return codes.create_code(title or f"Code {next(counter)}", **kwargs)

    return factory


@pytest.fixture
def make_clause(app: Flask, make_code: Callable[..., Code]) -> Callable[..., Clause]:
    def factory(code: Code | None = None, chapter: Chapter | None = None, **kwargs: Any) -> Clause:
        if chapter is None:
            chapter = codes.add_chapter(code or make_code(), "Chapter")
        kwargs.setdefault("kind", "commitment")
        kwargs.setdefault("number", "1")
        kwargs.setdefault("title", "A commitment")
        kwargs.setdefault("body", "Signatories commit to something.")
        return codes.add_clause(chapter, **kwargs)

    return factory


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def factory(role: str | None = None, code: Code | None = None, *, office: bool = False,
                email: str | None = None, name: str | None = None, group: Any = None,
                category: str | None = None) -> User:
        n = next(counter)
        organisation = accounts.get_or_create_organisation(f"Org {category}", category) if category else None
        user = accounts.create_user(email or f"user{n}@example.test", name or f"User {n}", PASSWORD,
                                    is_office=office, organisation=organisation)
        if role and code is not None:
            accounts.grant_role(user, code, Role[role], group)
        return user

    return factory


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_META.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def sign_in(client: FlaskClient) -> Callable[[User], FlaskClient]:
    def do(user: User) -> FlaskClient:
        db.session.commit()
        response = login(client, user.email)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return do



# `make test` runs the suite on two workers (pytest-xdist). Tests that share one thing of the
# machine must not run at once: the scale-out tests share the machine's Redis, and some of them
# stop and restart it. So they are one unit of work, given to one worker; every other test is a
# unit of its own. The largest unit goes out first (xdist's default for scoped scheduling), so
# this one starts at once rather than ending the run. (xdist's own xdist_group marker is not used:
# it renames node ids, which pytest 9.2 no longer lets a plugin do.)
MACHINE_REDIS_TESTS = "tests/scaleout/"


class MachineServicesScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return MACHINE_REDIS_TESTS if nodeid.startswith(MACHINE_REDIS_TESTS) else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> MachineServicesScheduling:
    return MachineServicesScheduling(config, log)
