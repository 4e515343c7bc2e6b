"""Feedback at scale: a code of 100 clauses and 20,000 comments, one clause holding 2,000.

Measures, through the Flask test client and a signed-in reviewer, the code's feedback overview
(/codes/<slug>/feedback: per-clause counts by category with charts) and the feedback page and
clause page of the 2,000-comment clause. Writes bench/results/feedback.json.

    .venv/bin/python bench/feedback_bench.py [--requests 40]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from codedraft import create_app  # noqa: E402
from codedraft.accounts import operations as accounts  # noqa: E402
from codedraft.codes import operations as codes  # noqa: E402
from codedraft.codes.models import Role  # noqa: E402
from codedraft.collab.store import store_for  # noqa: E402
from codedraft.drafts.operations import publish_draft  # noqa: E402
from codedraft.extensions import db  # noqa: E402
from codedraft.feedback import install  # noqa: E402
from codedraft.feedback import operations as ops  # noqa: E402
from codedraft.feedback.models import Comment  # noqa: E402
from codedraft.markdown import render_markdown  # noqa: E402
from codedraft.timeutil import utcnow  # noqa: E402

CLAUSES = 100
COMMENTS = 20_000
BIG_CLAUSE_COMMENTS = 2_000
PASSWORD = "correct horse battery"
BUDGET_MS = 200.0


def build(app: Any) -> dict[str, Any]:
    rng = random.Random(7)
    categories = [key for key, _label in app.config["STAKEHOLDER_CATEGORIES"]]
    code = codes.create_code("Bench Code")
    group = codes.add_working_group(code, "WG 1")
    chapter = codes.add_chapter(code, "Chapter 1", working_group=group)
    body = " ".join(f"Signatories shall do thing {n} with care 🎯 and report on it." for n in range(30))
    clauses = [codes.add_clause(chapter, kind="measure", number=f"1.{n}", title=f"Measure {n}", body=body)
               for n in range(CLAUSES)]
    draft = publish_draft(code, "First Draft")
    feedback_round = ops.open_round(code, draft, utcnow() + timedelta(days=30))
    reviewer = accounts.create_user("bench@example.test", "Bench Reviewer", PASSWORD)
    accounts.grant_role(reviewer, code, Role.reviewer)
    authors = []
    for n in range(50):
        org = accounts.get_or_create_organisation(f"Org {n}", categories[n % len(categories)])
        authors.append(accounts.create_user(f"a{n}@example.test", f"Author {n}", PASSWORD, organisation=org))
    db.session.commit()

    big = clauses[0]
    store = store_for(app)
    passages = []
    for n in range(20):
        quote = f"thing {n} with care 🎯"
        passages.append(ops.anchor_selection(store, big, quote, None, None, "reading"))
    html = render_markdown("A *considered* comment with [a link](https://example.test).")
    now = utcnow()
    rows = []
    for n in range(COMMENTS):
        clause = big if n < BIG_CLAUSE_COMMENTS else clauses[1 + n % (CLAUSES - 1)]
        author = authors[n % len(authors)]
        row = {"code_id": code.id, "clause_id": clause.id, "round_id": feedback_round.id, "draft_id": draft.id,
               "author_id": author.id, "organisation": author.organisation.name,
               "category": author.organisation.category, "kind": "comment",
               "body": "A *considered* comment with [a link](https://example.test).", "body_html": html,
               "status": rng.choice(["open", "open", "addressed", "rejected"]), "created_at": now,
               "support_count": 0, "reply_count": 0, "hidden": False, "disposition_reason": "", "hidden_reason": ""}
        if clause is big and n % 4 == 0:
            anchor = passages[n % len(passages)]
            row.update(quote=anchor.passage.quote, anchor_start=anchor.passage.start, anchor_end=anchor.passage.end,
                       sticky_start=anchor.sticky_start, sticky_end=anchor.sticky_end, anchor_state="live")
        rows.append(row)
    started = time.perf_counter()
    for chunk in range(0, len(rows), 2_000):
        db.session.execute(insert(Comment), rows[chunk:chunk + 2_000])
    db.session.commit()
    return {"slug": code.slug, "big_uid": big.uid, "insert_s": round(time.perf_counter() - started, 2)}


def measure(client: Any, path: str, count: int, must_contain: str) -> dict[str, float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    assert must_contain in response.get_data(as_text=True)
    timings.sort()
    return {"requests": count, "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1), "max_ms": round(timings[-1], 1),
            "bytes": len(response.get_data())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="profile the 2,000-comment page instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({
            "TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.sqlite3",
            "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://", "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 1024, "SEARCH_INDEX_DIR": f"{folder}/search", "EXPORT_DIR": f"{folder}/exports",
        })
        install(app)
        with app.app_context():
            db.create_all()
            setup = build(app)
            db.session.remove()
        client = app.test_client()
        with app.app_context():
            page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf-token" content="')[1].split('"')[0]
        assert client.post("/login", data={"email": "bench@example.test", "password": PASSWORD,
                                           "csrf_token": token}).status_code == 302
        slug, uid = setup["slug"], setup["big_uid"]
        if "--profile" in sys.argv:
            import cProfile
            import pstats
            path = f"/codes/{slug}/clauses/{uid}/feedback"
            client.get(path)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(10):
                client.get(path)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            return 0
        results = {
            "setup": {"clauses": CLAUSES, "comments": COMMENTS, "big_clause_comments": BIG_CLAUSE_COMMENTS,
                      "bulk_insert_s": setup["insert_s"]},
            "code_overview": measure(client, f"/codes/{slug}/feedback", args.requests, "Comments per clause"),
            "clause_feedback_2000": measure(client, f"/codes/{slug}/clauses/{uid}/feedback", args.requests,
                                            "2000 threads"),
            "clause_page_2000": measure(client, f"/codes/{slug}/clauses/{uid}", args.requests, "2000 threads"),
            "thread_fragment_2000": measure(client, f"/codes/{slug}/clauses/{uid}/feedback?fragment=1",
                                            args.requests, "2000 threads"),
            "budget_p95_ms": BUDGET_MS,
            "load_average_1m_at_end": round(__import__("os").getloadavg()[0], 2),
            "cpus": __import__("os").cpu_count(),
        }
        results["within_budget"] = all(results[key]["p95_ms"] <= BUDGET_MS for key in (
            "code_overview", "clause_feedback_2000", "clause_page_2000", "thread_fragment_2000"))
    out = ROOT / "bench" / "results" / "feedback.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0 if results["within_budget"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
