"""One test per case of SECURITY-CASES.md, by number: an index that exercises each case once.

The thorough versions live beside the features (grep -rn "test_case_" tests/); each test here
calls the same operation or HTTP path with one representative input and asserts the outcome.
Cases 15 and 16 run real server processes (PostgreSQL + Redis, SQLite) in tests/scaleout.
"""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import socketio

from codedraft.accounts import operations as accounts
from codedraft.codes.models import Role
from codedraft.collab.core import ClauseDocument, ProtocolError, sync_update_message
from codedraft.extensions import db
from codedraft.markdown import render_markdown
from tests.conftest import PASSWORD, csrf_token, login
from tests.realtime.conftest import stage, stored_text  # noqa: F401  (the live-server fixture)
from tests.support.live import CSRF_META, YClient, http_sign_in, wait_for


def _page(response) -> str:
    """A response body without its per-response tokens (CSRF token, CSP nonce)."""
    return re.sub(r'(nonce|content|value)="[^"]*"', "", response.get_data(as_text=True))


# -- real-time and access control -------------------------------------------------------------


def test_case_1_a_socket_without_a_session_is_refused(stage):  # noqa: F811
    anonymous = YClient(stage.base)
    with pytest.raises(socketio.exceptions.ConnectionError):
        anonymous.connect()
    assert anonymous.received == 0


def test_case_2_joining_a_forbidden_clause_is_refused(app, stage):  # noqa: F811
    outsider = stage.client("outsider")
    assert outsider.join(stage.clause.uid) == {"ok": False, "error": "No such clause, or you may not see it."}
    namespace = app.extensions["codedraft_collab_namespace"]
    assert namespace.connections[outsider.sio.get_sid("/collab")].presence == {}


def test_case_3_presence_naming_another_codes_clause_is_refused(app, stage):  # noqa: F811
    editor = stage.editor("chair")
    answer = editor.call("y", {"clause": stage.other_clause.uid, "msg": b"\x01\x01\x00"})
    assert answer["ok"] is False
    assert stored_text(app, stage.other_clause.id) == "Not for you."


def test_case_4_an_observer_update_is_rejected(app, stage):  # noqa: F811
    observer = stage.client("observer")
    assert observer.join(stage.clause.uid)["readonly"] is True
    assert observer.synced.wait(5)
    observer.insert(0, "observer was here ")
    wait_for(lambda: any(not a["ok"] for a in observer.acks), message="rejection")
    assert stored_text(app, stage.clause.id) == "Seed text."


def test_case_5_a_lowered_role_rejects_the_next_update(app, stage):  # noqa: F811
    member = stage.editor("member")
    with app.app_context():
        accounts.grant_role(db.session.merge(stage.people["member"]), db.session.merge(stage.code), Role.reviewer)
        db.session.commit()
    member.insert(0, "late ")
    wait_for(lambda: any(not a["ok"] for a in member.acks), message="rejection")
    assert stored_text(app, stage.clause.id) == "Seed text."


def test_case_6_logout_elsewhere_ends_the_socket(stage):  # noqa: F811
    browser = http_sign_in(stage.base, stage.people["chair"].email, PASSWORD)
    tab = YClient(stage.base, browser).connect()
    stage.clients.append(tab)
    token = CSRF_META.search(browser.get(f"{stage.base}/").text).group(1)  # type: ignore[union-attr]
    browser.post(f"{stage.base}/logout", data={"csrf_token": token}, allow_redirects=False)
    wait_for(lambda: not tab.sio.connected, message="socket closed by logout")


def test_case_7_a_foreign_origin_is_refused(app, stage):  # noqa: F811
    assert app.config.get("SOCKETIO_ALLOWED_ORIGINS") != "*"
    browser = http_sign_in(stage.base, stage.people["chair"].email, PASSWORD)
    with pytest.raises(socketio.exceptions.ConnectionError):
        YClient(stage.base, browser, headers={"Origin": "https://evil.example"}).connect()


def test_case_8_a_truncated_update_is_a_clear_error():
    document = ClauseDocument.from_history(None, [])
    with pytest.raises(ProtocolError) as refused:
        document.receive(b"\x00\x02\x10\x01\x02", may_write=True)
    assert "truncated" in refused.value.reason and document.text == ""


def test_case_9_a_resent_update_is_stored_once():
    source = ClauseDocument.from_history(None, [])
    update = source.apply_text("Once.", origin="editor")
    assert update is not None
    replica = ClauseDocument.from_history(None, [])
    first = replica.receive(sync_update_message(update), may_write=True)
    again = replica.receive(sync_update_message(update), may_write=True)
    assert first.update is not None and again.update is None
    assert replica.text == "Once."


