"""The application searching with the PostgreSQL backend, on a database the migrations made:
"auto" picks it, a clause edited live and a comment are found through the search page, an
observer of another code finds nothing, and the rebuild/check commands work unchanged.

The app is ``tests.scaleout.cluster.local_app`` (what ``pg_app`` uses) on a database upgraded by
every migration, not ``pg_app`` itself: that database is made by ``create_all``, which does not
create the search tables (no model maps them), and needs Redis, which search does not.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from codedraft.accounts import operations as accounts
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Role
from codedraft.collab.store import store_for
from codedraft.extensions import db
from codedraft.feedback.models import Comment
from codedraft.search import install
from codedraft.search.indexing import close_search_engine, count_documents, open_search_engine, search_engine
from codedraft.search.postgres_backend import PostgresSearchEngine
from codedraft.search.sqlite_backend import SqliteSearchEngine
from codedraft.search.sync import stop_live_indexer
from codedraft.search.whoosh_backend import WhooshSearchEngine
from tests.conftest import PASSWORD, FreshContextClient, login
from tests.scaleout import cluster
from tests.support.editing import set_live_text


@dataclasses.dataclass
class SearchScene:
    app: Flask
    clause_id: int
    emails: dict[str, str]
    author_id: int


@pytest.fixture(scope="module")
def scene(
    tmp_path_factory: pytest.TempPathFactory, migrated_pg_database: Callable[[str], Any]
) -> Iterator[SearchScene]:
    folder = tmp_path_factory.mktemp("pg-search-app")
    with migrated_pg_database("codedraft_search_app") as url:
        app = cluster.local_app(url, SEARCH_INDEX_DIR=str(folder / "search"), EXPORT_DIR=str(folder / "exports"),
                                SEARCH_LIVE_INTERVAL=0.2)
        app.test_client_class = FreshContextClient
        install(app)
        with app.app_context():
            drafted = codes.create_code("Drafted Code")
            other = codes.create_code("Other Code")
            clause = codes.add_clause(codes.add_chapter(drafted, "Transparency"), kind="commitment", number="1",
                                      title="Reporting", body="Signatories report once a year.")
            people = {
                "member": accounts.create_user("member@pgsearch.test", "Mia Member", PASSWORD),
                "observer": accounts.create_user("observer@pgsearch.test", "Otto Observer", PASSWORD),
            }
            accounts.grant_role(people["member"], drafted, Role.member)
            accounts.grant_role(people["observer"], other, Role.observer)
            db.session.commit()
            made = SearchScene(app, clause.id, {k: u.email for k, u in people.items()}, people["member"].id)
            db.session.remove()
        try:
            yield made
        finally:
            stop_live_indexer(app)
            close_search_engine(app)
            # Else the co-editing writer's own connection would be garbage-collected open (a
            # ResourceWarning) once this database is dropped.
            store_for(app).close()
            with app.app_context():
                db.engine.dispose()


def page_for(scene: SearchScene, who: str, text: str) -> str:
    client = scene.app.test_client()
    assert login(client, scene.emails[who]).status_code == 302
    response = client.get("/search", query_string={"q": text})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def wait_for_page(scene: SearchScene, who: str, text: str, expected: str, timeout: float) -> float:
    """Seconds until ``expected`` is on ``who``'s search page for ``text``; fails after ``timeout``."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if expected in page_for(scene, who, text):
            return time.perf_counter() - started
        time.sleep(0.05)
    raise AssertionError(f"{expected!r} not on the search page for {text!r} within {timeout} s")


def test_auto_picks_postgres_and_no_whoosh_folder_is_made(scene: SearchScene) -> None:
    engine = search_engine(scene.app)
    assert isinstance(engine, PostgresSearchEngine) and not engine.needs_rebuild
    assert not Path(scene.app.config["SEARCH_INDEX_DIR"]).exists()


def test_live_edit_and_comment_are_found_and_hidden_from_another_codes_observer(scene: SearchScene) -> None:
    with scene.app.app_context():
        clause = db.session.get(Clause, scene.clause_id)
        set_live_text(store_for(scene.app), clause, "Signatories publish a pangolinish transparency report.",
                                          user_id=None, origin="test")
        db.session.add(Comment(code_id=clause.code_id, clause_id=clause.id, author_id=scene.author_id,
                               category="academia", status="open", body="The armadillic threshold is unclear."))
        db.session.commit()
        db.session.remove()
    # Found at all, within a bound that only a stuck indexer misses: how soon is the bench's to
    # measure (a 2 s assertion here failed on a loaded machine at 2.99 s).
    wait_for_page(scene, "member", "pangolinish", "<mark>pangolinish</mark>", timeout=30.0)
    comment_page = page_for(scene, "member", "armadillic")
    assert "<mark>armadillic</mark>" in comment_page and "1 result" in comment_page
    for text in ("pangolinish", "armadillic", "signatories"):
        hidden = page_for(scene, "observer", text)
        assert "search-hit" not in hidden and "<mark>" not in hidden and "0 results" in hidden


def test_check_and_rebuild_commands_work_on_postgres(scene: SearchScene) -> None:
    with scene.app.app_context():
        expected = count_documents()
        db.session.remove()
    runner = scene.app.test_cli_runner()
    rebuilt = runner.invoke(args=["search-rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"Indexed {expected} documents in PostgreSQL" in rebuilt.output and "root@127.0.0.1" in rebuilt.output
    checked = runner.invoke(args=["search-check"])
    assert checked.exit_code == 0 and f"Database: {expected} documents; index: {expected}" in checked.output
    search_engine(scene.app).delete([f"clause:{_clause_uid(scene)}:live"])
    drifted = runner.invoke(args=["search-check"])
    assert drifted.exit_code == 1 and "1 missing" in drifted.output
    assert runner.invoke(args=["search-rebuild"]).exit_code == 0
    assert runner.invoke(args=["search-check"]).exit_code == 0


def _clause_uid(scene: SearchScene) -> str:
    with scene.app.app_context():
        uid = db.session.get(Clause, scene.clause_id).uid
        db.session.remove()
    return uid


def test_backend_choice_follows_search_backend_and_the_database(tmp_path: Path, caplog, empty_pg_index: str) -> None:
    sqlite = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}",
              "SEARCH_INDEX_DIR": str(tmp_path / "ix")}
    opened = [open_search_engine(sqlite), open_search_engine({**sqlite, "SEARCH_BACKEND": "postgres",
                                                              "SQLALCHEMY_DATABASE_URI": empty_pg_index}),
              open_search_engine({**sqlite, "SEARCH_BACKEND": "whoosh", "SEARCH_INDEX_DIR": str(tmp_path / "wh")})]
    try:
        assert [type(e) for e in opened] == [SqliteSearchEngine, PostgresSearchEngine, WhooshSearchEngine]
        with pytest.raises(ValueError, match="SEARCH_BACKEND"):
            open_search_engine({**sqlite, "SEARCH_BACKEND": "elastic"})
        with cluster.fresh_database("codedraft_no_search") as bare:  # a database without the migration
            opened.append(open_search_engine({**sqlite, "SQLALCHEMY_DATABASE_URI": cluster.sqlalchemy_url(bare)}))
            assert isinstance(opened[-1], SqliteSearchEngine)
            assert "no search tables" in caplog.text
    finally:
        for engine in opened:
            engine.close()
