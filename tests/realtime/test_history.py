"""History of a clause: sessions, replay, blame, checkpoints and restore (pure functions, pages,
and a restore while someone is typing over a real socket)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from pycrdt import Doc, Text
from sqlalchemy import select

from codedraft.codes import operations as codes
from codedraft.codes.models import Clause
from codedraft.collab import history, install
from codedraft.collab.history import LoggedUpdate
from codedraft.collab.history_access import PARTICIPANTS, set_history_audience
from codedraft.collab.models import Checkpoint, ClauseUpdate
from codedraft.collab.offsets import codepoint_to_utf8
from codedraft.collab.store import store_for
from codedraft.extensions import db
from tests.conftest import CSRF_META, csrf_token
from tests.realtime.conftest import stored_text
from tests.support.editing import set_live_text
from tests.support.live import wait_for

T0 = datetime(2026, 1, 5, 10, 0, 0)


class Typist:
    """A Yjs replica producing real updates, as a browser would."""

    def __init__(self) -> None:
        self.doc: Doc[Text] = Doc()
        self.body = self.doc.get("body", type=Text)

    def apply(self, update: bytes) -> None:
        self.doc.apply_update(update)

    def insert(self, position: int, value: str) -> bytes:
        before = self.doc.get_state()
        self.body.insert(codepoint_to_utf8(str(self.body), position), value)
        return self.doc.get_update(before)

    def delete(self, position: int, length: int) -> bytes:
        before = self.doc.get_state()
        text = str(self.body)
        del self.body[codepoint_to_utf8(text, position):codepoint_to_utf8(text, position + length)]
        return self.doc.get_update(before)


def logged(number: int, user: int | None, update: bytes, seconds: float = 0, origin: str = "editor") -> LoggedUpdate:
    return LoggedUpdate(id=number, user_id=user, created_at=T0 + timedelta(seconds=seconds), origin=origin,
                        update=update)


def two_author_log() -> list[LoggedUpdate]:
    """Alice writes, Bob inserts an emoji phrase in the middle, Alice deletes a word."""
    alice, bob = Typist(), Typist()
    first = alice.insert(0, "The signatories commit.")
    bob.apply(first)
    second = bob.insert(len("The signatories"), " 👩‍👩‍👧 gladly")
    alice.apply(second)
    third = alice.delete(0, len("The "))
    return [logged(1, 10, first, 0), logged(2, 20, second, 5), logged(3, 10, third, 200)]


# --- pure functions ---------------------------------------------------------------------------


def test_sessions_group_one_author_within_a_minute():
    updates = [logged(1, 1, b"", 0), logged(2, 1, b"", 30), logged(3, 1, b"", 85),  # 55 s apart: same
               logged(4, 1, b"", 200),  # gap: new session
               logged(5, 2, b"", 201),  # other author
               logged(6, 2, b"", 202, origin="restore")]  # other origin
    sessions = history.group_sessions(updates)
    assert [(s.user_id, s.first_id, s.last_id, s.update_count) for s in sessions] == [
        (1, 1, 3, 3), (1, 4, 4, 1), (2, 5, 5, 1), (2, 6, 6, 1)]
    assert sessions[0].ended_at - sessions[0].started_at == timedelta(seconds=85)
    with pytest.raises(ValueError):
        history.group_sessions(updates, gap=timedelta(seconds=-1))


def test_paginate_clamps_and_counts_pages():
    items = history.group_sessions([logged(i, i, b"", i) for i in range(1, 8)])
    page, pages = history.paginate(items, 3, 3)
    assert pages == 3 and [s.first_id for s in page] == [7]
    assert history.paginate(items, 99, 3)[0] == page
    assert history.paginate([], 1, 3) == ([], 1)
    with pytest.raises(ValueError):
        history.paginate(items, 1, 0)


def test_restore_onto_live_text_keeps_concurrent_words():
    seen = "Signatories share data 🌍 openly with everyone."
    target = "Signatories share data."
    assert history.restore_onto(seen, target, seen) == (target, True)
    live = "Intro. Signatories share data 🌍 openly with everyone. And more."
    assert history.restore_onto(seen, target, live) == ("Intro. Signatories share data. And more.", True)


def test_text_as_of_each_update():
    log = two_author_log()
    assert history.text_as_of(log, 1) == "The signatories commit."
    assert history.text_as_of(log, 2) == "The signatories 👩‍👩‍👧 gladly commit."
    assert history.text_as_of(log, 3) == "signatories 👩‍👩‍👧 gladly commit."
    assert [text for _, text in history.texts_after_each(log)] == [
        history.text_as_of(log, n) for n in (1, 2, 3)]


def test_blame_credits_each_passage_to_whoever_inserted_it():
    passages = history.attribute_text(two_author_log())
    assert "".join(p.text for p in passages) == "signatories 👩‍👩‍👧 gladly commit."
    # Which of two equal spaces Bob gets credit for is the diff's choice; the words are not.
    assert [(p.text.strip(), p.user_id, p.update_id) for p in passages] == [
        ("signatories", 10, 1), ("👩‍👩‍👧 gladly", 20, 2), ("commit.", 10, 1)]
    assert len(passages[1].text) == len(" 👩‍👩‍👧 gladly")
    assert history.attribute_text([]) == []


# --- pages ------------------------------------------------------------------------------------


@pytest.fixture
def edited(app, make_code, make_user):
    """A clause edited by a chair, then a member (through the live store), then the chair again."""
    install(app)
    install(app)  # idempotent: one panel
    code = make_code("History Code")
    clause = codes.add_clause(codes.add_chapter(code, "Chapter"), kind="commitment", number="1",
                              title="Sharing", body="Signatories share.")
    people = {role: make_user(role, code, name=f"{role.title()} Person")
              for role in ("chair", "member", "reviewer", "observer")}
    people["outsider"] = make_user("chair", make_code("Elsewhere"), name="Outsider")
    db.session.commit()
    store = store_for(app)
    set_live_text(store, clause, "Signatories share data.", user_id=people["chair"].id, origin="editor")
    set_live_text(store, clause, "Signatories share data 🌍 openly.", user_id=people["member"].id, origin="editor")
    set_live_text(store, clause, "All signatories share data 🌍 openly.", user_id=people["chair"].id,
                       origin="editor")
    db.session.expire_all()
    return code, clause, people


def _url(code, clause, tail=""):
    return f"/codes/{code.slug}/clauses/{clause.uid}/history{tail}"


def _ids(clause):
    return list(db.session.scalars(select(ClauseUpdate.id).where(ClauseUpdate.clause_id == clause.id)
                                   .order_by(ClauseUpdate.id)))


def test_clause_page_has_the_editor_panel_contract(app, client, sign_in, edited):
    code, clause, people = edited
    sign_in(people["reviewer"])
    page = client.get(f"/codes/{code.slug}/clauses/{clause.uid}").get_data(as_text=True)
    assert page.count('id="clause-editor"') == 1
    tag = re.search(r'<div id="clause-editor"[^>]*>', page, re.S).group(0)
    assert f'data-clause-uid="{clause.uid}"' in tag and 'data-readonly="true"' in tag
    assert 'data-user-name="Reviewer Person"' in tag and re.search(r'data-user-color="#[0-9a-f]{6}"', tag)
    assert 'data-preview-url="/preview"' in tag
    for element in ('id="clause-preview"', 'id="collab-status"', 'id="presence-list"',
                    'src="/static/dist/editor.js"', 'href="/static/css/editor.css"', 'class="js-only"'):
        assert element in page, element
    assert "<script defer" in page and "<script>" not in page
    assert "All signatories share data 🌍 openly." in page


def test_editors_get_a_writable_panel(app, client, sign_in, edited):
    code, clause, people = edited
    sign_in(people["chair"])
    page = client.get(f"/codes/{code.slug}/clauses/{clause.uid}").get_data(as_text=True)
    assert 'data-readonly="false"' in page


def open_history_to_participants(code, make_user):
    """The code's admin lets every participant see the live history."""
    office = make_user(office=True, name="Office Admin")
    set_history_audience(code, PARTICIPANTS, office)
    db.session.commit()


