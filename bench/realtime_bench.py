"""Real-time co-editing benchmark: CodeDraft against the Yjs reference server, same loads, same machine.

    .venv/bin/python bench/realtime_bench.py [--quick] [--only codedraft|reference]

Each server runs in its own process pinned to CPU 0; the Node load generator
(bench/realtime/loadgen.mjs) runs pinned to CPU 1 and reports its own CPU use, since a saturated
generator inflates latencies. Server CPU and memory are sampled with psutil during each load.
Results: bench/results/realtime.json (CodeDraft, reference, and CodeDraft/reference ratios).

Loads (targets in brackets):
  typists_50        50 typists at 5 edits/s in one clause: p50/p99 delivery latency   [p99 <= 25 ms, <= 5x ref]
  connected_200     200 connected, 10 typing at 5 edits/s                               [p99 <= 25 ms, <= 2x ref]
  viewers_1000      1,000 viewers across one code (50 clauses): server memory          [<= 150 MB]
  open_10k          opening a clause with 10,000 stored updates: time to first sync    [<= 25 ms]
                    (as the store leaves them: compacted every 400 updates)
  open_10k_uncompacted  the same with no snapshot at all: the worst case               [<= 100 ms]
  acked_throughput  many clients sending as fast as acks allow: updates/s              [>= 5,000/s]
The reference server (@y/websocket-server 0.1.1) keeps documents in memory only: it neither
stores nor acknowledges, so its "throughput" is what it relays, and its "open" is a warm
document held in memory by another client.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "realtime.json"
LOADGEN = ROOT / "bench" / "realtime" / "loadgen.mjs"
REFERENCE = ROOT / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
PASSWORD = "bench password 2026"
# The clients share these accounts' cookies round-robin. One account may hold at most
# COLLAB_SOCKETS_PER_ACCOUNT (32) connections in a process, so 1,000 viewers need at least 32
# people; 50 hold 20 sockets each, about a person's tabs and devices.
PEOPLE = 50
# The clauses the throughput load's senders are spread over.
THROUGHPUT_CLAUSES = 10
SERVER_CPU, GENERATOR_CPU = 0, 1
# Issue #15's targets: load -> (metric, comparison, target, at most this many times the reference).
TARGETS: dict[str, tuple[str, str, float, float | None]] = {
    "typists_50": ("p99_ms", "<=", 25, 5), "connected_200": ("p99_ms", "<=", 25, 2),
    "viewers_1000": ("server_rss_mb", "<=", 150, None), "open_10k": ("median_ms", "<=", 25, None),
    "open_10k_uncompacted": ("median_ms", "<=", 100, None),
    "acked_throughput": ("updates_per_s", ">=", 5000, None)}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(cpu: int) -> Any:
    return lambda: os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


# --- the CodeDraft database ---------------------------------------------------------------------


def prepare_codedraft(database_url: str, workdir: Path, quick: bool,
                      throughput_clauses: int = THROUGHPUT_CLAUSES) -> dict[str, Any]:
    """Schema, 20 chairs, one code with the clauses every load uses; 10k updates in the open_10k clauses.

    ``database_url`` is an empty database (a SQLite file to be, or a PostgreSQL database);
    ``workdir`` holds the search index and exports. Returns what the servers and loads need.
    ``throughput_clauses``: how many clauses to make for the throughput load (its room list; a
    caller may make more and choose :data:`THROUGHPUT_CLAUSES` of them, as realtime_scaled.py does).
    """
    from pycrdt import Doc, Text
    from sqlalchemy import insert

    from codedraft import create_app
    from codedraft.accounts import operations as accounts
    from codedraft.codes import operations as codes
    from codedraft.codes.models import Role
    from codedraft.collab.models import ClauseUpdate
    from codedraft.config import database_url as driver_url
    from codedraft.extensions import db
    from codedraft.search.indexing import close_search_engine
    from codedraft.timeutil import utcnow

    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": driver_url(database_url),
                      "SEARCH_INDEX_DIR": str(workdir / "search"), "EXPORT_DIR": str(workdir / "exports"),
                      "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://",
                      "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024})
    rooms: dict[str, list[str]] = {}
    with app.app_context():
        db.create_all()
        code = codes.create_code("Benchmark Code")
        emails = []
        for n in range(PEOPLE):
            user = accounts.create_user(f"typist{n}@bench.test", f"Typist {n}", PASSWORD)
            accounts.grant_role(user, code, Role.chair)
            emails.append(user.email)

        def clauses(name: str, count: int, body: str = "") -> list[str]:
            chapter = codes.add_chapter(code, name)
            made = [codes.add_clause(chapter, kind="section", title=f"{name} {i}", body=body) for i in range(count)]
            db.session.flush()
            return [c.uid for c in made]

        rooms["typists_50"] = clauses("Typists", 1)
        rooms["connected_200"] = clauses("Connected", 1)
        rooms["viewers_1000"] = clauses("Viewers", 50, "A clause that a thousand people read at once.")
        rooms["acked_throughput"] = clauses("Throughput", throughput_clauses)
        open_count = 3 if quick else 5
        rooms["open_10k"] = clauses("Open", open_count)
        rooms["open_10k_uncompacted"] = clauses("Open uncompacted", open_count)
        db.session.commit()
        from sqlalchemy import select

        from codedraft.codes.models import Clause
        from codedraft.collab.models import ClauseSnapshot
        from codedraft.collab.store import SNAPSHOT_EVERY

        for uid in rooms["open_10k"] + rooms["open_10k_uncompacted"]:
            clause = db.session.scalar(select(Clause).where(Clause.uid == uid))
            doc: Doc[Text] = Doc()
            body = doc.get("body", type=Text)
            rows = []
            for i in range(10_000):
                before = doc.get_state()
                body.insert(len(str(body)) if i % 50 == 0 else i, "w")  # mostly appends, some mid-text
                rows.append({"clause_id": clause.id, "user_id": None, "update": doc.get_update(before),
                             "created_at": utcnow(), "origin": "editor"})
            ids = db.session.scalars(insert(ClauseUpdate).returning(ClauseUpdate.id, sort_by_parameter_order=True),
                                     rows).all()
            clause.body = str(body)
            if uid in rooms["open_10k"]:
                # What the store leaves on disk after typing these 10,000 updates: it compacts every
                # SNAPSHOT_EVERY updates, so the log ends in a snapshot (10,000 is a multiple of 400).
                compacted = len(ids) // SNAPSHOT_EVERY * SNAPSHOT_EVERY
                db.session.add(ClauseSnapshot(clause_id=clause.id, upto_update_id=ids[compacted - 1],
                                              state=doc.get_update()))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    close_search_engine(app)  # its own pool, on PostgreSQL: the database is copied from next
    return {"database_url": database_url, "workdir": workdir, "emails": emails, "rooms": rooms}


# --- servers ------------------------------------------------------------------------------------


class Server:
    """A server process, pinned to ``cpu`` unless it is None; started and answering ``probe``."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, probe: str,
                 cpu: int | None = SERVER_CPU) -> None:
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        preexec_fn=None if cpu is None else pinned(cpu))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(probe, timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            log = Path(self.log.name).read_text()[-2000:]
            self.stop()
            raise RuntimeError(f"server did not start: {log}")
        # gunicorn: the master and its worker (which holds the app); CPU and memory are summed.
        self.processes = self._tree()

    def _tree(self) -> list[psutil.Process]:
        try:
            master = psutil.Process(self.process.pid)
            return [master, *master.children(recursive=True)]
        except psutil.Error:
            return []

    def rss_mb(self) -> float:
        return sum(float(p.memory_info().rss) for p in self.processes) / 2**20

    def pss_mb(self) -> float:
        """Proportional set size, summed: a page the master and its worker share (the
        interpreter, libraries, what the fork left untouched) counts once, split between them,
        where the RSS sum counts it twice. Reported beside the RSS; the target is judged on RSS."""
        return sum(float(p.memory_full_info().pss) for p in self.processes) / 2**20

    def cpu_percent(self) -> float:
        return sum(p.cpu_percent(None) for p in self.processes)

    def cpu_seconds(self) -> float:
        """User and system CPU seconds used so far by the server's processes."""
        total = 0.0
        for process in self.processes:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        for process in reversed(getattr(self, "processes", None) or self._tree()):
            try:
                process.kill()
            except psutil.Error:
                pass
        self.process.kill()
        self.process.wait(10)
        self.log.close()


def codedraft_env(prepared: dict[str, Any], port: int, redis_url: str | None = None) -> dict[str, str]:
    """The environment of one benchmark server: the bench app (HTTP rate limits off) on the
    prepared database; every process shares SECRET_KEY, so a cookie signed by one is read by all."""
    env = {**os.environ, "SECRET_KEY": "bench", "DATABASE_URL": prepared["database_url"],
           "PYTHONPATH": str(ROOT), "CODEDRAFT_BENCH_APP": "1", "CODEDRAFT_BIND": f"127.0.0.1:{port}",
           "CODEDRAFT_LOG_LEVEL": "error", "CODEDRAFT_SEARCH_DIR": str(prepared["workdir"] / "search"),
           "CODEDRAFT_EXPORT_DIR": str(prepared["workdir"] / "exports")}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


GUNICORN = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
            "bench.realtime.serve_codedraft:app"]


