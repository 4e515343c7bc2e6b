"""Search benchmark: every backend on the same data in one run, reported by query kind.

Run from the project root (several minutes on 2 cores; other work on the machine inflates every
number, so the load average is recorded):
    .venv/bin/python bench/search_bench.py [--comments 100000] [--queries 240]
        [--backends whoosh,postgres] [--embedded auto|sqlite|whoosh] [--out FILE]

What it does, in one temporary instance folder:
1. Imports the corpus through the importer: the AI Act as one code; the Code's drafts 2 and 3
   as drafts of one code; the final Safety and Security chapter as a third code; and a Polish
   and a German code written for the bench.
2. Bulk-inserts generated comments (sentences of the corpus, or of our own Polish and German,
   spread over clauses, stakeholder categories, statuses, authors and dates; 3% hidden).
3. Rebuilds the app's embedded default from the database as the Office's rebuild does (with
   progress), checks it, and runs the same varied queries (words, phrases, prefixes, fuzzy,
   fields, booleans, filters, hostile input, Polish and German words in forms their texts do
   not use) as a reviewer and as the Office; then measures commit-to-searchable for an ORM
   comment and for a co-editing write picked up by the live-text indexer.
4. Does the same (build, check, queries, index-one-then-find) for Whoosh and for the
   PostgreSQL backend, the latter in a fresh, uniquely named database of the local cluster
   (upgraded by the migrations, dropped afterwards; skipped with the reason when PostgreSQL is
   not running).
Writes bench/results/search.json, with the issue's targets and the measured number beside each.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# ../shared/corpus beside the checkout (or one level further up, for a nested worktree).
CORPUS = next((p / "corpus" for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
              ROOT / ".." / "shared" / "corpus")
RESULTS = ROOT / "bench" / "results" / "search.json"

from sqlalchemy import insert, select  # noqa: E402

from codedraft import create_app  # noqa: E402
from codedraft.accounts import operations as accounts  # noqa: E402
from codedraft.codes.models import Clause, Code, Role  # noqa: E402
from codedraft.collab.store import store_for  # noqa: E402
from codedraft.extensions import db  # noqa: E402
from codedraft.importer.operations import import_document  # noqa: E402
from codedraft.search import indexing, install  # noqa: E402
from codedraft.search.engine import (  # noqa: E402
    MESSAGE_TIME_LIMIT,
    SearchDocument,
    SearchEngine,
    SearchFilters,
    SearchQuery,
    document_fingerprint,
)
from codedraft.search.postgres_backend import PostgresSearchEngine  # noqa: E402
from codedraft.search.sync import live_indexer, stop_live_indexer  # noqa: E402
from codedraft.search.whoosh_backend import WhooshSearchEngine  # noqa: E402

CATEGORIES = ("provider", "academia", "open-source", "civil-society", "rightsholder", "industry", "public-body")
STATUSES = ("open", "addressed", "accepted", "partly_accepted", "rejected", "withdrawn")
FIRST_NAMES = ("Anna", "Zoë", "Łukasz", "Marie", "Ola", "Sam", "José", "Ingrid", "Paweł", "Chloé", "Ahmed", "Li")
LAST_NAMES = ("Kowalska", "Dupont", "Nordmann", "Smith", "García", "Müller", "Nowak", "Rossi", "Öberg", "Chen")


# Codes in Polish and German, written for this bench (not translations of the corpus): the
# "polish" and "german" queries look for words in forms the texts do not use.
POLISH_CODE = """# Kodeks postępowania dla dostawców modeli

## Przejrzystość

Dostawca modelu ogólnego przeznaczenia wypełnia zobowiązanie do przejrzystości wobec Urzędu.

Dostawca prowadzi rejestr poważnych incydentów i aktualizuje dokumentację techniczną modelu.

## Ryzyko systemowe

Sygnatariusze oceniają ryzyka systemowe przed wprowadzeniem modelu do obrotu.

Ocena ryzyka obejmuje testy bezpieczeństwa oraz zobowiązania wobec użytkowników końcowych.
"""
GERMAN_CODE = """# Verhaltenskodex für Anbieter von Modellen

## Transparenz

Der Anbieter erfüllt seine Verpflichtungen gegenüber dem Amt und veröffentlicht Zusammenfassungen.

Schwerwiegende Vorfälle werden unverzüglich gemeldet und dokumentiert.

## Systemische Risiken