def test_history_lists_sessions_with_who_and_when(app, client, sign_in, edited, make_user):
    code, clause, people = edited
    open_history_to_participants(code, make_user)
    sign_in(people["observer"])
    response = client.get(_url(code, clause))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    rows = re.findall(r'<li class="history-session".*?</li>', page, re.S)
    # One session per person and pause, newest first: the chair's two edits (the member's in
    # between does not cut them), the member's, and the imported seed.
    assert len(rows) == 3
    assert "Chair Person" in rows[0] and "Member Person" in rows[1] and "Imported text" in rows[2]
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT', rows[0])
    # Each session shows what that person did, not what the other did meanwhile.
    chair_inserted = "".join(re.findall(r'<ins class="redline-ins">(.*?)</ins>', rows[0]))
    assert "All" in chair_inserted and "data" in chair_inserted and "🌍" not in chair_inserted
    assert "🌍 openly" in rows[0]  # the member's words are there, as plain text
    member = rows[1]
    assert re.search(r'<ins class="redline-ins"><span class="visually-hidden">\[inserted: </span> 🌍 openly', member)
    assert "<del" not in member
    assert "Save checkpoint" not in page  # observers may not name checkpoints


def test_history_of_a_hidden_clause_is_404(app, client, sign_in, edited):
    code, clause, people = edited
    sign_in(people["outsider"])
    for tail in ("", "/replay", "/blame"):
        assert client.get(_url(code, clause, tail)).status_code == 404
    token = csrf_token(client, "/")
    assert client.post(_url(code, clause, "/restore"), data={"csrf_token": token, "at": 1}).status_code == 404


