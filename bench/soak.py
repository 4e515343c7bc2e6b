"""Soak: 100 connected clients on 2 CodeDraft processes (PostgreSQL + Redis) for a while.

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 100] [--typists 10] [--rate 2] [--procs 2]
                                   [--probe-memory DIR]

The clients are the Node load generator of the realtime benchmarks (bench/realtime/loadgen.mjs,
latency mode), cheap enough to keep 100 sockets honest on 2 cores: typists type ``--rate`` edits/s
each into one clause, the rest watch, and every receiver times every edit. Connection i goes to
process i mod N. The database is a fresh PostgreSQL one built by the migrations (so search runs
on PostgreSQL, as in production). While the load is measured, the resident memory of each server
process (gunicorn master + worker) is sampled every 10 s. The report gives the latency (overall
and per minute), edits not stored, connections lost without the client closing them, whether
every client ended with one text and whether the database (clause body and update log) holds it,
and the memory slope (MB/min, least squares over the second half). bench/results/soak.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scaleout import cluster as cl  # noqa: E402  (after the path is set)

RESULTS = ROOT / "bench" / "results" / "soak.json"
LOADGEN = ROOT / "bench" / "realtime" / "loadgen.mjs"
SAMPLE_EVERY = 10.0
PEOPLE = 20  # chairs signed in; the clients share their cookies round-robin
WARMUP_S = 30  # a run shorter than a minute warms up for half its length
SETTLE_S = 5
WINDOW_S = 60
# Beyond the run's own length: opening the sockets, waiting for acknowledgements, settling.
GENERATOR_GRACE_S = 300
PROBE_LATEST = ("rss_mb", "anon_mb", "python_blocks", "gc_objects", "malloc.in_use_mb", "malloc.held_free_mb",
                "document_state_bytes", "open_clauses", "engineio_sockets")
PROBE_EVERY = 30
# After the clients leave: long enough for the idle sweep (5 s with the probe) and a probe record.
AFTER_LEAVING_S = PROBE_EVERY + 15
PROBE_SLOPES = ("rss_mb", "python_blocks", "gc_objects", "malloc.in_use_mb")
NOTES = [
    "Clients: the Node load generator (bench/realtime/loadgen.mjs, latency mode), one process, "
    "connection i to server process i mod N; the first `typists` clients type, the rest watch.",
    "Latency: send -> arrival at every other client, after a 30 s warm-up; `windows` groups the "
    "deliveries by the minute their edit was sent (start_s from the end of the warm-up).",
    "`disconnects`: connections that ended without the generator closing them (Socket.IO's reason); "
    "a client that drops out is also counted in `distinct_texts`, because it stops receiving.",
    "Convergence: every client applies all it received; `clients_converged` needs one text held by "
    "every client, and body/log_equals_clients compare it with the clause's body column and the text "
    "rebuilt from its update log in PostgreSQL.",
    "Memory: VmRSS of each gunicorn master + worker every 10 s during the measured run; the slope is "
    "least squares over the second half. `probe` (with --probe-memory) reads the server's own probe "
    "(bench/realtime/memory_probe.py, a record every 30 s from the server's start): the first record "
    "with clients connected (warm), the last connected one, slopes over the second half of the "
    "connected records, and the last record 45 s after everyone left, once the idle sweep "
    "(CODEDRAFT_IDLE_SECONDS=5 in this run) has dropped the clause document: what a leak would leave behind.",
]


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
    """Samples each server's resident memory in a thread, so the soak's loop only reads the generator."""

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


def probe_env(folder: Path | None, index: int) -> dict[str, str]:
    """The environment that makes server ``index`` the memory-probing app (none without a folder)."""
    if folder is None:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"probe-{index}.jsonl").unlink(missing_ok=True)
    return {"CODEDRAFT_WSGI_APP": "bench.realtime.memory_probe:app",
            "CODEDRAFT_PROBE_FILE": str((folder / f"probe-{index}.jsonl").resolve()),
            "CODEDRAFT_PROBE_EVERY": str(PROBE_EVERY),
            # Everyone leaves at the end: the clause should leave memory soon after, so the last
            # records show what stays once its document is gone (a leak would).
            "CODEDRAFT_IDLE_SECONDS": "5", "CODEDRAFT_SWEEP_SECONDS": "5"}


# --- the database -------------------------------------------------------------------------------


def migrate(uri: str) -> None:
    """Build the schema with the migrations, not create_all(): only they make PostgreSQL's search
    tables, so the servers search as in production."""
    from flask_migrate import upgrade  # type: ignore[import-untyped]

    from codedraft.cli import install_migrations
    from codedraft.extensions import db

    app = cl.local_app(uri)
    install_migrations(app)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


def prepare(app: Any, people: int) -> tuple[str, int, list[str]]:
    """A code, one clause, ``people`` chairs; returns (clause uid, clause id, session cookies).

    The clause starts empty: the generator's clients never ask for the server's state (no step 1),
    so a stored body would be in PostgreSQL's text and in none of theirs. Chairs, because they may
    edit every clause; several, so the clients are not all one person's sessions.
    """
    from codedraft.accounts import operations as accounts
    from codedraft.codes import operations as codes
    from codedraft.codes.models import Role
    from codedraft.extensions import db

    with app.app_context():
        code = codes.create_code(f"Soak Code {time.time():.0f}")
        chapter = codes.add_chapter(code, "Soak")
        clause = codes.add_clause(chapter, kind="section", title="Soak", body="")
        emails = []
        for n in range(people):
            person = accounts.create_user(f"soak{n}-{time.time_ns()}@bench.test", f"Soak typist {n}", cl.PASSWORD)
            accounts.grant_role(person, code, Role.chair)
            emails.append(person.email)
        db.session.commit()
        uid, clause_id = clause.uid, clause.id
        db.session.remove()
    return uid, clause_id, [cl.session_cookie(app, email) for email in emails]


# --- the load -----------------------------------------------------------------------------------


def rounded(result: dict[str, Any]) -> dict[str, Any]:
    """The generator's figures as the report shows them: ms to 0.1, CPU share to 0.001."""
    def ms(value: Any) -> Any:
        return round(value, 1) if isinstance(value, float) else value

    shown = {key: ms(result.get(key)) for key in ("p50_ms", "p99_ms", "max_ms")}
    shown["windows"] = [{key: ms(value) for key, value in window.items()} for window in result.get("windows") or []]
    cpu = result.get("generator_cpu")
    shown["generator_cpu"] = round(cpu, 3) if isinstance(cpu, float) else cpu
    return shown