Die Unterzeichner bewerten systemische Risiken vor dem Inverkehrbringen des Modells.

Die Bewertung umfasst Sicherheitsprüfungen und Verpflichtungen gegenüber Betreibern.
"""
POLISH_SENTENCES = (
    "Proponujemy doprecyzować zobowiązanie dostawcy do przejrzystości.",
    "Rejestr poważnych incydentów powinien być dostępny dla Urzędu.",
    "Ocena ryzyk systemowych wymaga niezależnych testów bezpieczeństwa.",
    "Dokumentacja techniczna modelu powinna obejmować dane treningowe.",
    "Zobowiązania wobec użytkowników końcowych są zbyt ogólne.",
)
GERMAN_SENTENCES = (
    "Wir schlagen vor, die Verpflichtung des Anbieters zur Transparenz zu präzisieren.",
    "Schwerwiegende Vorfälle sollten dem Amt innerhalb von zwei Tagen gemeldet werden.",
    "Die Bewertung systemischer Risiken erfordert unabhängige Sicherheitsprüfungen.",
    "Die technische Dokumentation sollte die Trainingsdaten beschreiben.",
    "Die Verpflichtungen gegenüber Betreibern sind zu allgemein formuliert.",
)
LANGUAGE_QUERIES = (
    ("polish", "zobowiązaniem", {}), ("polish", "incydent", {}), ("polish", '"poważny incydent"', {}),
    ("polish", "ryzyko", {}), ("polish", "przejrzystość", {}), ("polish", "zobowiazanie", {}),
    ("german", "Verpflichtung", {}), ("german", "Vorfall", {}), ("german", '"systemischen Risiken"', {}),
    ("german", "Bewertungen", {}), ("german", "gegenuber", {}), ("german", "Sicherheitsprüfung", {}),
)


# --- setting up the data ---------------------------------------------------------------------


def make_app(folder: Path) -> Any:
    return create_app({
        "TESTING": False, "SECRET_KEY": "bench", "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'codedraft.sqlite3'}",
        "SEARCH_INDEX_DIR": str(folder / "search"), "EXPORT_DIR": str(folder / "exports"),
        "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024,  # 300 reviewers: sign-in strength is not measured here
    })


def import_corpus() -> dict[str, Code]:
    """The three codes of the brief, through the real importer; commits."""
    def read(name: str) -> str:
        return (CORPUS / name).read_text(encoding="utf-8")

    act = import_document(read("eu-ai-act-regulation-2024-1689.md"), title="AI Act", draft_name="OJ 12.7.2024").code
    db.session.commit()
    gpai = import_document(read("gpai-cop-draft2-2024-12.md"), title="GPAI Code of Practice",
                           draft_name="Second Draft").code
    db.session.commit()
    import_document(read("gpai-cop-draft3-2025-03.md"), code=gpai, draft_name="Third Draft")
    db.session.commit()
    final = import_document(read("gpai-cop-final-2025-07-safety-security.md"), title="Safety and Security (final)",
                            draft_name="Final").code
    db.session.commit()
    polish = import_document(POLISH_CODE, title="Kodeks (pl)", draft_name="Projekt").code
    polish.language = "pl"
    german = import_document(GERMAN_CODE, title="Kodex (de)", draft_name="Entwurf").code
    german.language = "de"
    db.session.commit()
    return {"act": act, "gpai": gpai, "final": final, "pl": polish, "de": german}


def corpus_sentences() -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.md")) if p.name != "SOURCES.md")
    text = re.sub(r"[#*|>_`\[\]]+", " ", text)
    sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", text)]
    return [s for s in sentences if 40 < len(s) < 400]


def make_people(codes: dict[str, Code], count: int, rng: random.Random) -> list[tuple[int, str]]:
    """Reviewers with organisations of every category, members of every code; (id, category)."""
    organisations = {c: accounts.get_or_create_organisation(f"Org {c}", c) for c in CATEGORIES}
    people = []
    for n in range(count):
        category = CATEGORIES[n % len(CATEGORIES)]
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        user = accounts.create_user(f"reviewer{n}@bench.test", name, "bench password 1",
                                    organisation=organisations[category])
        for code in codes.values():
            accounts.grant_role(user, code, Role.reviewer)
        people.append((user.id, category))
    db.session.commit()
    return people


def insert_comments(codes: dict[str, Code], people: list[tuple[int, str]], count: int, rng: random.Random) -> float:
    """Bulk-insert ``count`` generated comments; returns seconds taken."""
    from codedraft.feedback.models import Comment

    sentences = corpus_sentences()
    weights = {"gpai": 0.58, "final": 0.24, "act": 0.14, "pl": 0.02, "de": 0.02}
    own_sentences = {"pl": POLISH_SENTENCES, "de": GERMAN_SENTENCES}
    clauses_by_code = {
        key: db.session.scalars(select(Clause.id).where(Clause.code_id == code.id, Clause.withdrawn.is_(False))).all()
        for key, code in codes.items()
    }
    start = dt.datetime(2024, 11, 14)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    keys, probabilities = list(weights), list(weights.values())
    for n in range(count):  # noqa: B007  (n is the comment's number)
        key = rng.choices(keys, probabilities)[0]
        author_id, category = rng.choice(people)
        batch.append({
            "code_id": codes[key].id, "clause_id": rng.choice(clauses_by_code[key]), "author_id": author_id,
            "organisation": f"Org {category}", "category": category, "kind": "comment",
            "body": " ".join(rng.sample(own_sentences.get(key, sentences), k=rng.randint(1, 3))),
            "status": rng.choice(STATUSES),
            "created_at": start + dt.timedelta(minutes=rng.randint(0, 300_000)), "support_count": 0,
            "reply_count": 0, "hidden": rng.random() < 0.03, "hidden_reason": "", "disposition_reason": "",
        })
        if len(batch) == 5000:
            db.session.execute(insert(Comment), batch)
            batch = []
    if batch:
        db.session.execute(insert(Comment), batch)
    db.session.commit()
    return time.perf_counter() - started


# --- queries ---------------------------------------------------------------------------------


def vocabulary(sentences: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Frequent content words, and two/three-word phrases that occur in the corpus."""
    words = Counter(w.lower() for s in sentences for w in re.findall(r"[A-Za-z][a-z]{4,}", s))
    common = [w for w, _ in words.most_common(400)][20:]
    phrases = []
    for sentence in rng.sample(sentences, 400):
        tokens = re.findall(r"[A-Za-z][A-Za-z-]+", sentence)
        if len(tokens) >= 3:
            i = rng.randrange(len(tokens) - 2)
            phrases.append(" ".join(tokens[i : i + rng.choice((2, 3))]).lower())
    return common, phrases


