"""Real-time benchmark scaled out: 1, 2 and 3 CodeDraft processes on PostgreSQL + Redis.

    .venv/bin/python bench/realtime_scaled.py [--typists 20] [--viewers 20] [--seconds 20] [--procs 1,2,3]

Every server is a gunicorn (gunicorn.conf.py) on its own port; clients are spread round-robin
over the processes, so most deliveries cross Redis. Typists (python-socketio + pycrdt, in a few
generator processes) type 5 edits/s each into one clause; every edit carries its send time, and
every other client records send -> arrival. Latencies are comparable between runs of this script
(the same Python generator), not with bench/realtime_bench.py's Node generator.
Results: bench/results/realtime_scaled.json. Needs PostgreSQL and Redis on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "realtime_scaled.json"
STAMP = re.compile(r"⟨(\d+\.\d+)⟩")


def _latency_observer(me: Any, latencies: list[float], lock: threading.Lock) -> Any:
    """A Text observer that times every remote insert carrying a send stamp."""

    def on_change(event: Any, *_: Any) -> None:
        if me._label is not None:
            return  # our own insert
        arrived = time.time()
        for part in event.delta:
            inserted = part.get("insert") if isinstance(part, dict) else None
            if isinstance(inserted, str):
                with lock:
                    latencies.extend((arrived - float(s)) * 1000 for s in STAMP.findall(inserted))

    return on_change


def _client_worker(spec: dict[str, Any], out: Any) -> None:
    """One generator process: connect its clients, type/watch for ``seconds``, report latencies."""
    from tests.scaleout.cluster import Typist

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    clients: list[Typist] = []
    for index, (base, cookie, typing) in enumerate(spec["clients"]):
        client = Typist(base, cookie, f"g{spec['worker']}c{index}")
        client.typing = typing  # type: ignore[attr-defined]

        client.text.observe(_latency_observer(client, latencies, lock))
        try:
            client.connect()
            answer = client.join(spec["clause"])
            if not answer.get("ok") or not client.synced.wait(20):
                errors.append(f"join failed: {answer}")
        except Exception as error:  # noqa: BLE001  (reported, not raised: the run goes on)
            errors.append(f"connect: {error}")
        clients.append(client)
    out.put({"worker": spec["worker"], "ready": True})
    start = spec["start_at"]
    while time.time() < start:
        time.sleep(0.01)
    deadline = start + spec["seconds"]
    typists = [c for c in clients if c.typing]  # type: ignore[attr-defined]
    period = 1.0 / spec["rate"]
    tick = start
    while time.time() < deadline:
        for typist in typists:
            stamp = f"⟨{time.time():.4f}⟩"
            typist._label = stamp
            try:
                with typist._lock:
                    typist.text.insert(len(str(typist.text).encode()), stamp)
            finally:
                typist._label = None
            typist.typed.append(stamp)
        tick += period
        time.sleep(max(0.0, tick - time.time()))
    time.sleep(spec.get("settle", 3))
    refused = sum(len(c.refused) for c in clients)
    unacked = sum(len(c.typed) - len(c.acked) for c in typists)
    values = [c.value() for c in clients if c.sio.connected]
    for client in clients:
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass
    out.put({"worker": spec["worker"], "latencies": latencies, "errors": errors, "refused": refused,
             "unacked": unacked, "sent": sum(len(t.typed) for t in typists), "values": values})


def run_clients(bases: list[str], cookies: list[str], clause_uid: str, *, typists: int, viewers: int,
                seconds: float, rate: float = 5.0, workers: int = 4, settle: float = 3.0,
                progress: Any = None) -> dict[str, Any]:
    """Spread ``typists + viewers`` clients over ``bases`` and ``workers`` processes; measure."""
    everyone = [(bases[i % len(bases)], cookies[i % len(cookies)], i < typists) for i in range(typists + viewers)]
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 10 + 0.15 * len(everyone)
    specs = [{"worker": w, "clients": everyone[w::workers], "clause": clause_uid, "seconds": seconds,
              "rate": rate, "start_at": start_at, "settle": settle} for w in range(workers)]
    procs = [context.Process(target=_client_worker, args=(spec, out), daemon=True) for spec in specs]
    for proc in procs:
        proc.start()
    reports: list[dict[str, Any]] = []
    deadline = time.time() + seconds + 120 + 0.2 * len(everyone)
    while len(reports) < workers and time.time() < deadline:
        try:
            message = out.get(timeout=1)
        except Exception:  # noqa: BLE001  (queue.Empty)
            if progress:
                progress()
            continue
        if "latencies" in message:
            reports.append(message)
        if progress:
            progress()
    for proc in procs:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    latencies = sorted(x for r in reports for x in r["latencies"])
    from collections import Counter

    texts = Counter(v for r in reports for v in r["values"])
    majority, _ = texts.most_common(1)[0] if texts else ("", 0)

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else None

    return {"clients": len(everyone), "typists": typists, "rate_per_typist": rate, "seconds": seconds,
            "deliveries": len(latencies), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.mean(latencies), 1) if latencies else None,
            "sent": sum(r["sent"] for r in reports), "unacked": sum(r["unacked"] for r in reports),
            "refused": sum(r["refused"] for r in reports),
            "errors": [e for r in reports for e in r["errors"]][:10],
            "workers_reported": len(reports), "converged": len(texts) == 1,
            "clients_differing_from_majority": sum(n for v, n in texts.items() if v != majority),
            "final_text": majority}


def prepare(app: Any, people: int) -> tuple[str, int, list[str]]:
    """A code, one clause, ``people`` chairs; returns (clause uid, clause id, session cookies)."""
    from codedraft.accounts import operations as accounts
    from codedraft.codes import operations as codes
    from codedraft.codes.models import Role
    from codedraft.extensions import db
    from tests.scaleout.cluster import PASSWORD, session_cookie

    with app.app_context():
        code = codes.create_code(f"Bench Code {time.time():.0f}")
        clause = codes.add_clause(codes.add_chapter(code, "Bench"), kind="section", title="Bench", body="Bench clause.")
        emails = []
        for n in range(people):
            user = accounts.create_user(f"typist{n}-{time.time_ns()}@bench.test", f"Typist {n}", PASSWORD)
            accounts.grant_role(user, code, Role.chair)
            emails.append(user.email)
        db.session.commit()
        uid, clause_id = clause.uid, clause.id
        db.session.remove()
    return uid, clause_id, [session_cookie(app, email) for email in emails]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--typists", type=int, default=20)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--procs", default="1,2,3")
    args = parser.parse_args()

    from codedraft.extensions import db
    from tests.scaleout import cluster as cl

    problem = cl.services_problem()
    if problem:
        raise SystemExit(problem)
    results: dict[str, Any] = {"machine_cores": multiprocessing.cpu_count(), "runs": {}}
    with cl.fresh_database("codedraft_bench") as name, tempfile.TemporaryDirectory() as workdir:
        uri = cl.sqlalchemy_url(name)
        app = cl.local_app(uri)
        with app.app_context():
            db.create_all()
            db.session.remove()
        for count in [int(n) for n in args.procs.split(",")]:
            uid, clause_id, cookies = prepare(app, 20)
            servers = cl.Cluster(uri, Path(workdir), cl.redis_url())
            try:
                bases = [servers.add(threads=args.typists + args.viewers + 16).base for _ in range(count)]
                run = run_clients(bases, cookies, uid, typists=args.typists, viewers=args.viewers,
                                  seconds=args.seconds)
            finally:
                servers.close()
            stored = cl.stored_state(app, clause_id)
            run["stored_equals_clients"] = stored[0] == run.pop("final_text")
            run["stored_twice"] = stored[2]
            results["runs"][f"{count}_processes"] = run
            print(f"{count} process(es): {json.dumps(run)}", flush=True)
        with app.app_context():
            db.engine.dispose()
    base = results["runs"].get("1_processes", {}).get("p99_ms")
    results["gain_p99_vs_1_process"] = {k: round(base / v["p99_ms"], 2) for k, v in results["runs"].items()
                                        if base and v.get("p99_ms")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