def loadgen_config(args: argparse.Namespace, bases: list[str], cookies: list[str], uid: str) -> dict[str, Any]:
    """The generator's latency load for this soak (see the header of loadgen.mjs)."""
    return {"target": "codedraft", "urls": bases, "cookies": cookies, "mode": "latency", "rooms": [uid],
            "typists": args.typists, "viewers": args.clients - args.typists, "rate": args.rate,
            "duration": args.minutes * 60, "warmup": min(WARMUP_S, args.minutes * 30), "settle": SETTLE_S,
            "window": WINDOW_S}


def read_events(stdout: IO[str], sampler: MemorySampler) -> tuple[dict[str, Any], dict[str, Any]]:
    """Follow the generator's JSON lines: memory is sampled from "ready" to "measured" (or the
    result, if it never measured). Returns (the result or error line, the memory report)."""
    started = False
    memory: dict[str, Any] | None = None
    final: dict[str, Any] = {}
    for line in stdout:
        event = json.loads(line)
        if event["event"] == "ready" and not started:
            sampler.start()
            started = True
        elif event["event"] == "measured" and started and memory is None:
            memory = sampler.stop()
        elif event["event"] in ("result", "error"):
            final = event
            break
    if memory is None:
        memory = sampler.stop() if started else {}
    return final, memory