def test_replay_shows_the_text_as_of_an_update(app, client, sign_in, edited, make_user):
    code, clause, people = edited
    open_history_to_participants(code, make_user)
    ids = _ids(clause)
    sign_in(people["reviewer"])
    page = client.get(_url(code, clause, f"/replay?at={ids[1]}")).get_data(as_text=True)
    assert 'id="replay-plain">Signatories share data.</pre>' in page
    assert "Step 2 of 4" in page and "Chair Person" in page
    assert 'type="range"' in page and 'name="step"' in page
    page = client.get(_url(code, clause, "/replay?step=3")).get_data(as_text=True)
    assert 'id="replay-plain">Signatories share data 🌍 openly.</pre>' in page
    latest = client.get(_url(code, clause, "/replay")).get_data(as_text=True)
    assert "All signatories share data 🌍 openly." in latest and "Step 4 of 4" in latest
    assert "Restore this version" not in page  # a reviewer may not restore
    assert client.get(_url(code, clause, f"/replay?at={ids[0] - 1}")).status_code == 404


def test_blame_names_the_author_of_each_passage(app, client, sign_in, edited, make_user):
    code, clause, people = edited
    open_history_to_participants(code, make_user)
    sign_in(people["reviewer"])
    page = client.get(_url(code, clause, "/blame")).get_data(as_text=True)
    passages = re.findall(r'<span class="blame-passage ([^"]+)" data-update-id="(\d+)" title="([^"]*)">'
                          r'<span class="blame-marker">\[(\d)\]</span><span class="visually-hidden"> ([^<]*): </span>'
                          r'([^<]*)</span>', page)
    text = "".join(p[5] for p in passages)
    assert text == "All signatories share data 🌍 openly."
    by_author: dict[str, list[str]] = {}
    for passage in passages:
        by_author.setdefault(passage[4], []).append(passage[5])
        assert passage[2].startswith(passage[4])  # the title names the author too
    assert by_author["Chair Person"][0].startswith("All ") and " data" in "".join(by_author["Chair Person"])
    assert "ignatories share" in "".join(by_author["Imported text"])
    assert "🌍 openly" in "".join(by_author["Member Person"])
    # The legend pairs each number with a name (not colour alone).
    assert re.search(r'\[\d\]</span> Member Person', page)


