"""A code with a published draft, an open feedback round and people of every role."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Code
from codedraft.drafts.models import Draft
from codedraft.drafts.operations import publish_draft
from codedraft.extensions import db
from codedraft.feedback import install
from codedraft.feedback import operations as ops
from codedraft.feedback.models import FeedbackRound
from codedraft.timeutil import utcnow
from tests.conftest import csrf_token, login

CLAUSE_TEXT = "Signatories shall publish a summary 📄 of the training data. They shall keep it up to date."


@dataclass
class Scene:
    app: Flask
    code: Code
    clause: Clause
    draft: Draft
    round: FeedbackRound
    people: dict[str, User]

    def client(self, who: str) -> FlaskClient:
        """A signed-in test client of its own for ``who``."""
        client = self.app.test_client()
        db.session.commit()
        response = login(client, self.people[who].email)
        assert response.status_code == 302
        return client

    @property
    def feedback_url(self) -> str:
        return f"/codes/{self.code.slug}/clauses/{self.clause.uid}/feedback"

    def thread_url(self, comment_id: int) -> str:
        return f"{self.feedback_url}/{comment_id}"

    def post(self, client: FlaskClient, path: str, **data: str) -> object:
        token = csrf_token(client, self.feedback_url)
        return client.post(path, data={"csrf_token": token, **data})


@pytest.fixture
def scene(app: Flask, make_code: Callable[..., Code], make_user: Callable[..., User]) -> Scene:
    install(app)
    code = make_code("Feedback Code")
    group = codes.add_working_group(code, "Transparency WG")
    chapter = codes.add_chapter(code, "Transparency", working_group=group)
    clause = codes.add_clause(chapter, kind="measure", number="1.1", title="Training data summary", body=CLAUSE_TEXT)
    draft = publish_draft(code, "First Draft")
    feedback_round = ops.open_round(code, draft, utcnow() + timedelta(days=7), name="Round 1")
    people = {
        "reviewer": make_user("reviewer", code, name="Rita Reviewer", category="civil-society"),
        "second_reviewer": make_user("reviewer", code, name="Sam Second", category="academia"),
        "individual": make_user("reviewer", code, name="Ivy Individual"),
        "chair": make_user("chair", code, name="Chris Chair", group=group),
        "observer": make_user("observer", code, name="Olga Observer"),
        "office": make_user(office=True, name="Office Person"),
    }
    other = make_code("Other Code")
    people["outsider"] = make_user("chair", other, name="Otto Outsider", category="industry")
    db.session.commit()
    return Scene(app, code, clause, draft, feedback_round, people)