def misspell(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def build_queries(count: int, sentences: list[str], rng: random.Random) -> list[tuple[str, str, dict[str, Any]]]:
    """(category, text, filters) triples: varied, reproducible, at least ``count`` of them."""
    common, phrases = vocabulary(sentences, rng)
    fixed = [
        ("word", "risk", {}), ("word", "copyright", {}), ("word", "transparency", {}), ("word", "the", {}),
        ("phrase", '"systemic risk"', {}), ("phrase", '"serious incident"', {}), ("phrase", '"shall not"', {}),
        ("prefix", "evaluat*", {}), ("prefix", "whistleblow*", {}), ("fuzzy", "transparancy~", {}),
        ("field", "kind:comment risk", {}), ("field", "category:academia copyright", {}),
        ("field", "draft:2 safety", {}), ("field", "status:accepted", {}), ("field", "author:kowalska", {}),
        ("boolean", "safety OR security", {}), ("boolean", "risk NOT systemic", {}),
        ("boolean", "(risk OR hazard) AND model", {}), ("folded", "securite", {}), ("folded", "Müller", {}),
        ("hostile", "(", {}), ("hostile", '"', {}), ("hostile", "a*", {}), ("hostile", "*", {}),
        ("hostile", "AND OR NOT", {}), ("hostile", "x" * 10_000, {}), ("hostile", "nofield:x", {}),
        ("filtered", "risk", {"kind": "comment", "category": "academia"}),
        ("filtered", "model", {"draft": "live", "kind": "clause"}),
        ("filtered", "data", {"status": "accepted", "date_from": dt.date(2025, 1, 1)}),
    ]
    queries = list(fixed) + list(LANGUAGE_QUERIES)
    makers: list[tuple[str, Callable[[], str]]] = [
        ("word", lambda: rng.choice(common)),
        ("words", lambda: f"{rng.choice(common)} {rng.choice(common)}"),
        ("phrase", lambda: f'"{rng.choice(phrases)}"'),
        ("prefix", lambda: rng.choice([w for w in common if len(w) >= 6])[: rng.randint(4, 6)] + "*"),
        ("fuzzy", lambda: misspell(rng.choice([w for w in common if len(w) >= 6]), rng) + "~"),
        ("field", lambda: f"kind:comment {rng.choice(common)}"),
        ("field", lambda: f"category:{rng.choice(CATEGORIES)} {rng.choice(common)}"),
        ("boolean", lambda: f"{rng.choice(common)} OR {rng.choice(common)}"),
        ("filtered", lambda: rng.choice(common)),
    ]
    while len(queries) < count:
        category, make = rng.choice(makers)
        filters: dict[str, Any] = {}
        if category == "filtered":
            filters = {"kind": rng.choice(("clause", "comment")), "category": rng.choice(CATEGORIES)}
        queries.append((category, make(), filters))
    return queries


# --- each backend on the same documents ------------------------------------------------------


def app_search(app: Any, text: str, filters: dict[str, Any], tokens: list[str]) -> tuple[int, int]:
    query = SearchQuery(text, tokens, filters=SearchFilters(**filters))
    results = indexing.search_engine(app).search(query)
    return results.total, len(results.hits)


def engine_search(engine: SearchEngine, text: str, filters: dict[str, Any], tokens: list[str],
                  timed_out: list[str]) -> tuple[int, int]:
    results = engine.search(SearchQuery(text, tokens, filters=SearchFilters(**filters)))
    if results.message and MESSAGE_TIME_LIMIT in results.message:
        timed_out.append(text[:60])
    return results.total, len(results.hits)


def measure_engine(engine: SearchEngine, documents: list[SearchDocument],
                   queries: list[tuple[str, str, dict[str, Any]]], viewers: list[list[str]],
                   *, build: bool = True) -> dict[str, Any]:
    """Build (unless the app built it already), check, query, and index-one-then-find."""
    report: dict[str, Any] = {}
    if build:
        started = time.perf_counter()
        engine.rebuild(documents)
        report["build_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    report["check_in_sync"] = engine.fingerprints() == {doc.doc_id: document_fingerprint(doc) for doc in documents}
    report["check_s"] = round(time.perf_counter() - started, 2)
    timed_out: list[str] = []
    # Load average (1, 5, 15 min) as this backend's queries start and end: other work on the
    # machine inflates them, and the backends are measured one after another.
    report["load_average_before_queries"] = [round(x, 1) for x in os.getloadavg()]
    report["query_ms"] = time_queries(lambda t, f, v: engine_search(engine, t, f, v, timed_out), queries, viewers)
    report["load_average_after_queries"] = [round(x, 1) for x in os.getloadavg()]
    report["timed_out_queries"] = timed_out
    # Found at all? The language queries use forms the Polish and German texts do not contain.
    report["language_totals"] = {t: engine_search(engine, t, f, viewers[1], [])[0] for _k, t, f in LANGUAGE_QUERIES}
    latencies = []
    for n in range(12):
        word = f"benchoneword{n}x"
        started = time.perf_counter()
        engine.index([SearchDocument(doc_id=f"comment:bench-{n}", kind="comment", code_id=0,
                                     body=f"A new comment with {word} in it.", visibility=["code:0"])])
        assert engine.search(SearchQuery(word, ["code:0"])).total == 1
        latencies.append((time.perf_counter() - started) * 1000)
    engine.delete([f"comment:bench-{n}" for n in range(12)])
    report["index_one_then_search_ms"] = summary(latencies)
    return report


def bench_postgres(documents: list[SearchDocument], queries: list[tuple[str, str, dict[str, Any]]],
                   viewers: list[list[str]], time_limit: float) -> dict[str, Any]:
    """The PostgreSQL backend in a fresh, uniquely named database of the local cluster
    (upgraded by the migrations; dropped afterwards)."""
    import psycopg
    from flask_migrate import upgrade

    from codedraft.cli import install_migrations
    from tests.scaleout import cluster

    try:
        psycopg.connect(cluster.PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        return {"skipped": f"PostgreSQL at {cluster.PG_ADMIN_URL} is unreachable: {error}"}
    with cluster.fresh_database("codedraft_bench") as name:
        url = cluster.sqlalchemy_url(name)
        migrating = cluster.local_app(url)
        install_migrations(migrating)
        with migrating.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            db.engine.dispose()
        engine = PostgresSearchEngine(url, search_time_limit=time_limit)
        try:
            report = measure_engine(engine, documents, queries, viewers)
            with psycopg.connect(url.replace("+psycopg", "")) as connection:
                report["table_bytes"] = connection.execute(
                    "SELECT pg_total_relation_size('search_document') + pg_total_relation_size('search_word')"
                ).fetchone()[0]
            return report
        finally:
            engine.close()


# --- measuring ---------------------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50": round(statistics.median(samples), 1),
            "p95": round(percentile(samples, 0.95), 1), "max": round(max(samples), 1)}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def time_queries(run: Callable[[str, dict[str, Any], list[str]], tuple[int, int]],
                 queries: list[tuple[str, str, dict[str, Any]]], viewers: list[list[str]]) -> dict[str, Any]:
    for _category, text, filters in queries[:10]:  # warm caches and searchers
        run(text, filters, viewers[0])
    per_category: dict[str, list[float]] = {}
    every: list[float] = []
    totals: list[int] = []
    for n, (category, text, filters) in enumerate(queries):
        tokens = viewers[n % len(viewers)]
        started = time.perf_counter()
        total, _shown = run(text, filters, tokens)
        elapsed = (time.perf_counter() - started) * 1000
        every.append(elapsed)
        totals.append(total)
        per_category.setdefault(category, []).append(elapsed)
    slowest = sorted(zip(every, queries, strict=True), key=lambda x: -x[0])[:8]
    return {
        "all": summary(every),
        "by_kind": {k: summary(v) for k, v in sorted(per_category.items())},
        "slowest": [{"ms": round(ms, 1), "query": q[1][:60], "filters": {k: str(v) for k, v in q[2].items()}}
                    for ms, q in slowest],
        "median_total_hits": statistics.median(totals),
    }


def replaced_by(text: str) -> Callable[[Any], str]:
    """An edit_live_text ``compute`` that gives ``text`` whatever the live document holds."""
    return lambda _live: text


def commit_latency(app: Any, codes: dict[str, Code], people: list[tuple[int, str]], repeats: int) -> dict[str, Any]:
    """Seconds from an ORM commit, and from a co-editing write, to the text being searchable."""
    from codedraft.feedback.models import Comment

    install(app)
    gpai = codes["gpai"]
    clause = db.session.scalars(select(Clause).where(Clause.code_id == gpai.id, Clause.withdrawn.is_(False))).first()
    tokens = [f"code:{gpai.id}"]
    orm, coedit = [], []
    for n in range(repeats):
        word = f"benchmarkword{n}x"
        author_id, category = people[n]
        started = time.perf_counter()
        db.session.add(Comment(code_id=gpai.id, clause_id=clause.id, author_id=author_id, category=category,
                               status="open", body=f"A new comment with {word} in it."))
        db.session.commit()
        while app_search(app, word, {}, tokens)[0] == 0:
            time.sleep(0.005)
        orm.append(time.perf_counter() - started)
    store = store_for(app)
    for n in range(repeats):
        word = f"coeditword{n}x"
        clause = db.session.get(Clause, clause.id)
        started = time.perf_counter()
        store.open(clause)
        store.edit_live_text(clause, replaced_by(f"{clause.body[:2000]} {word}"), user_id=None, origin="bench")
        db.session.commit()
        deadline = started + 10
        while app_search(app, word, {}, tokens)[0] == 0 and time.perf_counter() < deadline:
            time.sleep(0.005)
        coedit.append(time.perf_counter() - started)
        time.sleep(rng_pause(n))
    stop_live_indexer(app)
    return {
        "orm_commit_to_searchable_s": summary([s * 1000 for s in orm]) | {"unit": "ms"},
        "coedit_write_to_searchable_s": summary([s * 1000 for s in coedit]) | {"unit": "ms"},
        "live_indexer_passes": live_indexer(app).passes,
    }


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with the measured number beside it."""
    default = report["embedded_default"]
    every = default["query_ms"]["all"]["p95"]
    phrase = default["query_ms"]["by_kind"].get("phrase", {}).get("p95")
    latency = default["latency"]
    met: dict[str, Any] = {
        "embedded_query_p95_le_50ms": [every <= 50, every],
        "embedded_phrase_p95_le_50ms": [phrase is not None and phrase <= 50, phrase],
        "embedded_build_le_60s": [default["build_s"] <= 60, default["build_s"]],
        "orm_commit_to_searchable_le_1s": [latency["orm_commit_to_searchable_s"]["max"] <= 1000,
                                           latency["orm_commit_to_searchable_s"]["max"]],
        "coedit_to_searchable_le_1s": [latency["coedit_write_to_searchable_s"]["max"] <= 1000,
                                       latency["coedit_write_to_searchable_s"]["max"]],
    }
    postgres = report.get("postgres", {})
    if "query_ms" in postgres:
        met["postgres_query_p95_le_100ms"] = [postgres["query_ms"]["all"]["p95"] <= 100,
                                             postgres["query_ms"]["all"]["p95"]]
    return met


def rng_pause(n: int) -> float:
    """Edits arrive now and then, some inside the debounce window and some after it."""
    return (0.3, 1.2, 0.05, 2.0)[n % 4]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=240)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--latency-repeats", type=int, default=12)
    parser.add_argument("--procs", type=int, default=1, help="Whoosh writer processes for the rebuild")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--backends", default="whoosh,postgres",
                        help="backends measured besides the embedded default (comma-separated)")
    parser.add_argument("--embedded", default="auto", help="SEARCH_BACKEND of the app: auto, sqlite or whoosh")
    args = parser.parse_args()
    args.backends = set(filter(None, args.backends.split(",")))
    if not CORPUS.is_dir():
        sys.exit(f"../shared/corpus not present: {CORPUS}")

    rng = random.Random(2025)
    folder = Path(tempfile.mkdtemp(prefix="codedraft-search-bench-"))
    app = make_app(folder)
    app.config["SEARCH_REBUILD_PROCS"] = args.procs
    app.config["SEARCH_BACKEND"] = args.embedded
    # Other work on the machine inflates every wall-clock number here: the load is recorded.
    report: dict[str, Any] = {"cpu_count": os.cpu_count(), "comments": args.comments,
                              "load_average_at_start": [round(x, 1) for x in os.getloadavg()]}
    try:
        with app.app_context():
            db.create_all()
            started = time.perf_counter()
            codes = import_corpus()
            report["import_corpus_s"] = round(time.perf_counter() - started, 2)
            people = make_people(codes, args.people, rng)
            report["insert_comments_s"] = round(insert_comments(codes, people, args.comments, rng), 2)
            documents = list(indexing.iter_documents())
            report["documents"] = dict(Counter(d.kind for d in documents))

            # The embedded default, through the app as the Office's rebuild runs it (with progress).
            progress_calls: list[int] = []
            started = time.perf_counter()
            indexed = indexing.rebuild_index(progress=lambda done, _total: progress_calls.append(done))
            default = {"backend": type(indexing.search_engine(app)).__name__,
                       "build_s": round(time.perf_counter() - started, 2), "progress_reports": len(progress_calls),
                       "index_bytes": folder_bytes(Path(app.config["SEARCH_INDEX_DIR"]))}
            assert indexed == len(documents)
            queries = build_queries(args.queries, corpus_sentences(), rng)
            reviewer = people[0][0]
            viewers = [
                [f"code:{codes['gpai'].id}", f"code:{codes['gpai'].id}:user:{reviewer}", f"code:{codes['pl'].id}",
                 f"code:{codes['de'].id}"],
                [t for c in codes.values() for t in (f"code:{c.id}", f"code:{c.id}:office")],
            ]
            report["queries"] = len(queries)
            report["query_kinds"] = dict(Counter(kind for kind, _t, _f in queries))
            time_limit = float(app.config.get("SEARCH_TIME_LIMIT", indexing.DEFAULT_SEARCH_TIME_LIMIT_S))
            default |= measure_engine(indexing.search_engine(app), documents, queries, viewers, build=False)
            default["latency"] = commit_latency(app, codes, people, args.latency_repeats)
            report["embedded_default"] = default
            if "whoosh" in args.backends and default["backend"] != "WhooshSearchEngine":
                whoosh = WhooshSearchEngine(folder / "whoosh", search_time_limit=time_limit)
                try:
                    report["whoosh"] = measure_engine(whoosh, documents, queries, viewers)
                    report["whoosh"]["index_bytes"] = folder_bytes(folder / "whoosh")
                finally:
                    whoosh.close()
            if "postgres" in args.backends:
                report["postgres"] = bench_postgres(documents, queries, viewers, time_limit)
            report["targets_met"] = targets(report)
            report["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
            indexing.close_search_engine(app)
            db.session.remove()
            db.engine.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