def sign_in(base: str, email: str) -> str:
    """Sign in through the login form of the server at ``base``; the Cookie header to send."""
    from tests.support.live import cookie_header, http_sign_in

    return cookie_header(http_sign_in(base, email, PASSWORD))


def start_codedraft(prepared: dict[str, Any], server_kind: str = "gunicorn") -> tuple[Server, dict[str, Any]]:
    """The production server (gunicorn's gevent worker, one process) or, with ``server_kind``
    "werkzeug", the development server's threads."""
    port = free_port()
    env = codedraft_env(prepared, port)
    if server_kind == "gunicorn":
        command = GUNICORN
    else:
        command = [sys.executable, str(ROOT / "bench" / "realtime" / "serve_codedraft.py"), "--port", str(port)]
    server = Server(command, env, port, f"http://127.0.0.1:{port}/login")
    base = f"http://127.0.0.1:{port}"
    cookies = [sign_in(base, email) for email in prepared["emails"]]
    return server, {"target": "codedraft", "url": base, "cookies": cookies}


def start_reference() -> tuple[Server, dict[str, Any]]:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    server = Server(["node", str(REFERENCE)], env, port, f"http://127.0.0.1:{port}/")
    return server, {"target": "yws", "url": f"ws://127.0.0.1:{port}"}