def test_case_10_sigkill_with_unacknowledged_edits_loses_nothing_acknowledged(tmp_path):
    """SQLite server process SIGKILLed while an editor types; it reconnects and resends."""
    from tests.scaleout import cluster as cl
    from tests.scaleout.conftest import make_scene

    uri = f"sqlite:///{tmp_path / 'case10.sqlite3'}"
    app = cl.local_app(uri)
    with app.app_context():
        db.create_all()
        db.session.remove()
    scene = make_scene(app)
    servers = cl.Cluster(uri, tmp_path, None)
    server = servers.add(threads=8)
    typist = cl.Typist(server.base, scene.cookie("chair"), "k")
    try:
        typist.connect()
        assert typist.join(scene.clause.uid)["ok"] and typist.synced.wait(10)
        for _ in range(15):
            typist.type_token(len(typist.typed))
            time.sleep(0.01)
        # The case needs acknowledged edits to check: the first acknowledgement can lag a burst.
        wait_for(lambda: typist.acked, 10, "a first acknowledgement")
        server.kill()
        acknowledged = set(typist.acked)
        stored = cl.stored_state(app, scene.clause.id)[0]
        assert acknowledged and all(stored.count(token) == 1 for token in acknowledged)
        server.start()
        typist.reconnect()
        wait_for(lambda: cl.stored_state(app, scene.clause.id)[0] == typist.value(), 20, "resent edits stored")
        assert all(typist.value().count(token) == 1 for token in typist.typed)
    finally:
        typist.close()
        servers.close()
        with app.app_context():
            db.engine.dispose()


def test_case_11_an_oversized_message_is_rejected_before_parsing():
    document = ClauseDocument.from_history(None, [])
    with pytest.raises(ProtocolError) as refused:
        document.receive(b"\x00\x02" + b"\x00" * 1_500_000, may_write=True)
    assert "exceeds" in refused.value.reason


def test_case_12_a_flooding_socket_is_cut_off(stage):  # noqa: F811
    flooder = stage.editor("chair")
    bystander = stage.editor("member")
    for _ in range(1000):
        if not flooder.sio.connected:
            break
        try:
            flooder.sio.emit("y", {"clause": stage.clause.uid, "msg": b"\x01\x01\x00"}, namespace="/collab")
        except socketio.exceptions.BadNamespaceError:
            break
    wait_for(lambda: not flooder.sio.connected, message="flooder disconnected")
    assert bystander.sio.connected


def test_case_13_unicode_survives_byte_for_byte():
    text = "👨‍👩‍👧‍👦 e\u0301 é\r\n"
    source = ClauseDocument.from_history(None, [])
    update = source.apply_text(text, origin="editor")
    rebuilt = ClauseDocument.from_history(None, [update])  # type: ignore[list-item]
    assert rebuilt.text.encode("utf-8") == text.encode("utf-8")
    edited = rebuilt.apply_text(text.replace("é", "e\u0301"), origin="editor")
    assert edited is not None
    assert rebuilt.text == text.replace("é", "e\u0301")


def test_case_14_seeded_random_peers_converge():
    seed = random.randrange(1_000_000)
    print(f"SECURITY-CASES 14 seed: {seed}")
    rng = random.Random(seed)
    peers = [ClauseDocument.from_history(None, []) for _ in range(3)]
    in_flight: list[tuple[int, bytes]] = []
    for _ in range(60):
        author = rng.randrange(3)
        text = peers[author].text
        at = rng.randint(0, len(text))
        update = peers[author].apply_text(text[:at] + rng.choice(["a", "🙂", "é", " "]) + text[at:], origin="editor")
        if update is not None:
            in_flight.append((author, update))
    rng.shuffle(in_flight)  # reordered delivery
    for author, update in in_flight:
        for index, peer in enumerate(peers):
            if index != author:
                peer.receive(sync_update_message(update), may_write=True)
    for peer in peers:  # held-back updates are released by a final exchange of step 2s
        for other in peers:
            if other is not peer:
                peer.receive(sync_update_message(other.encode_state()), may_write=True)
    assert len({peer.text for peer in peers}) == 1, f"seed {seed}"


