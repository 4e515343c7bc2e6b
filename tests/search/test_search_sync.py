"""The index follows the database: after ORM commits, after co-editing writes (through the
debounced live-text indexer), after publishing; failures are logged and retried, never raised;
the Office's rebuild and check commands."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from whoosh import index as whoosh_index

from codedraft.codes import operations as codes
from codedraft.collab.store import store_for
from codedraft.drafts.operations import publish_draft
from codedraft.extensions import db
from codedraft.feedback.models import Comment
from codedraft.search import indexing
from codedraft.search.engine import SearchIndexBusy, SearchQuery
from codedraft.search.sync import live_indexer
from codedraft.search.whoosh_backend import WhooshSearchEngine
from tests.support.editing import set_live_text


def found(app: Any, text: str, tokens: list[str]) -> set[str]:
    results = indexing.search_engine(app).search(SearchQuery(text, tokens, per_page=100))
    return {hit.doc_id for hit in results.hits}


def wait_until(predicate: Any, timeout: float) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if predicate():
            return time.perf_counter() - started
        time.sleep(0.01)
    raise AssertionError(f"not true within {timeout} s")


def test_create_app_and_install_touch_no_files(search_app) -> None:
    assert not Path(search_app.config["SEARCH_INDEX_DIR"]).exists()
    assert indexing.ENGINE_KEY not in search_app.extensions


def test_a_committed_clause_is_searchable_within_a_second(search_app, make_clause) -> None:
    clause = make_clause(body="Signatories publish an aardvarkish transparency report.")
    token = indexing.code_token(clause.code_id)
    assert found(search_app, "aardvarkish", [token]) == set()  # nothing before the commit
    db.session.commit()
    # How soon is bench/search_bench.py's question; a test only waits, as long as a busy machine needs.
    wait_until(lambda: found(search_app, "aardvarkish", [token]) == {f"clause:{clause.uid}:live"}, 30.0)
    codes.retitle_clause(clause, "Pangolin reporting")
    db.session.commit()
    assert found(search_app, "pangolin", [token]) == {f"clause:{clause.uid}:live"}
    clause.withdrawn = True
    db.session.commit()
    assert found(search_app, "aardvarkish", [token]) == set()


def test_a_rolled_back_change_is_not_indexed(search_app, make_clause) -> None:
    clause = make_clause(body="Committed text.")
    db.session.commit()
    codes.set_clause_body(clause, "A narwhalish change that is rolled back.")
    db.session.flush()
    db.session.rollback()
    assert found(search_app, "narwhalish", [indexing.code_token(clause.code_id)]) == set()


def test_publishing_a_draft_indexes_its_clauses(search_app, make_clause) -> None:
    clause = make_clause(body="Measures against capybaric risks.")
    db.session.commit()
    code = clause.chapter.code
    draft = publish_draft(code, "First Draft")
    db.session.commit()
    assert found(search_app, "capybaric", [indexing.code_token(code.id)]) == {
        f"clause:{clause.uid}:live", f"clause:{clause.uid}:draft:{draft.number}"}


def test_co_editing_writes_reach_the_index_through_the_live_indexer(search_app, make_clause) -> None:
    clause = make_clause(body="Before co-editing.")
    db.session.commit()
    token = indexing.code_token(clause.code_id)
    set_live_text(store_for(search_app), clause, "After co-editing: an okapish passage.", user_id=None, origin="test")
    wait_until(lambda: found(search_app, "okapish", [token]) == {f"clause:{clause.uid}:live"}, 30.0)
    # A burst of edits is debounced into few passes, and the last text wins.
    passes_before = live_indexer(search_app).passes
    for n in range(10):
        set_live_text(store_for(search_app), clause, f"Burst edit {n} of the tapirish text.", user_id=None,
                      origin="test")
    wait_until(lambda: bool(found(search_app, '"burst edit 9"', [token])), 2.0)
    assert live_indexer(search_app).passes - passes_before <= 5
    assert found(search_app, "okapish", [token]) == set()


def test_comments_are_indexed_and_hiding_one_narrows_who_sees_it(search_app, make_clause, make_user) -> None:
    clause = make_clause(body="Clause text.")
    author = make_user(category="civil-society")
    comment = Comment(code_id=clause.code_id, clause_id=clause.id, author_id=author.id, category="civil-society",
                      status="open", body="The lemurish wording is unclear.")
    db.session.add(comment)
    db.session.commit()
    member, office = indexing.code_token(clause.code_id), indexing.office_token(clause.code_id)
    own = indexing.author_token(clause.code_id, author.id)
    assert found(search_app, "lemurish", [member]) == {f"comment:{comment.id}"}
    comment.hidden = True
    db.session.commit()
    assert found(search_app, "lemurish", [member]) == set()
    assert found(search_app, "lemurish", [office]) == found(search_app, "lemurish", [own]) == {f"comment:{comment.id}"}
    db.session.delete(comment)
    db.session.commit()
    assert found(search_app, "lemurish", [office]) == set()


def test_allowed_tokens_follow_roles(search_app, make_code, make_user) -> None:
    first, second = make_code(), make_code()
    db.session.flush()
    observer = make_user("observer", first)
    admin = make_user("admin", second)
    office = make_user(office=True)
    outsider = make_user()
    assert indexing.allowed_tokens(observer) == [f"code:{first.id}", f"code:{first.id}:user:{observer.id}"]
    assert f"code:{second.id}:office" in indexing.allowed_tokens(admin)
    assert f"code:{first.id}:office" not in indexing.allowed_tokens(admin)
    assert {f"code:{first.id}:office", f"code:{second.id}:office"} <= set(indexing.allowed_tokens(office))
    assert indexing.allowed_tokens(outsider) == [] and indexing.allowed_tokens(None) == []


def test_index_failure_after_commit_is_logged_and_retried(search_app, make_clause, monkeypatch, caplog) -> None:
    engine = indexing.search_engine(search_app)
    real_index = engine.index

    def busy(_docs: Any) -> int:
        raise SearchIndexBusy("another writer")

    monkeypatch.setattr(engine, "index", busy)
    clause = make_clause(body="A quetzalish clause.")
    with caplog.at_level(logging.ERROR, logger="codedraft.search.sync"):
        db.session.commit()  # does not raise
    assert "retrying in the background" in caplog.text
    monkeypatch.setattr(engine, "index", real_index)
    wait_until(lambda: bool(found(search_app, "quetzalish", [indexing.code_token(clause.code_id)])), 3.0)


@contextlib.contextmanager
def another_writer(engine: Any) -> Iterator[None]:
    """Hold the embedded index's write lock as another process would."""
    if isinstance(engine, WhooshSearchEngine):
        other_process = whoosh_index.open_dir(str(engine.path))
        writer = other_process.writer()
        try:
            yield
        finally:
            writer.cancel()
            other_process.close()
        return
    connection = sqlite3.connect(engine.database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def test_a_second_writer_holding_the_index_never_reaches_the_user(search_app, make_clause, client, make_user,
                                                                   sign_in) -> None:
    """SECURITY-CASE 23: another process holds the index's write lock while a request commits."""
    clause = make_clause(body="First text.")
    db.session.commit()
    engine = indexing.search_engine(search_app)  # the index exists now
    with another_writer(engine):
        codes.set_clause_body(clause, "A second text about the ibexish measure.")
        db.session.commit()  # waits SEARCH_WRITE_TIMEOUT, logs, hands over to the retry
        sign_in(make_user("observer", clause.chapter.code))
        page = client.get("/search", query_string={"q": "ibexish"})
        assert page.status_code == 200
    wait_until(lambda: bool(found(search_app, "ibexish", [indexing.code_token(clause.code_id)])), 3.0)


@pytest.fixture
def synced_code(search_app, make_clause, make_user) -> Any:
    clause = make_clause(body="Text about the dugongish measure.")
    make_clause(chapter=clause.chapter, number="2", body="Another clause.")
    db.session.commit()
    publish_draft(clause.chapter.code, "First Draft")
    author = make_user(category="academia")
    db.session.add(Comment(code_id=clause.code_id, clause_id=clause.id, author_id=author.id, category="academia",
                           status="open", body="A comment."))
    db.session.commit()
    return clause


def test_search_check_and_rebuild_commands(search_app, synced_code) -> None:
    runner = search_app.test_cli_runner()
    in_sync = runner.invoke(args=["search-check"])
    assert in_sync.exit_code == 0, in_sync.output
    assert "Database: 5 documents; index: 5" in in_sync.output and "in sync" in in_sync.output
    engine = indexing.search_engine(search_app)
    engine.delete([f"clause:{synced_code.uid}:draft:1"])
    stale = next(iter(indexing.iter_documents()))
    engine.index([dataclasses.replace(stale, body="old words"), dataclasses.replace(stale, doc_id="comment:999")])
    drifted = runner.invoke(args=["search-check"])
    assert drifted.exit_code == 1
    assert "1 missing" in drifted.output and "1 stale" in drifted.output and "1 extra: comment:999" in drifted.output
    rebuilt = runner.invoke(args=["search-rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Indexing" in rebuilt.output and "Indexed 5 documents" in rebuilt.output
    assert runner.invoke(args=["search-check"]).exit_code == 0


def test_rebuild_with_two_processes_matches_the_database(search_app, synced_code) -> None:
    search_app.config["SEARCH_REBUILD_PROCS"] = 2
    assert indexing.rebuild_index(app=search_app) == 5
    assert indexing.check_index().in_sync
    token = indexing.code_token(synced_code.code_id)
    assert found(search_app, "dugongish", [token]) == {f"clause:{synced_code.uid}:live",
                                                        f"clause:{synced_code.uid}:draft:1"}


def test_disposition_reasons_and_replies_are_searchable_where_their_comment_is(
    search_app, make_clause, make_user
) -> None:
    from codedraft.feedback.models import Reply

    clause = make_clause(body="Clause text.")
    author, replier = make_user(category="academia"), make_user(category="industry")
    comment = Comment(code_id=clause.code_id, clause_id=clause.id, author_id=author.id, category="academia",
                      status="open", body="Please define the term.")
    db.session.add(comment)
    db.session.commit()
    member, office = indexing.code_token(clause.code_id), indexing.office_token(clause.code_id)
    doc_id = f"comment:{comment.id}"
    comment.status, comment.disposition = "rejected", "rejected"
    comment.disposition_reason = "Out of scope for the okapian chapter."
    db.session.commit()
    assert found(search_app, "okapian", [member]) == {doc_id}
    db.session.add(Reply(comment_id=comment.id, author_id=replier.id, category="industry",
                         body="We agree with the quokkaish reading."))
    db.session.commit()
    assert found(search_app, "quokkaish", [member]) == {doc_id}
    # Hidden with its comment: the reply and the reason go where the comment goes.
    comment.hidden = True
    db.session.commit()
    assert found(search_app, "quokkaish", [member]) == found(search_app, "okapian", [member]) == set()
    assert found(search_app, "quokkaish", [office]) == {doc_id}
    # A rebuild from the database finds them too.
    with search_app.app_context():
        indexing.rebuild_index(app=search_app)
    assert found(search_app, "okapian quokkaish", [office]) == {doc_id}
