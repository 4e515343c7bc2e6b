"""Benchmark of the Whoosh search engine on the real corpus (+ generated comments).

Run from the project root:
    .venv/bin/python tests/search/bench_search.py [--comments 20000] [--out result.json]

Prints (and optionally writes) JSON: build times, and p50/p95/max for ~50 varied queries
(words, phrases, prefixes, fuzzy terms, fields, boolean operators, hostile input), each run
against a warm engine as a reader of code 1 with a private token.
Not collected by pytest (its name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from codedraft.search.engine import SearchDocument, SearchFilters, SearchQuery  # noqa: E402
from codedraft.search.whoosh_backend import WhooshSearchEngine  # noqa: E402

QUERIES: list[str] = [
    "risk",
    "systemic risk",
    '"systemic risk"',
    '"serious incident"',
    "copyright",
    "transparency",
    "model evaluation",
    "evaluat*",
    "nationa*",
    "transparancy~",
    "robots.txt",
    '"shall not"',
    "cybersecurity measures",
    "chapter:copyright",
    "kind:comment risk",
    "status:accepted",
    "category:academia",
    "author:kowalska",
    "draft:3 risk",
    "clause:II.1.2",
    "safety OR security",
    "risk NOT systemic",
    "copyright AND policy",
    "(risk OR hazard) AND model",
    "whistleblow*",
    "incident reporting timelines",
    "Key Performance Indicator",
    '"key performance indicator"',
    "downstream providers",
    "open-source",
    "training data",
    "compute FLOP",
    "red teaming",
    "external assessors",
    "lodz",
    "securite",
    "the",
    "a*",
    "*",
    "(",
    '"',
    "title:",
    "nofield:x",
    "url: x",
    "AND OR NOT",
    "x" * 10_000,
    "sys*",
    "pro*",
    "documentation form",
    "fine-tuning",
]


def load_corpus() -> list[SearchDocument]:
    spec = importlib.util.spec_from_file_location("search_bench_conftest", HERE / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.load_corpus_documents()


def generated_comments(clauses: list[SearchDocument], count: int, seed: int) -> list[SearchDocument]:
    """Comments made of corpus sentences, spread over clauses, categories and statuses."""
    rng = random.Random(seed)
    sentences = [s.strip() for c in clauses for s in re.split(r"(?<=[.!?])\s+", c.body) if 40 < len(s) < 400]
    categories = ["provider", "academia", "open-source", "civil-society", "rightsholder", "industry", "public-body"]
    statuses = ["open", "addressed", "accepted", "partly-accepted", "rejected", "withdrawn"]
    authors = ["Ann Lee", "Zoë Kowalska", "Jan Łukasz", "Marie Dupont", "Ola Nordmann", "Sam Smith"]
    start = dt.datetime(2024, 11, 14)
    comments = []
    gpai = [c for c in clauses if c.code_id == 1]
    for i in range(count):
        clause = rng.choice(gpai)
        private = rng.random() < 0.3
        comments.append(
            SearchDocument(
                doc_id=f"comment:{i}",
                kind="comment",
                code_id=1,
                chapter=clause.chapter,
                clause_uid=clause.clause_uid,
                clause_number=clause.clause_number,
                clause_title=clause.clause_title,
                draft=clause.draft,
                body=" ".join(rng.sample(sentences, k=rng.randint(1, 4))),
                category=rng.choice(categories),
                status=rng.choice(statuses),
                author=rng.choice(authors),
                created=start + dt.timedelta(minutes=rng.randint(0, 300_000)),
                visibility=[f"user:{rng.randint(1, 500)}"] if private else ["code:1:comments-public"],
            )
        )
    return comments


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(samples), 1), "p95": round(percentile(samples, 0.95), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comments", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    clauses = load_corpus()
    comments = generated_comments(clauses, args.comments, seed=7)
    folder = Path(tempfile.mkdtemp(prefix="codedraft-search-bench-"))
    engine = WhooshSearchEngine(folder / "index")

    started = time.perf_counter()
    engine.rebuild(clauses)
    corpus_build = time.perf_counter() - started
    started = time.perf_counter()
    for first in range(0, len(comments), 5000):
        engine.index(comments[first : first + 5000])
    comments_build = time.perf_counter() - started
    started = time.perf_counter()
    engine.rebuild(clauses + comments)
    full_rebuild = time.perf_counter() - started

    started = time.perf_counter()
    engine.index([(comments or clauses)[0]])
    single_commit = time.perf_counter() - started

    allowed = ["code:1", "code:1:comments-public", "user:17"]
    timings: dict[str, list[float]] = {q[:40]: [] for q in QUERIES}
    engine.search(SearchQuery("warm up", allowed))
    for _ in range(args.repeats):
        for text in QUERIES:
            for grouped in (False,):
                started = time.perf_counter()
                engine.search(SearchQuery(text, allowed, group_by_clause=grouped))
                timings[text[:40]].append((time.perf_counter() - started) * 1000)
    filtered = []
    for text in QUERIES[:20]:
        started = time.perf_counter()
        engine.search(SearchQuery(text, allowed, filters=SearchFilters(draft="3", category="academia")))
        filtered.append((time.perf_counter() - started) * 1000)
    grouped_ms = []
    for text in QUERIES[:20]:
        started = time.perf_counter()
        engine.search(SearchQuery(text, allowed, group_by_clause=True))
        grouped_ms.append((time.perf_counter() - started) * 1000)

    all_samples = [ms for samples in timings.values() for ms in samples]
    slowest = sorted(((max(v), k) for k, v in timings.items()), reverse=True)[:5]
    report = {
        "documents": {"clauses": len(clauses), "comments": len(comments)},
        "build_seconds": {
            "corpus_rebuild": round(corpus_build, 2),
            "comments_in_batches_of_5000": round(comments_build, 2),
            "full_rebuild": round(full_rebuild, 2),
            "single_doc_commit_and_refresh": round(single_commit, 3),
        },
        "query_ms": {
            "queries": len(QUERIES),
            "runs": len(all_samples),
            "p50": round(statistics.median(all_samples), 1),
            "p95": round(percentile(all_samples, 0.95), 1),
            "max": round(max(all_samples), 1),
            "slowest": [(k, round(ms, 1)) for ms, k in slowest],
        },
        "filtered_query_ms": summary(filtered),
        "grouped_query_ms": summary(grouped_ms),
    }
    engine.close()
    shutil.rmtree(folder, ignore_errors=True)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