def test_case_15_the_socketio_queue_is_json_only(app):
    """The client manager publishes with json (python-socketio >= 5.14), never pickle."""
    import json

    from socketio.pubsub_manager import PubSubManager

    manager = PubSubManager(channel="probe", write_only=True)
    assert manager.json is json
    sent: list[str] = []
    manager._publish = lambda data: sent.append(json.dumps(data))  # what RedisManager does
    manager.emit("y", {"clause": "x", "msg": b"\x00\x02\x00"}, namespace="/collab", room="clause:x")
    decoded = json.loads(sent[0])
    assert decoded["method"] == "emit" and isinstance(decoded["data"], list)


def test_case_16_sqlite_commits_are_full_and_wal(app):
    assert db.session.execute(db.text("PRAGMA synchronous")).scalar() == 2  # FULL
    assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(db.text("PRAGMA integrity_check")).scalar() == "ok"


# -- Markdown and HTML ------------------------------------------------------------------------


def test_case_17_raw_html_is_text():
    html = str(render_markdown('<script>alert(1)</script> <img src=x onerror="alert(1)">'))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_case_18_script_links_are_not_live():
    html = str(render_markdown("[x](JaVaScRiPt&#58;alert(1)) [y](data:text/html,<b>)"))
    assert 'href="javascript' not in html.lower() and 'href="data:' not in html.lower()
    assert "&lt;b&gt;" in html or "<b>" not in html


def test_case_19_heading_ids_are_prefixed():
    html = str(render_markdown("# __proto__"))
    assert 'id="__proto__"' not in html


def test_case_20_deep_nesting_renders_in_bounded_time():
    started = time.monotonic()
    html = str(render_markdown(">" * 100_000 + " deep"))
    assert time.monotonic() - started < 30 and html  # bounded: unbounded nesting took minutes


# -- search -----------------------------------------------------------------------------------


def test_case_21_bad_query_syntax_is_never_a_500(client, make_user, make_code, sign_in):
    code = make_code()
    sign_in(make_user("reviewer", code))
    for query in ("(", '"', "title:", "nofield:x", "a*", "AND OR NOT", "x" * 10_000):
        assert client.get("/search", query_string={"q": query}).status_code == 200, query


def _signed_in(app, user):
    """A client of its own, signed in as ``user`` (several people browse at once)."""
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    return client


def _post_form(client, url: str, **fields):
    """Post a form as the page's script does (CSRF token, fetch header): answered with JSON."""
    return client.post(url, data={**fields, "csrf_token": csrf_token(client, "/")},
                       headers={"X-Requested-With": "fetch"})


def test_case_22_search_never_shows_what_the_viewer_may_not_read(app, make_code, make_clause, make_user):
    """An observer asks for words of a private code's clause and comment, of a comment the Office
    hid and of a withdrawn clause: each answer is the one for a word stored nowhere."""
    app.config["LOGIN_ATTEMPTS_PER_MINUTE"] = 1000
    shared, private = make_code("Shared"), make_code("Private")
    make_clause(shared, body="Sharedword: every member of the code reads this.")
    withdrawn = make_clause(shared, number="2", body="Sharedword tidewhisper, about to be withdrawn.")
    secret = make_clause(private, body="Sharedword zanzibarite, for the private code only.")
    observer, author, office = make_user("observer", shared), make_user("chair", shared), make_user(office=True)
    insider = make_user("chair", private)
    _token, observer_token = accounts.create_api_token(observer, "case 22")
    db.session.commit()
    people = {who: _signed_in(app, user) for who, user in
              (("observer", observer), ("author", author), ("office", office), ("insider", insider))}
    shared_feedback = f"/codes/{shared.slug}/clauses/{withdrawn.uid}/feedback"
    hidden = _post_form(people["author"], shared_feedback, body="Sharedword moonwrack, to be hidden.").json["id"]
    assert _post_form(people["office"], f"{shared_feedback}/{hidden}/hide", reason="Off topic.").json["ok"]
    assert _post_form(people["insider"], f"/codes/{private.slug}/clauses/{secret.uid}/feedback",
                      body="Sharedword quillfeather, a private remark.").json["ok"]

    def api(who_token: str, q: str, **args):
        return app.test_client().get("/api/v1/search", query_string={"q": q, **args},
                                     headers={"Authorization": f"Bearer {who_token}"})

    assert api(observer_token, "tidewhisper").json["total"] == 1  # visible while it is live text
    withdrawn.withdrawn = True
    db.session.commit()

    observer_pages = {
        "api": lambda q: api(observer_token, q),
        "page": lambda q: people["observer"].get("/search", query_string={"q": q}),
        "code page": lambda q: people["observer"].get(f"/codes/{shared.slug}/search", query_string={"q": q}),
    }
    words = ("zanzibarite", "quillfeather", "moonwrack", "tidewhisper")
    for where, ask in observer_pages.items():
        nowhere = _page(ask("nowhereword")).replace("nowhereword", "WORD")
        for word in words:
            answer = ask(word)
            assert answer.status_code == 200, (where, word)
            assert _page(answer).replace(word, "WORD") == nowhere, (where, word)  # no hit, count, snippet, hint
        everything = _page(ask("sharedword")).lower()
        assert "every member" in everything and not any(word in everything for word in words), where
    assert api(observer_token, "sharedword").json["facets"]["kind"] == {"clause": 1}
    assert people["observer"].get("/search", query_string={"q": "x", "code": private.slug}).status_code == 404
    assert people["observer"].get(f"/codes/{private.slug}/search?q=zanzibarite").status_code == 404

    # Those who may read them do find them (so the assertions above could fail).
    tokens = {who: accounts.create_api_token(user, "case 22")[1]
              for who, user in (("author", author), ("office", office), ("insider", insider))}
    db.session.commit()
    assert api(tokens["office"], "sharedword").json["total"] == 4  # all but the withdrawn live text
    assert api(tokens["author"], "moonwrack").json["total"] == 1
    assert api(tokens["insider"], "zanzibarite OR quillfeather").json["total"] == 2
    assert "<mark>zanzibarite</mark>" in people["insider"].get("/search?q=zanzibarite").get_data(as_text=True)


