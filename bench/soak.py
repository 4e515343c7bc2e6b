"""Soak: 100 connected clients on 2 CodeDraft processes (PostgreSQL + Redis) for a while.

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 100] [--typists 10] [--procs 2]

Typists type 2 edits/s each; the rest watch. Every 10 s the resident memory of each server
process (gunicorn master + worker) is sampled; the report gives the slope (MB/min, least
squares over the second half of the run, after warm-up), errors, refused or unacknowledged edits,
and whether the text rebuilt from the database equals every client's. bench/results/soak.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

RESULTS = ROOT / "bench" / "results" / "soak.json"
SAMPLE_EVERY = 10.0


def rss_mb(pid: int) -> float:
    """Resident memory of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope_per_minute(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return None
    return 60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / var


class MemorySampler:
    def __init__(self, servers: list[Any]) -> None:
        self.servers = servers
        self.samples: dict[int, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def start(self) -> None:
        self._start = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while True:
            elapsed = time.monotonic() - self._start
            for index, server in enumerate(self.servers):
                try:
                    total = sum(rss_mb(pid) for pid in server.pids())
                except OSError:
                    continue
                self.samples.setdefault(index, []).append((elapsed, round(total, 1)))
            if self._stop.wait(SAMPLE_EVERY):
                return

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(5)
        report = {}
        for index, samples in self.samples.items():
            late = samples[len(samples) // 2:]
            slope = slope_per_minute(late)
            report[f"process_{index}"] = {"samples_mb": [m for _, m in samples],
                                          "slope_mb_per_min_second_half": None if slope is None else round(slope, 3)}
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--typists", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--procs", type=int, default=2)
    args = parser.parse_args()

    from bench.realtime.python_clients import prepare, run_clients

    from codedraft.extensions import db
    from tests.scaleout import cluster as cl

    problem = cl.services_problem()
    if problem:
        raise SystemExit(problem)
    with cl.fresh_database("codedraft_soak") as name, tempfile.TemporaryDirectory() as workdir:
        uri = cl.sqlalchemy_url(name)
        app = cl.local_app(uri)
        with app.app_context():
            db.create_all()
            db.session.remove()
        uid, clause_id, cookies = prepare(app, 20)
        servers = cl.Cluster(uri, Path(workdir), cl.redis_url())
        try:
            for _ in range(args.procs):
                servers.add(threads=args.clients + 32)
            sampler = MemorySampler(servers.servers)
            sampler.start()
            run = run_clients([s.base for s in servers.servers], cookies, uid, typists=args.typists,
                              viewers=args.clients - args.typists, seconds=args.minutes * 60, rate=args.rate,
                              workers=4, settle=5)
            memory = sampler.stop()
            logs = "".join(Path(workdir, f"server-{s.port}.log").read_text() for s in servers.servers)
        finally:
            servers.close()
        stored, rows, twice = cl.stored_state(app, clause_id)
        with app.app_context():
            db.engine.dispose()
    final = run.pop("final_text")
    report = {"minutes": args.minutes, "processes": args.procs, **run, "memory": memory,
              "stored_rows": rows, "stored_twice": twice, "stored_equals_clients": stored == final,
              "server_log_errors": [line for line in logs.splitlines()
                                    if "Traceback" in line or "ERROR" in line][:20]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "memory"}, indent=1))
    print(json.dumps({k: v["slope_mb_per_min_second_half"] for k, v in memory.items()}))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
