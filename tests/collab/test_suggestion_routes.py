"""The suggestion routes: the list, the accept preview, and deciding (per id and in bulk) through
the live text; and what they refuse: another code's clause or suggestion ids, a reviewer
accepting, a request without the CSRF token, malformed ids (a clear 4xx, never a 500). And the
list as the clause page carries it, for the editor's first paint."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Code
from codedraft.collab.core import SuggestText
from codedraft.collab.store import store_for
from codedraft.extensions import db
from tests.conftest import csrf_token, login

SEED = "Signatories shall publish a summary of the training data."
SUGGESTION_DATA = re.compile(r'<script type="application/json" id="suggestion-data">(.*?)</script>', re.S)


@dataclass
class Setting:
    app: Flask
    code: Code
    clause: Clause
    other_clause: Clause
    other_code: Code
    people: dict[str, User]

    def url(self, clause: Clause | None = None, code: Code | None = None, tail: str = "") -> str:
        clause, code = clause or self.clause, code or self.code
        return f"/codes/{code.slug}/clauses/{clause.uid}/suggestions{tail}"

    def client(self, who: str) -> FlaskClient:
        client = self.app.test_client()
        db.session.commit()
        assert login(client, self.people[who].email).status_code == 302
        return client

    def decide(self, client: FlaskClient, clause: Clause | None = None, code: Code | None = None,
               token: bool = True, **fields: object):
        data = dict(fields)
        if token:
            data["csrf_token"] = csrf_token(client, "/")
        return client.post(self.url(clause, code, "/decide"), data=data)

    def suggest(self, who: str, new_text: str, suggestion_id: str, clause: Clause | None = None,
                by: int | None = None) -> None:
        """A suggestion as the editor (or an amendment) makes it, stored through the live text;
        ``by`` marks it as another account's (a writer's browser may write any mark)."""
        clause = db.session.merge(clause or self.clause)
        change = SuggestText(new_text, by=self.people[who].id if by is None else by, id=suggestion_id)
        store_for(self.app).edit_live_text(clause, lambda _doc: change, user_id=self.people[who].id,
                                           origin="suggestion")
        db.session.commit()

    def body(self, clause: Clause | None = None) -> str:
        db.session.expire_all()
        return db.session.get(Clause, (clause or self.clause).id).body

    def page_list(self, client: FlaskClient) -> dict[str, object]:
        """The pending suggestions as the clause page carries them."""
        page = client.get(f"/codes/{self.code.slug}/clauses/{self.clause.uid}").get_data(as_text=True)
        found = SUGGESTION_DATA.search(page)
        assert found is not None, "the clause page carries no suggestion list"
        return json.loads(found.group(1))

    def live(self) -> str:
        return store_for(self.app).open(db.session.get(Clause, self.clause.id)).doc.raw_text


@pytest.fixture
def setting(app: Flask, make_code: Callable[..., Code], make_user: Callable[..., User]) -> Setting:
    code = make_code("Suggestion Routes")
    clause = codes.add_clause(codes.add_chapter(code, "Chapter"), kind="commitment", number="1",
                              title="Summary", body=SEED)
    other = make_code("Other Code")
    other_clause = codes.add_clause(codes.add_chapter(other, "Elsewhere"), kind="section", title="Secret",
                                    body=SEED)
    people = {"chair": make_user("chair", code, name="Chloe Chair"),
              "reviewer": make_user("reviewer", code, name="Rita Reviewer"),
              "second_reviewer": make_user("reviewer", code, name="Sam Second"),
              "observer": make_user("observer", code, name="Olga Observer"),
              "outsider": make_user("chair", other, name="Otto Outsider")}
    db.session.commit()
    return Setting(app, code, clause, other_clause, other, people)


def test_the_list_names_authors_from_their_accounts(setting):
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    listed = setting.client("reviewer").get(setting.url()).json
    assert listed["may_decide"] is False and listed["may_suggest"] is True
    [item] = listed["suggestions"]
    assert (item["id"], item["author"], item["kind"], item["inserted"], item["mine"]) == (
        "r1", "Rita Reviewer", "insert", "detailed ", True)
    assert setting.client("chair").get(setting.url()).json["may_decide"] is True
    assert setting.body() == SEED  # pending: not in the stored text


def test_the_clause_page_carries_the_list_for_the_first_paint(setting):
    """The editor names the authors of pending suggestions before any request: the page carries
    the list exactly as the route answers the same person (their own ``mine``, ``may_decide``)."""
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    for who in ("chair", "reviewer", "observer"):
        client = setting.client(who)
        carried = setting.page_list(client)
        assert carried == client.get(setting.url()).json, who
        assert [item["author"] for item in carried["suggestions"]] == ["Rita Reviewer"]
    # Someone who may not see the clause gets neither the page nor the list.
    outsider = setting.client("outsider")
    assert outsider.get(f"/codes/{setting.code.slug}/clauses/{setting.clause.uid}").status_code == 404


def test_the_carried_list_is_data_however_authors_are_named(setting, make_user):
    code = db.session.merge(setting.code)
    hostile = make_user("reviewer", code, name="Eve </script><script>alert(1)</script> & 'co'")
    db.session.commit()
    setting.people["hostile"] = hostile
    setting.suggest("hostile", SEED.replace("a summary", "a detailed summary"), "e1")
    chair = setting.client("chair")
    page = chair.get(f"/codes/{setting.code.slug}/clauses/{setting.clause.uid}").get_data(as_text=True)
    assert "<script>alert(1)" not in page
    [item] = setting.page_list(chair)["suggestions"]
    assert item["author"] == "Eve </script><script>alert(1)</script> & 'co'"


def test_a_mark_naming_no_account_is_someones(setting):
    """Only a writer's browser can mark text as an account's that does not exist: the list says
    "Someone" (in the reader's language), in a neutral grey."""
    setting.suggest("chair", SEED.replace("a summary", "a short summary"), "x1", by=999_999)
    chair = setting.client("chair")
    [item] = chair.get(setting.url()).json["suggestions"]
    assert (item["by"], item["author"], item["color"]) == (999_999, "Someone", "#767676")
    chair.post("/language", data={"lang": "pl", "next": "/", "csrf_token": csrf_token(chair, "/")})
    assert chair.get(setting.url()).json["suggestions"][0]["author"] == "Ktoś"


def test_a_chair_previews_then_accepts_one_and_rejects_another(setting):
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    setting.suggest("second_reviewer", SEED.replace(" of the training data", ""), "s1")
    chair = setting.client("chair")
    preview = chair.get(setting.url(tail="/preview?accept=r1")).json
    assert preview["ok"] and preview["before"] == SEED
    assert preview["after"] == "Signatories shall publish a detailed summary of the training data."
    assert "detailed" in preview["diff_html"]
    assert setting.body() == SEED  # a preview writes nothing
    answer = setting.decide(chair, accept="r1", reject="s1")
    assert answer.status_code == 200 and answer.json["changed"] is True
    assert answer.json["suggestions"] == []
    expected = "Signatories shall publish a detailed summary of the training data."
    assert setting.body() == expected
    assert setting.live() == expected


@pytest.mark.parametrize("every", ["accept", "reject"])
def test_bulk_decisions(setting, every):
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    setting.suggest("second_reviewer", SEED.replace("shall publish", "publish"), "s1")
    answer = setting.decide(setting.client("chair"), all=every)
    assert answer.status_code == 200 and answer.json["suggestions"] == []
    expected = "Signatories publish a detailed summary of the training data." if every == "accept" else SEED
    assert setting.body() == setting.live() == expected


def test_a_reviewer_may_withdraw_their_own_but_not_accept_nor_reject_anothers(setting):
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    setting.suggest("second_reviewer", SEED.replace("shall publish", "publish"), "s1")
    reviewer = setting.client("reviewer")
    assert setting.decide(reviewer, accept="r1").status_code == 403
    assert setting.decide(reviewer, reject="s1").status_code == 403
    assert setting.decide(reviewer, all="accept").status_code == 403
    assert setting.client("reviewer").get(setting.url(tail="/preview?accept=r1")).status_code == 403
    assert setting.decide(setting.client("observer"), reject="r1").status_code == 403
    assert {s["id"] for s in setting.client("chair").get(setting.url()).json["suggestions"]} == {"s1", "r1"}
    answer = setting.decide(reviewer, reject="r1")
    assert answer.status_code == 200
    assert [s["id"] for s in answer.json["suggestions"]] == ["s1"]
    assert setting.body() == SEED


def test_another_codes_clause_and_ids_are_refused(setting):
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    outsider = setting.client("outsider")
    # Their own clause, naming our suggestion: no such suggestion there.
    answer = setting.decide(outsider, clause=setting.other_clause, code=setting.other_code, accept="r1")
    assert answer.status_code == 404
    # Our clause: they may not see it at all; nor may a mismatched slug and clause be used.
    assert setting.decide(outsider, accept="r1").status_code == 404
    assert outsider.get(setting.url()).status_code == 404
    chair = setting.client("chair")
    assert setting.decide(chair, clause=setting.other_clause, accept="r1").status_code == 404
    assert setting.body() == SEED
    assert setting.body(setting.other_clause) == SEED


def test_a_decision_without_the_csrf_token_is_refused(setting):
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    answer = setting.decide(setting.client("chair"), token=False, accept="r1")
    assert answer.status_code == 403  # the app's answer to a missing or wrong CSRF token
    assert setting.body() == SEED


@pytest.mark.parametrize("fields", [
    {"accept": "../../etc"},
    {"accept": "x" * 65},
    {"accept": ""},
    {"accept": "r1 r2"},
    {"all": "everything"},
    {"all": "accept", "accept": "r1"},
    {},
    {"accept": "r1", "reject": "r1"},
])
def test_malformed_requests_get_a_clear_400(setting, fields):
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    answer = setting.decide(setting.client("chair"), **fields)
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert setting.body() == SEED


def test_unknown_ids_get_404(setting):
    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary"), "r1")
    chair = setting.client("chair")
    assert setting.decide(chair, accept="nope").status_code == 404
    assert chair.get(setting.url(tail="/preview?accept=nope")).status_code == 404
    assert setting.body() == SEED


def test_pending_suggestions_stay_out_of_drafts_and_history(setting):
    """A draft published (and so every export of it) while a suggestion is pending holds the
    accepted text; so does the clause's history."""
    from sqlalchemy import select

    from codedraft.collab import history
    from codedraft.collab.models import ClauseUpdate
    from codedraft.drafts.models import DraftClause
    from codedraft.drafts.operations import publish_draft

    setting.suggest("reviewer", SEED.replace("a summary", "a detailed summary").replace(" of the training data", ""),
                    "r1")
    assert "detailed" in setting.live()
    draft = publish_draft(db.session.merge(setting.code), "With a suggestion pending")
    db.session.commit()
    body = db.session.scalar(select(DraftClause.body).where(DraftClause.draft_id == draft.id,
                                                            DraftClause.clause_uid == setting.clause.uid))
    assert body == SEED
    log = [history.LoggedUpdate(row.id, row.user_id, row.created_at, row.origin, row.update)
           for row in db.session.scalars(select(ClauseUpdate).where(ClauseUpdate.clause_id == setting.clause.id)
                                         .order_by(ClauseUpdate.id))]
    assert history.text_as_of(log, log[-1].id) == SEED
    assert [text for _logged, text in history.texts_after_each(log)][-1] == SEED


def test_the_suggestion_controls_speak_polish(setting):
    reviewer = setting.client("reviewer")
    reviewer.post("/language", data={"lang": "pl", "next": "/", "csrf_token": csrf_token(reviewer, "/")})
    page = reviewer.get(f"/codes/{setting.code.slug}/clauses/{setting.clause.uid}").get_data(as_text=True)
    assert 'lang="pl"' in page
    assert "Proponowanie" in page and "Propozycje zmian" in page  # the mode switch and the list
    assert 'data-suggest-only="true"' in page
    assert "Przyjmij wszystkie" in page and "Propozycja wstawienia: %(name)s" in page  # the scripts' words


def test_marks_naming_out_of_range_or_thousands_of_authors_list_without_failing(setting):
    """A writer's browser may put any number in a mark. A number no account can have names
    nobody (it used to reach the database, which cannot bind it: a 500), and a text naming more
    authors than one query may bind is looked up in slices."""
    from pycrdt import Doc, Text

    from codedraft.collab.core import SUGGEST_INSERT, sync_update_message

    store = store_for(setting.app)
    opened = store.open(db.session.get(Clause, setting.clause.id))
    peer: Doc[Text] = Doc()
    body = peer.get("body", type=Text)
    peer.apply_update(opened.doc.encode_state())
    before = peer.get_state()
    reviewer = setting.people["reviewer"].id
    named = [reviewer, 2**31, 2**40, 1e300, float("inf"), float("nan"), -3] + list(range(10_000, 10_700))
    with peer.transaction():
        for index, by in enumerate(named):
            body.insert(0, "x", {SUGGEST_INSERT: {"id": f"m{index}", "by": by}})
    store.receive(opened, sync_update_message(peer.get_update(before)), user_id=setting.people["chair"].id,
                  may_write=True)
    chair = setting.client("chair")
    answer = chair.get(setting.url())
    assert answer.status_code == 200
    authors = {item["by"]: item["author"] for item in answer.json["suggestions"]}
    assert authors[reviewer] == setting.people["reviewer"].name
    assert authors[10_699] == "Someone"
    assert all(0 <= by <= 2**31 - 1 for by in authors), "a number no account can have names nobody"
    page = chair.get(f"/codes/{setting.code.slug}/clauses/{setting.clause.uid}")
    assert page.status_code == 200