WRITES = 12  # per writer: two threads and a process post comments, a thread adds clauses
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_case_23_two_writers_at_once_then_a_rebuild_from_the_database(app, tmp_path, make_code, make_clause,
                                                                       make_user):
    """Threads of this process and a second process write clauses and comments while searches
    run: every request succeeds; then `codedraft search-rebuild` and `search-check` agree."""
    app.config.update(FEEDBACK_POST_LIMIT="10000 per minute", LOGIN_ATTEMPTS_PER_MINUTE=1000)
    code = make_code("Busy")
    clause = make_clause(code, body="Writers meet here.")
    chair, office, reader, second = (make_user("chair", code), make_user(office=True),
                                     make_user("reviewer", code), make_user("chair", code))
    _token, reader_token = accounts.create_api_token(reader, "case 23")
    db.session.commit()
    feedback = f"/codes/{code.slug}/clauses/{clause.uid}/feedback"
    other = subprocess.Popen(
        [sys.executable, "-m", "tests.security.writer_process", str(tmp_path), second.email, feedback, str(WRITES)],
        cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        answers = _write_and_search_at_once(app, code, clause, chair, office, reader, reader_token, other)
        out, err = other.communicate(timeout=120)
    finally:
        if other.poll() is None:
            other.kill()
            other.communicate()
    assert other.returncode == 0, err[-2000:]
    assert "LockError" not in err and "SearchIndexBusy" not in err, err[-2000:]  # not even logged
    assert json.loads(out.splitlines()[-1]) == [200] * WRITES
    assert answers["comment"] == [200] * 2 * WRITES and answers["clause"] == [302] * WRITES
    assert answers["search"] and set(answers["search"]) == {200}

    runner = app.test_cli_runner()
    rebuilt = runner.invoke(args=["search-rebuild"])
    assert rebuilt.exit_code == 0 and f"Indexed {1 + 4 * WRITES} documents" in rebuilt.output, rebuilt.output
    checked = runner.invoke(args=["search-check"])
    assert checked.exit_code == 0 and "in sync" in checked.output, checked.output
    finder = app.test_client()
    for word in ("threadword", "officeword", "clauseword", "procword"):
        found = finder.get("/api/v1/search", query_string={"q": word, "per_page": 100},
                           headers={"Authorization": f"Bearer {reader_token}"}).json
        assert found["total"] == WRITES, (word, found["total"])


def _write_and_search_at_once(app, code, clause, chair, office, reader, reader_token, other) -> dict[str, list]:
    """Run the writers (comments by the chair and the Office, clauses by the Office) and a
    searcher in threads of this process, release the other process, and collect the statuses."""
    answers: dict[str, list] = {"comment": [], "clause": [], "search": []}
    errors: list[BaseException] = []
    writing = threading.Event()
    feedback = f"/codes/{code.slug}/clauses/{clause.uid}/feedback"
    clients = {"chair": _signed_in(app, chair), "office": _signed_in(app, office), "reader": _signed_in(app, reader),
               "office comments": _signed_in(app, office)}

    def comments(who: str, word: str) -> None:
        for i in range(WRITES):
            answer = _post_form(clients[who], feedback, body=f"{word} {i}: a comment.")
            answers["comment"].append(answer.status_code)

    def clauses() -> None:
        for i in range(WRITES):
            answer = clients["office"].post(f"/codes/{code.slug}/chapters/{clause.chapter_id}/clauses", data={
                "kind": "section", "number": str(10 + i), "title": f"Added {i}", "body": f"clauseword {i}.",
                "csrf_token": csrf_token(clients["office"], "/")})
            answers["clause"].append(answer.status_code)

    def searches() -> None:
        api = app.test_client()
        for _ in range(30):  # bounded: the search pages are rate limited per address
            if not writing.is_set():
                break
            answers["search"] += [
                api.get("/api/v1/search?q=threadword", headers={"Authorization": f"Bearer {reader_token}"}).status_code,
                clients["reader"].get("/search?q=clauseword").status_code,
                clients["reader"].get(f"/codes/{code.slug}/search?q=procword").status_code,
            ]

    def guarded(work, *args) -> None:
        try:
            work(*args)
        except BaseException as error:  # collected: an exception here is an error reaching a user
            errors.append(error)

    writers = [threading.Thread(target=guarded, args=(comments, "chair", "threadword")),
               threading.Thread(target=guarded, args=(comments, "office comments", "officeword")),
               threading.Thread(target=guarded, args=(clauses,))]
    searcher = threading.Thread(target=guarded, args=(searches,))
    writing.set()
    for thread in (*writers, searcher):
        thread.start()
    other.stdin.write("go\n")
    other.stdin.flush()
    for thread in writers:
        thread.join(120)
    writing.clear()
    searcher.join(60)
    assert errors == [], errors
    return answers


# -- export and files -------------------------------------------------------------------------


def test_case_24_formula_cells_are_neutralised():
    from codedraft.exports.feedback_export import neutralise_cell

    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise_cell(value).startswith("'"), repr(value)
    assert neutralise_cell("plain") == "plain"


def test_case_25_the_pdf_renderer_fetches_nothing_foreign():
    from codedraft.exports.pdf_export import AppAssetFetcher, RefusedFetch

    fetcher = AppAssetFetcher()
    for url in ("file:///etc/passwd", "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(RefusedFetch):
            fetcher.fetch(url)
    assert fetcher.refused == ["file:///etc/passwd", "http://169.254.169.254/latest/meta-data/"]


def test_case_26_hostile_titles_give_safe_filenames(tmp_path):
    from codedraft.exports.filenames import content_disposition, safe_export_path

    for title in ("../../x", '";evil.exe', "a\r\nSet-Cookie: x=1"):
        header = content_disposition(title, "pdf")
        assert "\r" not in header and "\n" not in header and "/" not in header.split("filename=")[1]
        assert safe_export_path(tmp_path, title, "pdf").parent == tmp_path.resolve()


def test_case_27_guessed_ids_get_the_same_404(client, make_code, make_user, sign_in):
    hidden = make_code("Hidden")
    mine = make_code("Mine")
    sign_in(make_user("reviewer", mine))
    missing = client.get("/codes/no-such-code")
    forbidden = client.get(f"/codes/{hidden.slug}")
    assert missing.status_code == forbidden.status_code == 404
    assert _page(missing) == _page(forbidden)


# -- HTTP and session -------------------------------------------------------------------------


def test_case_28_the_session_rotates_at_login(client, make_user, make_code):
    user = make_user("reviewer", make_code())
    db.session.commit()
    client.get("/login")
    before = client.get_cookie("codedraft_session")
    assert login(client, user.email).status_code == 302
    after = client.get_cookie("codedraft_session")
    assert before is not None and after is not None and before.value != after.value


def test_case_29_a_post_without_csrf_is_403(client, make_user, sign_in):
    sign_in(make_user(office=True))
    assert client.post("/codes/new", data={"title": "No token"}).status_code == 403
    assert client.post("/codes/new", data={"title": "Ok", "csrf_token": csrf_token(client, "/")}).status_code == 302


def test_case_30_login_brute_force_is_429_without_enumeration(client, make_user):
    make_user(email="known@example.test")
    db.session.commit()
    answers = []
    for email in ("known@example.test", "unknown@example.test") * 3:
        answers.append(login(client, email, "wrong password"))
    assert _page(answers[0]) == _page(answers[1])  # the same message for known and unknown
    assert answers[-1].status_code == 429 and int(answers[-1].headers["Retry-After"]) > 0
