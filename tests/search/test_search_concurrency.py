"""Several writers at once (SECURITY-CASE 23), on both backends: no lock error reaches callers,
nothing is lost; a writer held too long gives SearchIndexBusy."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psycopg
import pytest
from whoosh import index as whoosh_index

from codedraft.search.engine import SearchDocument, SearchEngine, SearchIndexBusy, SearchQuery
from codedraft.search.postgres_backend import PostgresSearchEngine
from codedraft.search.whoosh_backend import WhooshSearchEngine

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def comment(i: int, writer: str) -> SearchDocument:
    return SearchDocument(
        doc_id=f"comment:{writer}-{i}",
        kind="comment",
        code_id=1,
        body=f"comment {i} from {writer} on systemic risk",
        visibility=["code:1"],
    )


def test_threads_writing_at_once_lose_nothing(index_site) -> None:
    shared = index_site.open()
    own = [index_site.open() for _ in range(2)]
    errors: list[BaseException] = []

    def write(engine: SearchEngine, name: str) -> None:
        try:
            for batch in range(8):
                engine.index([comment(batch * 5 + k, name) for k in range(5)])
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(shared, "s1")),
        threading.Thread(target=write, args=(shared, "s2")),
        threading.Thread(target=write, args=(own[0], "o1")),
        threading.Thread(target=write, args=(own[1], "o2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert shared.count() == 4 * 40
    assert len({d for d in shared.doc_ids() if d.startswith("comment:o1-")}) == 40


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from codedraft.search.engine import SearchDocument
    from codedraft.search.postgres_backend import PostgresSearchEngine
    from codedraft.search.sqlite_backend import SqliteSearchEngine
    from codedraft.search.whoosh_backend import WhooshSearchEngine

    backend, location, name, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    opener = {"whoosh": WhooshSearchEngine, "sqlite": SqliteSearchEngine}.get(backend, PostgresSearchEngine)
    engine = opener(location)
    while not go.exists():
        time.sleep(0.005)
    for batch in range(15):
        engine.index([SearchDocument(doc_id=f"comment:{name}-{batch}-{k}", kind="comment", code_id=1,
                                     body="written by " + name, visibility=["code:1"]) for k in range(10)])
    engine.close()
    """
)


def test_two_processes_writing_at_once_lose_nothing(index_site, tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", WRITER_SCRIPT, index_site.backend, index_site.location, name,
             str(go)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    time.sleep(0.3)  # let both open the index before the race starts
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "LockError" not in err
    engine = index_site.open()
    assert engine.count() == 300
    assert {d.split("-")[0] for d in engine.doc_ids()} == {"comment:p1", "comment:p2"}


def test_a_writer_held_too_long_gives_search_index_busy(tmp_path: Path) -> None:
    """Whoosh: another process's writer holds the folder's lock file."""
    engine = WhooshSearchEngine(tmp_path / "ix", write_timeout=0.3)
    foreign = whoosh_index.open_dir(str(tmp_path / "ix")).writer()  # another process's writer
    try:
        started = time.perf_counter()
        with pytest.raises(SearchIndexBusy):
            engine.index([comment(1, "late")])
        assert time.perf_counter() - started < 15  # gives up, rather than waiting for ever
    finally:
        foreign.cancel()
    assert engine.index([comment(1, "late")]) == 1
    assert engine.count() == 1
    engine.close()


def test_a_postgres_lock_held_too_long_gives_search_index_busy(empty_pg_index: str) -> None:
    """PostgreSQL: another session (a rebuild elsewhere, a DBA) locks the table past the wait."""
    engine = PostgresSearchEngine(empty_pg_index, write_timeout=0.3)
    try:
        with psycopg.connect(empty_pg_index.replace("+psycopg", "")) as foreign:
            foreign.execute("LOCK TABLE search_document IN EXCLUSIVE MODE")
            started = time.perf_counter()
            with pytest.raises(SearchIndexBusy):
                engine.index([comment(1, "late")])
            with pytest.raises(SearchIndexBusy):
                engine.rebuild([comment(2, "late")])
            assert time.perf_counter() - started < 15  # gives up, rather than waiting for ever
            assert engine.search(SearchQuery("systemic", ["code:1"])).message is None  # readers are not blocked
        assert engine.index([comment(1, "late")]) == 1
        assert engine.count() == 1
    finally:
        engine.close()


def test_searching_while_writing_never_fails(engine: SearchEngine) -> None:
    stop = threading.Event()
    failures: list[str] = []

    def keep_searching() -> None:
        while not stop.is_set():
            results = engine.search(SearchQuery("systemic", ["code:1"]))
            if results.message:
                failures.append(results.message)

    reader = threading.Thread(target=keep_searching)
    reader.start()
    try:
        for batch in range(10):
            engine.index([comment(batch * 3 + k, "w") for k in range(3)])
    finally:
        stop.set()
        reader.join(timeout=30)
    assert failures == []
    assert engine.search(SearchQuery("systemic", ["code:1"], per_page=100)).total == 30
