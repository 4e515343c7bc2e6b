"""A live server per test, with a code, a clause and people of every role."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Code
from codedraft.extensions import db
from tests.conftest import PASSWORD
from tests.support.live import YClient, http_sign_in, serving


@dataclass
class Stage:
    base: str
    code: Code
    clause: Clause
    other_clause: Clause
    people: dict[str, User]
    clients: list[YClient]

    def client(self, who: str, *, connect: bool = True) -> YClient:
        browser = http_sign_in(self.base, self.people[who].email, PASSWORD)
        client = YClient(self.base, browser)
        self.clients.append(client)
        return client.connect() if connect else client

    def editor(self, who: str = "chair") -> YClient:
        client = self.client(who)
        ack = client.join(self.clause.uid)
        assert ack["ok"], ack
        assert client.synced.wait(5)
        return client


@pytest.fixture
def stage(app, make_code, make_user) -> Iterator[Stage]:
    code = make_code("Live Code")
    chapter = codes.add_chapter(code, "Chapter")
    clause = codes.add_clause(chapter, kind="commitment", number="1", title="Live", body="Seed text.")
    other = make_code("Other Code")
    other_clause = codes.add_clause(codes.add_chapter(other, "Elsewhere"), kind="section", title="Secret",
                                    body="Not for you.")
    people = {role: make_user(role, code, name=role.title()) for role in ("chair", "member", "reviewer", "observer")}
    people["second_chair"] = make_user("chair", code, name="Second Chair")
    people["outsider"] = make_user("chair", other, name="Outsider")
    db.session.commit()
    clients: list[YClient] = []
    with serving(app) as base:
        yield Stage(base, code, clause, other_clause, people, clients)
        for client in clients:
            client.close()


def stored_text(app: Any, clause_id: int) -> str:
    """The clause rebuilt from the durable log alone, as a restarted server would see it."""
    from sqlalchemy import select

    from codedraft.collab.core import ClauseDocument
    from codedraft.collab.models import ClauseSnapshot, ClauseUpdate

    with app.app_context():
        snapshot = db.session.get(ClauseSnapshot, clause_id)
        updates = db.session.scalars(select(ClauseUpdate.update).where(ClauseUpdate.clause_id == clause_id)
                                     .order_by(ClauseUpdate.id)).all()
        if snapshot is None and not updates:
            from codedraft.codes.models import Clause

            text = db.session.get(Clause, clause_id).body  # never opened for editing: still its seed
        else:
            text = ClauseDocument.from_history(snapshot.state if snapshot else None, updates).text
        db.session.remove()
    return text
