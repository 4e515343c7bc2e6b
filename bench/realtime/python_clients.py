"""The Python co-editing clients of bench/soak.py: python-socketio + pycrdt typists and watchers,
spread over several generator processes and several server processes.

Typists type 5 edits/s each (by default) into one clause; every edit carries its send time, and
every other client records send -> arrival. Latencies are comparable between runs of this
generator, not with the Node generator of bench/realtime (bench/realtime_bench.py and
bench/realtime_scaled.py).
"""
from __future__ import annotations

import multiprocessing
import re
import statistics
import threading
import time
from typing import Any

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