# --- running a load -----------------------------------------------------------------------------


class Sampler:
    """Samples a server's CPU (% of one core) and RSS every 0.5 s between start() and stop(), and
    counts the CPU seconds (psutil cpu_times, user + system) its processes used in between.

    ``server`` is anything with ``cpu_percent()`` and ``rss_mb()``: one server or a group of them.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.cpu: list[float] = []
        self.rss: list[float] = []
        self.pss: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.server.cpu_percent()
        self._cpu_seconds_at_start = self.server.cpu_seconds()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.cpu.append(self.server.cpu_percent())
                self.rss.append(self.server.rss_mb())
                if hasattr(self.server, "pss_mb"):
                    self.pss.append(self.server.pss_mb())
            except psutil.Error:
                return

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(2)
        start = getattr(self, "_cpu_seconds_at_start", None)
        used = self.server.cpu_seconds() - start if start is not None else None
        return {"server_cpu_s": round(used, 3) if used is not None else None,
                "server_cpu_pct": round(statistics.mean(self.cpu), 1) if self.cpu else None,
                "server_rss_mb": round(max(self.rss), 1) if self.rss else round(self.server.rss_mb(), 1),
                **({"server_pss_mb": round(max(self.pss), 1)} if self.pss else {})}


def run_load(server: Any, base_config: dict[str, Any], load: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
    """Run the generator; sample the server from its "ready" line to its "measured" line (the end
    of the measured window, where there is one) or its result."""
    config = {**base_config, **load}
    generator = subprocess.Popen(["node", str(LOADGEN), json.dumps(config)], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, preexec_fn=pinned(GENERATOR_CPU))
    sampler = Sampler(server)
    result: dict[str, Any] = {}
    usage: dict[str, Any] | None = None
    deadline = time.monotonic() + timeout
    assert generator.stdout is not None
    for line in generator.stdout:
        event = json.loads(line)
        if event["event"] == "ready":
            sampler.start()
        elif event["event"] == "measured":
            usage = sampler.stop()
        else:
            result = event
            break
        if time.monotonic() > deadline:
            break
    try:
        generator.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        generator.kill()
        result = {"event": "error", "error": "generator timed out"}
    if usage is None:
        sampled = sampler._thread.is_alive() or sampler.cpu
        usage = sampler.stop() if sampled else {"server_rss_mb": round(server.rss_mb(), 1)}
    if result.get("event") == "error" or not result:
        stderr = generator.stderr.read() if generator.stderr else ""
        result = {"error": (result.get("error") or stderr)[-1500:]}
    result.pop("event", None)
    return {**result, **usage}


def loads(rooms: dict[str, list[str]], quick: bool) -> dict[str, dict[str, Any]]:
    seconds = 10 if quick else 20
    return {
        "typists_50": {"mode": "latency", "rooms": rooms["typists_50"], "typists": 50, "viewers": 0, "rate": 5,
                       "duration": seconds, "warmup": 3},
        "connected_200": {"mode": "latency", "rooms": rooms["connected_200"], "typists": 10, "viewers": 190,
                          "rate": 5, "duration": seconds, "warmup": 3},
        "viewers_1000": {"mode": "viewers", "rooms": rooms["viewers_1000"], "viewers": 1000, "hold": 5},
        "open_10k": {"mode": "open", "rooms": rooms["open_10k"]},
        # The worst case: 10,000 updates and no snapshot at all (a log written by something other
        # than the store); the first open replays them all and compacts.
        "open_10k_uncompacted": {"mode": "open", "rooms": rooms["open_10k_uncompacted"]},
        "acked_throughput": {"mode": "throughput", "rooms": rooms["acked_throughput"], "senders": 150,
                             "perSocketRate": 50, "duration": seconds},
    }


def chosen(all_loads: dict[str, dict[str, Any]], names: list[str] | None) -> dict[str, dict[str, Any]]:
    return {name: load for name, load in all_loads.items() if not names or name in names}


def profiled(server: Server, out: Path | None, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy recording the server's worker (the process holding the app) into ``out``/``name``.folded
    (collapsed stacks: flamegraph.pl or speedscope draw them)
    until it is stopped; None without ``out``."""
    if out is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    worker = server.processes[-1].pid
    return subprocess.Popen(["py-spy", "record", "--pid", str(worker), "--rate", "200", "--nonblocking",
                             "--format", "raw", "--output", str(out / f"{name}.folded")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=pinned(GENERATOR_CPU))


def bench_codedraft(prepared: dict[str, Any], quick: bool, server_kind: str = "gunicorn",
                    names: list[str] | None = None, profile: Path | None = None) -> dict[str, Any]:
    """Each load gets a freshly started server, so one load's backlog cannot distort the next."""
    import signal

    results: dict[str, Any] = {}
    for name, load in chosen(loads(prepared["rooms"], quick), names).items():
        server, base = start_codedraft(prepared, server_kind)
        try:
            print(f"codedraft {name} ...", flush=True)
            recorder = profiled(server, profile, name)
            results[name] = run_load(server, base, load)
            if recorder is not None:
                recorder.send_signal(signal.SIGINT)
                recorder.wait(60)
            if name == "open_10k":
                # Warm: the same clauses again, now held in memory (what the reference server measures).
                results["open_10k_warm"] = run_load(server, base, load)
            print(f"  {results[name]}", flush=True)
        finally:
            server.stop()
    return results


def bench_reference(prepared: dict[str, Any], quick: bool, names: list[str] | None = None) -> dict[str, Any]:
    server, base = start_reference()
    results: dict[str, Any] = {}
    try:
        for name, load in chosen(loads(prepared["rooms"], quick), names).items():
            if name == "open_10k_uncompacted":
                continue  # the reference server stores nothing, so it has no such case
            print(f"reference {name} ...", flush=True)
            if name == "open_10k":
                # Documents live in memory only while a client holds them: a filler writes 10,000
                # updates per room and stays connected while the openings are timed.
                filler = subprocess.Popen(["node", str(LOADGEN), json.dumps({**base, "mode": "fill",
                                          "rooms": load["rooms"], "fillUpdates": 10_000, "hold": 60})],
                                          cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=pinned(GENERATOR_CPU))
                assert filler.stdout is not None
                filler.stdout.readline()  # ready
                results[name] = run_load(server, base, load)
                filler.kill()
                filler.wait()
            else:
                results[name] = run_load(server, base, load)
            print(f"  {results[name]}", flush=True)
    finally:
        server.stop()
    return results


def meets(result: dict[str, Any], metric: str, op: str, target: float) -> bool | None:
    """Whether a load's ``metric`` meets the target: None when the load gave no number, False
    when the load failed (memory sampled while the viewers could not all join meets nothing)."""
    value = result.get(metric)
    if not isinstance(value, int | float):
        return None
    if "error" in result:
        return False
    return {"<=": value <= target, "<": value < target, ">=": value >= target}[op]


def compare(ours: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """CodeDraft / reference for the headline number of each load (and whether the target is met)."""
    summary: dict[str, Any] = {}
    for name, (metric, op, target, max_ratio) in TARGETS.items():
        mine = (ours.get(name) or {}).get(metric)
        theirs = (reference.get(name) or {}).get(metric)
        ratio = round(mine / theirs, 2) if isinstance(mine, int | float) and isinstance(theirs, int | float) \
            and theirs else None
        met = meets(ours.get(name) or {}, metric, op, target)
        if met and max_ratio is not None:  # unknown when the reference gave no number
            met = ratio <= max_ratio if ratio is not None else None
        summary[name] = {"metric": metric, "target": f"{op} {target}" + (f" and <= {max_ratio}x the reference"
                                                                          if max_ratio else ""),
                         "codedraft": mine, "reference": theirs, "ratio_codedraft_to_reference": ratio,
                         "target_met": met}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 s loads, 3 clauses to open")
    parser.add_argument("--only", choices=["codedraft", "reference"])
    parser.add_argument("--server", choices=["gunicorn", "werkzeug"], default="gunicorn",
                        help="CodeDraft's production server (gunicorn gevent worker) or the development one")
    parser.add_argument("--loads", help="comma-separated load names to run (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the results JSON")
    parser.add_argument("--profile", type=Path,
                        help="record a py-spy flame graph of CodeDraft per load into this folder")
    options = parser.parse_args()
    names = options.loads.split(",") if options.loads else None
    started = time.monotonic()
    # Latencies here depend on what else the machine runs: the report says how busy it was.
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="codedraft-bench-") as tmp:
        prepared = prepare_codedraft(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", Path(tmp), options.quick)
        ours = (bench_codedraft(prepared, options.quick, options.server, names, options.profile)
                if options.only != "reference" else {})
        reference = bench_reference(prepared, options.quick, names) if options.only != "codedraft" else {}
    report = {
        "machine": {"cpus": os.cpu_count(), "server_cpu": SERVER_CPU, "generator_cpu": GENERATOR_CPU,
                    "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "python": sys.version.split()[0], "node": subprocess.run(["node", "--version"], capture_output=True,
                                                                             text=True).stdout.strip()},
        "reference_server": "@y/websocket-server 0.1.1 (in-memory, no persistence, no acknowledgement)",
        "codedraft_server": {
            "gunicorn": "gunicorn, one gevent worker (gunicorn.conf.py), SQLite",
            "werkzeug": "Werkzeug development server, a thread per connection, SQLite",
        }[options.server],
        "codedraft": ours, "reference": reference, "summary": compare(ours, reference),
        "seconds": round(time.monotonic() - started, 1),
        "notes": "generator_cpu is the Node load generator's CPU as a fraction of one core; near 1.0 it is the "
                 "bottleneck and latencies include its queueing.",
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"written to {options.output} in {report['seconds']} s")


if __name__ == "__main__":
    main()