def test_checkpoint_needs_edit_rights_and_is_listed(app, client, sign_in, edited):
    code, clause, people = edited
    sign_in(people["reviewer"])
    token = csrf_token(client, _url(code, clause))
    assert client.post(_url(code, clause, "/checkpoints"), data={"csrf_token": token, "name": "x"}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    sign_in(people["member"])
    token = csrf_token(client, _url(code, clause))
    assert client.post(_url(code, clause, "/checkpoints"), data={"name": "x"}).status_code == 403  # no CSRF token
    response = client.post(_url(code, clause, "/checkpoints"), data={"csrf_token": token, "name": "Before WG2"})
    assert response.status_code == 302
    checkpoint = db.session.scalar(select(Checkpoint).where(Checkpoint.clause_id == clause.id))
    assert checkpoint.name == "Before WG2" and checkpoint.text == "All signatories share data 🌍 openly."
    assert checkpoint.upto_update_id == _ids(clause)[-1]
    assert "Before WG2" in client.get(_url(code, clause)).get_data(as_text=True)
    blank = client.post(_url(code, clause, "/checkpoints"), data={"csrf_token": token, "name": "  "})
    assert blank.status_code == 302
    assert db.session.scalar(select(db.func.count()).select_from(Checkpoint)) == 1


def test_restore_is_a_minimal_edit_by_the_restorer(app, client, sign_in, edited):
    code, clause, people = edited
    ids = _ids(clause)
    sign_in(people["reviewer"])
    token = csrf_token(client, _url(code, clause))
    assert client.post(_url(code, clause, "/restore"), data={"csrf_token": token, "at": ids[1]}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    sign_in(people["chair"])
    token = csrf_token(client, _url(code, clause))
    response = client.post(_url(code, clause, "/restore"), data={"csrf_token": token, "at": ids[1]})
    assert response.status_code == 302
    assert stored_text(app, clause.id) == "Signatories share data."
    db.session.expire_all()
    assert db.session.get(Clause, clause.id).body == "Signatories share data."
    last = db.session.scalars(select(ClauseUpdate).where(ClauseUpdate.clause_id == clause.id)
                              .order_by(ClauseUpdate.id.desc())).first()
    assert (last.origin, last.user_id) == ("restore", people["chair"].id)
    # Restoring a checkpoint: name the current text, change it, restore by checkpoint id.
    client.post(_url(code, clause, "/checkpoints"), data={"csrf_token": token, "name": "Short"})
    set_live_text(store_for(app), clause, "Changed.", user_id=people["chair"].id, origin="editor")
    checkpoint = db.session.scalar(select(Checkpoint))
    client.post(_url(code, clause, "/restore"), data={"csrf_token": token, "checkpoint": checkpoint.id})
    assert stored_text(app, clause.id) == "Signatories share data."
    # Restoring the text it already has changes nothing.
    count = len(_ids(clause))
    client.post(_url(code, clause, "/restore"), data={"csrf_token": token, "checkpoint": checkpoint.id})
    assert len(_ids(clause)) == count
    assert client.post(_url(code, clause, "/restore"), data={"csrf_token": token}).status_code == 400


def test_restore_while_someone_types_keeps_both(app, stage):
    """A chair restores an old version over HTTP while a member types at the end over a socket."""
    install(app)
    typist = stage.editor("member")
    typist.insert(len(typist.value()), " First addition.")
    wait_for(lambda: stored_text(app, stage.clause.id) == "Seed text. First addition.", message="first edit stored")
    ids = _ids(stage.clause)
    typist.insert(0, "Intro. ")  # before the restore point's passage, will be undone by the restore
    wait_for(lambda: stored_text(app, stage.clause.id).startswith("Intro. "), message="intro stored")

    from tests.support.live import http_sign_in

    chair = http_sign_in(stage.base, stage.people["chair"].email, "correct horse battery")
    history_url = f"{stage.base}/codes/{stage.code.slug}/clauses/{stage.clause.uid}/history"
    token = CSRF_META.search(chair.get(history_url, timeout=10).text).group(1)
    stop = []
    typed = []

    def keep_typing():
        for word in ("one", "two", "three", "four", "five"):
            if stop:
                break
            typist.insert(len(typist.value()), f" {word}")
            typed.append(word)

    import threading

    # The chair looked at the text with "Intro. " and nothing typed after it: noted before the
    # typing starts. Noted after, on a busy machine it once included " one", which the restore
    # then rightly undid as part of what the chair had seen.
    seen = _ids(stage.clause)[-1]
    worker = threading.Thread(target=keep_typing)
    worker.start()
    response = chair.post(f"{history_url}/restore", data={"csrf_token": token, "at": ids[-1], "seen": seen},
                          timeout=30,
                          allow_redirects=False)
    worker.join(10)
    assert response.status_code == 302
    # The restore removed "Intro. " and every word the typist added survives, before or after it.
    expected_tail = "".join(f" {w}" for w in typed)
    wait_for(lambda: typist.value() == "Seed text. First addition." + expected_tail, timeout=10,
             message=f"typist sees restore and keeps words (has {typist.value()!r})")
    wait_for(lambda: len(typist.acks) >= 2 + len(typed) and all(a["ok"] for a in typist.acks), message="acks")
    wait_for(lambda: stored_text(app, stage.clause.id) == typist.value(), message="stored equals typist")


def test_live_history_is_for_the_drafting_team_by_default(app, client, sign_in, edited, make_user):
    code, clause, people = edited
    for who in ("reviewer", "observer"):
        sign_in(people[who])
        for tail in ("", "/replay", "/blame"):
            assert client.get(_url(code, clause, tail)).status_code == 403, (who, tail)
        page = client.get(f"/codes/{code.slug}/clauses/{clause.uid}").get_data(as_text=True)
        assert "History of this clause" not in page
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in(people["member"])
    for tail in ("", "/replay", "/blame"):
        assert client.get(_url(code, clause, tail)).status_code == 200
    # A member may not open it to everyone; the code's admin may.
    token = csrf_token(client, _url(code, clause))
    refused = client.post(f"/codes/{code.slug}/history-access",
                          data={"csrf_token": token, "audience": "participants", "clause": clause.uid})
    assert refused.status_code == 403
    client.post("/logout", data={"csrf_token": token})
    office = make_user(office=True, name="Office Admin")
    db.session.commit()
    sign_in(office)
    token = csrf_token(client, _url(code, clause))
    bad = client.post(f"/codes/{code.slug}/history-access",
                      data={"csrf_token": token, "audience": "everyone!", "clause": clause.uid}, follow_redirects=True)
    assert bad.status_code == 200 and "Choose the drafting team or every participant." in bad.get_data(as_text=True)
    client.post(f"/codes/{code.slug}/history-access",
                data={"csrf_token": token, "audience": "participants", "clause": clause.uid})
    client.post("/logout", data={"csrf_token": token})
    sign_in(people["reviewer"])
    assert client.get(_url(code, clause, "/blame")).status_code == 200


def test_two_people_typing_together_make_two_sessions_each_with_its_diff():
    alice, bob = Typist(), Typist()
    log = []
    first = alice.insert(0, "Signatories commit.")
    bob.apply(first)
    log.append(logged(1, 10, first, 0))
    # They type word by word in turn, a second apart: 40 alternating updates.
    for n in range(20):
        a = alice.insert(len("Signatories"), f" a{n}")
        bob.apply(a)
        b = bob.insert(len(str(bob.body)), f" b{n}")
        alice.apply(b)
        log += [logged(2 + 2 * n, 10, a, 1 + n), logged(3 + 2 * n, 20, b, 1.5 + n)]
    sessions = history.group_sessions_by_person(log)
    assert [(s.user_id, s.update_count) for s in sessions] == [(10, 21), (20, 20)]
    diffs = history.session_diffs(log, sessions)
    bob_diff = diffs[sessions[1].first_id]
    bob_inserted = "".join(seg.text for seg in bob_diff if seg.op.value == "insert")
    assert bob_inserted.split() == [f"b{n}" for n in range(20)]
    assert "a3" not in bob_inserted and all(seg.op.value != "delete" for seg in bob_diff)
    # Everything Alice typed during Bob's session is there as plain text.
    assert "".join(seg.text for seg in bob_diff) == str(alice.body)
    alice_diff = diffs[sessions[0].first_id]
    assert "b7" not in "".join(seg.text for seg in alice_diff if seg.op.value == "insert")
    # A deletion is shown struck through in the session that made it.
    cut = alice.delete(0, len("Signatories "))
    log.append(logged(99, 10, cut, 200))
    later = history.group_sessions_by_person(log)[-1]
    diff = history.session_diffs(log, [later])[later.first_id]
    assert [(seg.op.value, seg.text) for seg in diff][:1] == [("delete", "Signatories ")]


def test_restore_the_clause_as_in_a_published_draft(app, client, sign_in, edited):
    from codedraft.drafts.operations import publish_draft

    code, clause, people = edited
    publish_draft(code, "First Draft")
    db.session.commit()
    store = store_for(app)
    set_live_text(store, clause, "Rewritten after the draft ✍.", user_id=people["member"].id, origin="editor")
    sign_in(people["chair"])
    page = client.get(_url(code, clause)).get_data(as_text=True)
    assert "Restore the clause as in First Draft" in page
    token = csrf_token(client, _url(code, clause))
    response = client.post(_url(code, clause, "/restore"), data={"csrf_token": token, "draft": 1})
    assert response.status_code == 302
    assert store.open(clause).doc.text == "All signatories share data 🌍 openly."
    assert client.post(_url(code, clause, "/restore"), data={"csrf_token": token, "draft": 7}).status_code == 404


def test_api_history_follows_the_same_setting(app, client, edited, make_user):
    from codedraft.accounts.operations import create_api_token

    code, clause, people = edited
    _, reviewer_token = create_api_token(people["reviewer"], "reader")
    _, member_token = create_api_token(people["member"], "drafter")
    db.session.commit()
    url = f"/api/v1/codes/{code.slug}/clauses/{clause.uid}/history"
    refused = client.get(url, headers={"Authorization": f"Bearer {reviewer_token}"})
    assert refused.status_code == 403 and "drafting team" in refused.get_json()["error"]
    sessions = client.get(url, headers={"Authorization": f"Bearer {member_token}"}).get_json()["sessions"]
    assert [s["author"] for s in sessions] == ["Chair Person", "Member Person", "Imported text"]
    open_history_to_participants(code, make_user)
    assert client.get(url, headers={"Authorization": f"Bearer {reviewer_token}"}).status_code == 200


def test_the_office_sees_the_access_form_once_and_a_plain_title(app, client, sign_in, edited, make_user):
    code, clause, _people = edited
    office = make_user(office=True, name="Office Admin")
    db.session.commit()
    sign_in(office)
    page = client.get(_url(code, clause), headers={"Accept-Language": "pl"}).get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "<" not in title and "form" not in title
    assert page.count('id="access-heading"') == 1
    assert page.index('id="access-heading"') > page.index("<main")
    # Where an edit came from is named in the reader's language, not as the stored code.
    badges = re.findall(r'<span class="origin-badge">(.*?)</span>', page)
    assert badges and "import" not in badges and all(badge == "zaimportowany" for badge in badges)
