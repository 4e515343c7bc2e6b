"""The real-time benchmark scaled out: 1, 2 and 3 CodeDraft processes on PostgreSQL + Redis.

    .venv/bin/python bench/realtime_scaled.py [--quick] [--procs 1,2,3]

The same five loads, targets and Node load generator as bench/realtime_bench.py (its loads(),
TARGETS and run_load()), against N gunicorn processes (gunicorn.conf.py: one gevent worker each,
the bench app bench.realtime.serve_codedraft:app with HTTP rate limits off) that share one
PostgreSQL database and one Redis (database 5, flushed before every start). For each N:

* a fresh PostgreSQL database, a copy of one built by the migrations (so search and the live
  text index are PostgreSQL's, as deployed) and filled by realtime_bench.prepare_codedraft;
* for each load, N freshly started processes; connection i of the generator goes to process
  i mod N, so most deliveries cross Redis. Each session cookie is signed in on one process and
  checked on every process before the load (shared SECRET_KEY and login-session rows);
* server CPU and memory are summed over every gunicorn master and worker;
* after each latency load (typists_50, connected_200) every client applies what it received,
  and the script checks that all clients hold the same text and that it is the text PostgreSQL
  holds: the clause's body column and the text rebuilt from its update log.

Results: bench/results/realtime_scaled.json: per N the loads and the summary against the
targets, and the gain of N processes against one for each headline metric. A full run takes
about 10 minutes, --quick (10 s loads) about 7. Needs PostgreSQL and Redis on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.realtime_bench import (  # noqa: E402  (after the path is set)
    GENERATOR_CPU,
    GUNICORN,
    SERVER_CPU,
    TARGETS,
    THROUGHPUT_CLAUSES,
    Server,
    codedraft_env,
    free_port,
    loads,
    meets,
    prepare_codedraft,
    run_load,
    sign_in,
)
from codedraft.scaleout.keys import prefix_for_database  # noqa: E402
from tests.scaleout import cluster as cl  # noqa: E402
from tests.support.live import wait_for  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "realtime_scaled.json"
# A Redis database of the benchmark's own: the tests use 11 (tests/scaleout/cluster.py).
REDIS_DB = 5
REDIS_URL = f"redis://{cl.REDIS_HOST}:{cl.REDIS_PORT}/{REDIS_DB}"
# Flask-SocketIO's default pub/sub channel; channels are not per Redis database.
LATENCY_LOADS = ("typists_50", "connected_200")



# --- databases ----------------------------------------------------------------------------------


# Clauses made for the throughput load, of which THROUGHPUT_CLAUSES spread evenly are used.
THROUGHPUT_POOL = 100


def process_of(clause_uid: str, count: int) -> int:
    """Which of ``count`` processes the load generator sends a clause's connections to when routing
    by clause (loadgen.mjs's ``urlFor``: FNV-1a over the uid, modulo the number of processes)."""
    value = 0x811C9DC5
    for char in clause_uid:
        value = ((value ^ ord(char)) * 0x01000193) & 0xFFFFFFFF
    return value % count


def spread_evenly(pool: list[str], counts: list[int], wanted: int) -> list[str]:
    """``wanted`` clauses of ``pool`` that routing by clause spreads as evenly as it can over every
    number of processes in ``counts`` (10 over 3 processes: 4, 3 and 3).

    The clauses' uids are random, so ten clauses taken as they come could put seven of ten on one
    of three processes in one run and four in the next: the acknowledged load's CPU per edit at 3
    processes was 1.59 times one process's in one run and 1.04 in another. A real code has
    hundreds of clauses, which the hash spreads evenly."""
    chosen: list[str] = []
    on: dict[int, list[int]] = {n: [0] * n for n in counts}

    def fits(uid: str, n: int) -> bool:
        # Every process gets wanted // n; the first wanted % n processes to reach it, one more.
        base, extra = divmod(wanted, n)
        have = on[n][process_of(uid, n)]
        return have < base or (have == base and sum(held > base for held in on[n]) < extra)

    for uid in pool:
        if all(fits(uid, n) for n in counts):
            chosen.append(uid)
            for n in counts:
                on[n][process_of(uid, n)] += 1
            if len(chosen) == wanted:
                return chosen
    raise RuntimeError(f"no {wanted} clauses of {len(pool)} spread evenly over {counts} processes")


def clauses_per_process(rooms: list[str], count: int) -> list[int]:
    """How many of a load's clauses each of ``count`` processes holds when routing by clause."""
    held = [0] * count
    for uid in rooms:
        held[process_of(uid, count)] += 1
    return held


@contextmanager
def copy_of(template: str) -> Iterator[str]:
    """A new PostgreSQL database with ``template``'s contents; dropped (forcibly) afterwards."""
    name = f"codedraft_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cl.PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield name
    finally:
        with psycopg.connect(cl.PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_copy(prepared: dict[str, Any], name: str, workdir: Path) -> dict[str, Any]:
    """``prepared`` pointed at the copy ``name`` of its database, with a copy of its search index."""
    workdir.mkdir()
    if (prepared["workdir"] / "search").exists():
        shutil.copytree(prepared["workdir"] / "search", workdir / "search")
    return {**prepared, "database_url": cl.sqlalchemy_url(name), "workdir": workdir}


def text_hash(text: str) -> str:
    """What the load generator reports for a client's final text (a sha256 prefix of its UTF-8)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored_texts(app: Any, clause_uid: str) -> tuple[str, str, int, int]:
    """(the clause's body column, the text rebuilt from its update log, log rows, rows stored twice)."""
    from sqlalchemy import select

    from codedraft.codes.models import Clause
    from codedraft.extensions import db

    with app.app_context():
        clause = db.session.scalar(select(Clause).where(Clause.uid == clause_uid))
        assert clause is not None, clause_uid
        body, clause_id = clause.body, clause.id
        db.session.remove()
    log_text, rows, twice = cl.stored_state(app, clause_id)
    return body, log_text, rows, twice


def convergence(texts: dict[str, Any], app: Any, clause_uid: str) -> dict[str, Any]:
    """Whether every client ended with one text, and whether PostgreSQL holds that text."""
    body, log_text, rows, twice = stored_texts(app, clause_uid)
    agreed = next(iter(texts)) if len(texts) == 1 else None
    return {"clients": sum(t["clients"] for t in texts.values()), "distinct_texts": len(texts),
            "clients_converged": agreed is not None, "body_equals_clients": agreed == text_hash(body),
            "log_equals_clients": agreed == text_hash(log_text), "text_length": len(log_text),
            "log_rows": rows, "stored_twice": twice, "texts": texts}


def migrate(url: str) -> None:
    """Build the schema with the migrations, as a deployment does: with its search tables the
    processes search and index live text in PostgreSQL, not in a Whoosh folder of their own."""
    from flask_migrate import upgrade

    from codedraft.cli import install_migrations
    from codedraft.extensions import db

    app = cl.local_app(url)
    install_migrations(app)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


# --- servers ------------------------------------------------------------------------------------


class ServerGroup:
    """N server processes of one run; CPU and memory summed over all of them (masters and workers)."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers

    def cpu_percent(self) -> float:
        return sum(server.cpu_percent() for server in self.servers)

    def rss_mb(self) -> float:
        return sum(server.rss_mb() for server in self.servers)

    def cpu_seconds(self) -> float:
        return sum(server.cpu_seconds() for server in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def check_cookies_everywhere(bases: list[str], cookies: list[str]) -> None:
    """Each cookie opens the code list on every process; raises RuntimeError if one does not."""
    for cookie in cookies:
        for base in bases:
            page = requests.get(f"{base}/", headers={"Cookie": cookie}, allow_redirects=False, timeout=10)
            if page.status_code != 200 or "Benchmark Code" not in page.text:
                raise RuntimeError(f"a cookie signed in elsewhere was refused by {base}: {page.status_code}")


def redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def start_group(prepared: dict[str, Any], count: int, route: str = "feed",
                pin_all: bool = False) -> tuple[ServerGroup, dict[str, Any]]:
    """``count`` gunicorns on the prepared database and the benchmark's (flushed) Redis database.

    One process is pinned to CPU 0 as in realtime_bench.py; several are not pinned (2 cores).
    ``route``: "clause" (the engine as deployed: clause feeds in Redis, and every connection of a
    clause on the process a hash of the clause picks, as deploy/nginx.conf routes them), "feed"
    (the same processes with connections spread over them regardless of clause: connection i on
    process i mod N) or "owner" (each clause served by one process, others redirect the join
    there, no clause feeds).
    ``pin_all``: every process on CPU 0, so the Node generator keeps CPU 1 to itself and N
    processes get the same core as one (cost per edit compared like for like).
    """
    # Other people's fault tests restart this Redis now and then: wait for it, never restart it.
    wait_for(redis_answers, 60, "Redis to answer")
    redis.Redis.from_url(REDIS_URL).flushdb()
    servers: list[Server] = []
    try:
        ports = [free_port() for _ in range(count)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for port, url in zip(ports, urls, strict=True):
            env = codedraft_env(prepared, port, REDIS_URL)
            if route == "owner" and count > 1:
                env.update({"CODEDRAFT_ROUTE_URLS": ",".join(urls), "CODEDRAFT_ROUTE_SELF": url})
            pinned = SERVER_CPU if count == 1 or pin_all else None
            servers.append(Server(GUNICORN, env, port, f"{url}/login", cpu=pinned))
        bases = [f"http://127.0.0.1:{server.port}" for server in servers]
        cookies = [sign_in(bases[i % count], email) for i, email in enumerate(prepared["emails"])]
        check_cookies_everywhere(bases, cookies)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return ServerGroup(servers), {"target": "codedraft", "urls": bases, "cookies": cookies,
                                  "routeByClause": route == "clause"}


def channel_subscribers(database_url: str) -> int | None:
    """Subscribers to the run's Socket.IO channel (named by its database, codedraft/scaleout/keys.py):
    one per process; None when Redis did not answer (restarted by someone's fault test during the load)."""
    channel = f"{prefix_for_database(database_url)}:socketio"
    try:
        return int(redis.Redis.from_url(REDIS_URL).pubsub_numsub(channel)[0][1])
    except redis.RedisError:
        return None


# --- one N --------------------------------------------------------------------------------------


def cpu_per_edit(result: dict[str, Any]) -> None:
    """Server CPU milliseconds (all processes) per edit: per edit sent and delivered to every other
    client (latency loads), per acknowledged edit (throughput)."""
    used = result.get("server_cpu_s")
    edits = result.get("sent") or result.get("acked")
    if isinstance(used, int | float) and edits:
        result["server_cpu_ms_per_edit"] = round(1000 * used / edits, 3)
    if isinstance(used, int | float) and result.get("deliveries"):
        result["server_cpu_us_per_delivery"] = round(1e6 * used / result["deliveries"], 2)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench_processes(prepared: dict[str, Any], count: int, quick: bool,
                    only: set[str] | None = None, route: str = "feed", pin_all: bool = False) -> dict[str, Any]:
    """The five loads (or those in ``only``) against ``count`` processes, each load with freshly
    started ones."""
    app = cl.local_app(prepared["database_url"])
    results: dict[str, Any] = {}
    try:
        for name, load in loads(prepared["rooms"], quick).items():
            if only and name not in only:
                continue
            group, base = start_group(prepared, count, route, pin_all)
            try:
                print(f"{count} process(es): {name} ...", flush=True)
                before = load_average()
                results[name] = run_load(group, base, load)
                results[name]["load_average_before_after"] = [before, load_average()]
                if route == "clause":
                    results[name]["clauses_per_process"] = clauses_per_process(load["rooms"], count)
                cpu_per_edit(results[name])
                if name == "open_10k":
                    # Warm: the same clauses again, now in the memory of the process that opened each.
                    results["open_10k_warm"] = run_load(group, base, load)
                # Counted while the servers still run: each subscribes at its first connection.
                results[name]["socketio_channel_subscribers"] = channel_subscribers(prepared["database_url"])
                if name in LATENCY_LOADS:
                    # A process writes a body it owes (others' edits applied after its last body
                    # write) when its feed is quiet (ClauseStore.write_owed_bodies).
                    time.sleep(3)
            finally:
                group.stop()
            texts = results[name].pop("texts", None)
            if name in LATENCY_LOADS and texts is not None:
                results[name]["convergence"] = convergence(texts, app, load["rooms"][0])
            print(f"  {json.dumps(results[name])[:600]}", flush=True)
    finally:
        from codedraft.extensions import db

        with app.app_context():
            db.engine.dispose()
    return results


# --- the report ---------------------------------------------------------------------------------


def interleaved(counts: list[int], rounds: int) -> list[list[int]]:
    """The order of the process counts in each round: as given, then reversed, and so on.

    On this machine whichever count ran later was the slower one (8 December, ``--procs 2,1``
    against ``1,2``: bench/results/realtime_scaled_latency_order_8dec.json), so a single round
    in one order compares the first against the later ones. An even number of rounds runs each
    count as often early as late."""
    return [list(counts) if number % 2 == 0 else list(reversed(counts)) for number in range(rounds)]


def averaged(per_round: list[dict[str, Any]]) -> dict[str, Any]:
    """One process count's results over its rounds: each load as in the last round, with the mean
    of every number the report compares (the load's headline metric, CPU seconds, CPU per edit)
    and each round's value beside it (``<name>_rounds``). One round is returned as it is."""
    if len(per_round) == 1:
        return per_round[0]
    merged: dict[str, Any] = {}
    for name in per_round[-1]:
        results = [round_results.get(name) or {} for round_results in per_round]
        load = dict(results[-1])
        metric = TARGETS[name][0] if name in TARGETS else None
        for key in (metric, "server_cpu_s", "server_cpu_ms_per_edit"):
            values = [result.get(key) for result in results]
            if key is None or not all(isinstance(value, int | float) for value in values):
                continue
            load[key] = round(sum(values) / len(values), 3)
            load[f"{key}_rounds"] = values
        merged[name] = load
    return merged


def against_targets(results: dict[str, Any]) -> dict[str, Any]:
    """The headline number of each load and whether it meets realtime_bench's target (its ratio
    to the reference server is realtime_bench's to judge: no reference runs here)."""
    summary: dict[str, Any] = {}
    for name, (metric, op, target, _max_ratio) in TARGETS.items():
        result = results.get(name) or {}
        summary[name] = {"metric": metric, "target": f"{op} {target}", "value": result.get(metric),
                         "target_met": meets(result, metric, op, target), "load_failed": "error" in result}
    return summary


def _ratio(top: Any, bottom: Any) -> float | None:
    """top / bottom to two places; None unless both are non-zero numbers (a load that failed)."""
    if isinstance(top, int | float) and isinstance(bottom, int | float) and top and bottom:
        return round(top / bottom, 2)
    return None


def cpu_ratios(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Server CPU per edit (summed over the processes) at N processes / at one (target <= 1.2)."""
    one = runs.get("1")
    if one is None:
        return {}
    table: dict[str, Any] = {}
    for count, results in runs.items():
        row: dict[str, float | None] = {}
        for name, result in results.items():
            row[name] = _ratio((result or {}).get("server_cpu_ms_per_edit"),
                               (one.get(name) or {}).get("server_cpu_ms_per_edit"))
        table[count] = row
    return table


def gains(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How many times better N processes did than one, per headline metric (above 1 = better).

    Latency, time and memory are better lower (one's value / N's); throughput higher (N's / one's).
    """
    one = runs.get("1")
    if one is None:
        return {}
    table: dict[str, Any] = {}
    for count, results in runs.items():
        row: dict[str, float | None] = {}
        for name, (metric, op, _target, _max_ratio) in TARGETS.items():
            base, value = (one.get(name) or {}).get(metric), (results.get(name) or {}).get(metric)
            row[name] = _ratio(value, base) if op == ">=" else _ratio(base, value)
        table[count] = row
    return table


def versions() -> dict[str, str]:
    with psycopg.connect(cl.PG_ADMIN_URL) as admin:
        postgres = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    info = redis.Redis.from_url(REDIS_URL).info("server")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {"python": sys.version.split()[0], "node": node, "postgresql": postgres,
            "redis": str(info["redis_version"])}


NOTES = [
    "The machine has 2 cores. One process is pinned to CPU 0 as in realtime_bench.py; 2 or 3 "
    "processes are pinned there too with --pin-all (servers_pinned), so N processes get the core one "
    "had and cost per edit compares like for like; without it they share both cores with each other, "
    "with PostgreSQL and Redis, and with the Node generator (pinned to CPU 1).",
    "server_cpu_s: CPU seconds (user + system) of every server process in the measured window; "
    "server_cpu_ms_per_edit: that per edit sent (latency loads: each delivered to every other "
    "client) or acknowledged (throughput); cpu_per_edit_vs_1_process: N's over one's (target <= 1.2).",
    "server_cpu_pct (% of one core, mean) and server_rss_mb (peak) are summed over every gunicorn "
    "master and worker; viewers_1000's memory target is for the sum.",
    "gain_vs_1_process: one process's value / N's for latency, open time and memory, N's / one's "
    "for throughput; above 1 means N processes did better.",
    "Connection i goes to process i mod N, so with N > 1 most deliveries cross Redis. Each session "
    "cookie was signed in on one process and checked on every process (GET / shows the code).",
    "convergence (latency loads): after the window every acknowledgement is awaited and 2 s allowed; "
    "each client applies all it received; clients_converged = one text among all clients; "
    "body_equals_clients / log_equals_clients = that text is the clause body column / the text "
    "rebuilt from the update log in PostgreSQL.",
    "Each deployment's Socket.IO channel and Redis keys are named by its database URL, so other "
    "CodeDraft servers on this Redis (tests run by others) neither receive the benchmark's "
    "broadcasts nor send it theirs; socketio_channel_subscribers counts the run's own processes.",
    "Other people used this machine during the run (load_average_before_after per load, "
    "load_average_at_end): latencies are noisy.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 s loads, 3 clauses to open")
    parser.add_argument("--procs", default="1,2,3", help="numbers of server processes, comma-separated")
    parser.add_argument("--loads", help="run only these loads (comma-separated), e.g. while profiling")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every count this many times, the order reversed each round (see interleaved()); "
                             "the report compares the means")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument("--pin-all", action="store_true",
                        help="pin every server process to CPU 0 (by default only a single process is pinned)")
    parser.add_argument("--route", choices=["clause", "feed", "owner"], default="clause",
                        help="clause: Redis clause feeds, and each clause's connections on one process chosen by "
                             "a hash of the clause, as deploy/nginx.conf routes them (as deployed); feed: the same "
                             "with connections spread regardless of clause; owner: each clause on one process, "
                             "joins elsewhere redirected, no clause feeds (measured against them)")
    options = parser.parse_args()
    only = set(options.loads.split(",")) if options.loads else None
    counts = [int(n) for n in options.procs.split(",")]
    problem = cl.services_problem()
    if problem:
        raise SystemExit(problem)
    started = time.monotonic()
    per_count: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
    orders = interleaved(counts, max(1, options.rounds))
    with cl.fresh_database("codedraft_bench_template") as template, \
            tempfile.TemporaryDirectory(prefix="codedraft-scaled-") as tmp:
        print("preparing the database ...", flush=True)
        migrate(cl.sqlalchemy_url(template))
        (Path(tmp) / "template").mkdir()
        pool = THROUGHPUT_POOL if options.route == "clause" else THROUGHPUT_CLAUSES
        prepared = prepare_codedraft(cl.sqlalchemy_url(template), Path(tmp) / "template", options.quick,
                                     throughput_clauses=pool)
        if options.route == "clause":
            rooms = prepared["rooms"]
            rooms["acked_throughput"] = spread_evenly(rooms["acked_throughput"], counts, THROUGHPUT_CLAUSES)
        for number, order in enumerate(orders):
            for count in order:
                print(f"round {number + 1} of {len(orders)}: {count} process(es)", flush=True)
                with copy_of(template) as name:
                    copy = fresh_copy(prepared, name, Path(tmp) / f"{count}_processes_{number}")
                    per_count[count].append(bench_processes(copy, count, options.quick, only, options.route,
                                                            options.pin_all))
    runs = {str(count): averaged(per_round) for count, per_round in per_count.items()}
    report = {
        "machine": {"cpus": os.cpu_count(), "server_cpu_when_one_process": SERVER_CPU,
                    "generator_cpu": GENERATOR_CPU, **versions()},
        "servers": "N x gunicorn (gunicorn.conf.py: one gevent worker), bench.realtime.serve_codedraft:app, "
                   f"PostgreSQL, Redis {REDIS_URL}",
        "quick": options.quick,
        "route": options.route,
        "orders": orders,
        "servers_pinned": "all to CPU 0" if options.pin_all else "one process to CPU 0; 2 or 3 not pinned",
        "load_average_at_end": load_average(),
        "processes": {count: {"loads": results, "summary": against_targets(results)}
                      for count, results in runs.items()},
        "gain_vs_1_process": gains(runs),
        "cpu_per_edit_vs_1_process": cpu_ratios(runs),
        "seconds": round(time.monotonic() - started, 1),
        "notes": NOTES,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"summary": {n: r["summary"] for n, r in report["processes"].items()},
                      "gain_vs_1_process": report["gain_vs_1_process"],
                      "cpu_per_edit_vs_1_process": report["cpu_per_edit_vs_1_process"]}, indent=1))
    print(f"written to {options.out} in {report['seconds']} s")


if __name__ == "__main__":
    main()