def run_loadgen(config: dict[str, Any], sampler: MemorySampler, log: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the generator; returns (its result, or {"error", "stderr"}; the memory report).

    A watchdog kills it after the run's length plus a grace, so a stuck generator ends the soak
    with an error instead of hanging it. Its stderr goes to ``log`` (a pipe could fill and stall it).
    """
    limit = config["duration"] + GENERATOR_GRACE_S
    with log.open("w") as errors:
        generator = subprocess.Popen(["node", str(LOADGEN), json.dumps(config)], cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=errors)
        watchdog = threading.Timer(limit, generator.kill)
        watchdog.start()
        try:
            assert generator.stdout is not None
            final, memory = read_events(generator.stdout, sampler)
            generator.wait(30)
        except subprocess.TimeoutExpired:
            pass  # it printed its result but did not exit: killed below
        finally:
            watchdog.cancel()
            if generator.poll() is None:
                generator.kill()
                generator.wait(10)
    if final.get("event") == "result":
        return final, memory
    error = final.get("error") or (f"killed after {limit:.0f} s" if generator.returncode == -9 else
                                   f"exited with {generator.returncode} and no result")
    return {"error": str(error)[-1500:], "stderr": log.read_text()[-1500:],
            "disconnects": final.get("disconnects")}, memory


# --- after the load -----------------------------------------------------------------------------


def text_hash(text: str) -> str:
    """What the generator reports for a client's final text: a sha256 prefix of its UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def convergence(texts: dict[str, Any], clients: int, app: Any, clause_id: int) -> dict[str, Any]:
    """Whether every client (not only those still connected) ended with one text, and whether
    PostgreSQL holds it: the clause's body column and the text rebuilt from its update log."""
    from codedraft.codes.models import Clause
    from codedraft.extensions import db

    with app.app_context():
        clause = db.session.get(Clause, clause_id)
        body = clause.body if clause is not None else None
        db.session.remove()
    log_text, rows, twice = cl.stored_state(app, clause_id)
    only = next(iter(texts)) if len(texts) == 1 else None
    converged = only is not None and texts[only]["clients"] == clients
    return {"clients_converged": converged, "distinct_texts": len(texts),
            "body_equals_clients": converged and body is not None and only == text_hash(body),
            "log_equals_clients": converged and only == text_hash(log_text),
            "stored_rows": rows, "stored_twice": twice}


def probe_value(record: dict[str, Any], name: str) -> Any:
    """``record[name]``, where a dotted name reaches inside (``malloc.in_use_mb``)."""
    value: Any = record
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def probe_summary(path: Path) -> dict[str, Any]:
    """One process's probe file: the first record with everyone connected (warm), the last one
    while connected, the last one after everyone left, and slopes over the second half of the
    connected records."""
    if not path.exists():
        return {"error": f"{path} is missing"}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    during = [r for r in records if r.get("open_clauses")]  # the clause is open while anyone is in it
    if not during:
        return {"error": f"{path} has no record with clients connected"}
    late = during[len(during) // 2:]
    slopes = {}
    for name in PROBE_SLOPES:
        points = [(r["seconds"], float(v)) for r in late if (v := probe_value(r, name)) is not None]
        slope = slope_per_minute(points)
        slopes[name] = None if slope is None else round(slope, 3)
    after = [r for r in records if r["seconds"] > during[-1]["seconds"]]

    def pick(record: dict[str, Any]) -> dict[str, Any]:
        return {"seconds": record["seconds"], **{name: probe_value(record, name) for name in PROBE_LATEST}}

    return {"records": len(records), "warm": pick(during[0]), "last_connected": pick(during[-1]),
            "after_everyone_left": pick(after[-1]) if after else None,
            "slope_per_min_second_half": slopes}


def log_errors(workdir: Path, servers: list[Any]) -> list[str]:
    """The servers' tracebacks and errors (the first 20 lines of them)."""
    logs = "".join(Path(workdir, f"server-{s.port}.log").read_text() for s in servers)
    return [line for line in logs.splitlines() if "Traceback" in line or "ERROR" in line][:20]


# --- the run ------------------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Database, servers, load, checks: the report (without the notes)."""
    from codedraft.extensions import db
    from codedraft.search.indexing import close_search_engine

    with cl.fresh_database("codedraft_soak") as name, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        uri = cl.sqlalchemy_url(name)
        migrate(uri)
        app = cl.local_app(uri)
        uid, clause_id, cookies = prepare(app, PEOPLE)
        servers = cl.Cluster(uri, workdir, cl.redis_url())
        try:
            for index in range(args.procs):
                servers.add(threads=args.clients + 32, extra_env=probe_env(args.probe_memory, index))
            bases = [server.base for server in servers.servers]
            sampler = MemorySampler(servers.servers)
            result, memory = run_loadgen(loadgen_config(args, bases, cookies, uid), sampler,
                                         workdir / "loadgen.err")
            if args.probe_memory is not None:
                time.sleep(AFTER_LEAVING_S)  # the idle sweep drops the clause; the probe records it
        finally:
            servers.close()
        errors = log_errors(workdir, servers.servers)
        checked = (convergence(result["texts"], args.clients, app, clause_id) if "texts" in result else
                   {"clients_converged": False})
        close_search_engine(app)  # its own pool on PostgreSQL, opened by the commits of prepare()
        with app.app_context():
            db.engine.dispose()
    report: dict[str, Any] = {
        "minutes": args.minutes, "processes": args.procs, "clients": args.clients, "typists": args.typists,
        "rate": args.rate,
        **{key: result.get(key) for key in ("sent", "failed", "failures", "disconnects", "deliveries")},
        **rounded(result),
        **checked, "memory": memory,
    }
    if "error" in result:
        report["error"], report["stderr"] = result["error"], result["stderr"]
    if args.probe_memory is not None:
        report["probe"] = {f"process_{i}": probe_summary(args.probe_memory / f"probe-{i}.jsonl")
                           for i in range(args.procs)}
    report["server_log_errors"] = errors
    return report


def summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal; the JSON has the rest."""
    slopes = {name: p["slope_mb_per_min_second_half"] for name, p in report["memory"].items()}
    lines = [
        f"{report['clients']} clients ({report['typists']} typing {report['rate']}/s) on {report['processes']} "
        f"processes for {report['minutes']} min",
        f"sent {report['sent']}, failed {report['failed']} {report['failures']}, disconnects {report['disconnects']}",
        f"deliveries {report['deliveries']}: p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, "
        f"max {report['max_ms']} ms",
        "p99 per minute: " + ", ".join(str(w["p99_ms"]) for w in report["windows"] or []),
        f"converged {report['clients_converged']} ({report.get('distinct_texts')} text(s)), body "
        f"{report.get('body_equals_clients')}, log {report.get('log_equals_clients')}, rows "
        f"{report.get('stored_rows')} ({report.get('stored_twice')} twice)",
        f"RSS slope MB/min (second half): {slopes}",
        f"server log errors: {len(report['server_log_errors'])}",
    ]
    if "error" in report:
        lines.append(f"ERROR: {report['error']}\n{report['stderr']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--typists", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--probe-memory", type=Path, metavar="DIR",
                        help="serve bench.realtime.memory_probe:app and write each process's probe "
                             "(Python objects, malloc, document sizes) to DIR/probe-N.jsonl")
    args = parser.parse_args()
    if not 0 < args.typists <= args.clients:
        parser.error("--typists must be between 1 and --clients")
    problem = cl.services_problem()
    if problem:
        raise SystemExit(problem)
    report = {**soak(args), "notes": NOTES}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    if "error" in report:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
