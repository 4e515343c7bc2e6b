"""Anonymous readers of a public code: latency of the published draft page and the redline.

    .venv/bin/python bench/public_bench.py [--readers 200] [--rounds 5] [--think 1.0] [--proxy none|nginx]
                                           [--corpus ../shared/corpus] [--out bench/results/public.json]

Imports the second and third drafts of the GPAI Code of Practice into a throw-away SQLite
database, opens the code to the public, and serves it with the production server (one gunicorn
gevent worker, gunicorn.conf.py). Then ``--readers`` readers without an account start at the
same instant: each reads the third draft's page, then the redline from the second draft, and
again, ``--rounds`` times, pausing a random 0.5-1.5 x ``--think`` seconds between pages, as
people reading do. The first round is the burst of everyone arriving at once; it is reported
on its own too. Before the readers, one request per page renders it (reported as "first
view"); the readers then get the shared cached copy. Target: p95 <= 100 ms for a cached page.

``--proxy nginx`` puts deploy/nginx.conf (its cache of public pages) in front of the server and
writes bench/results/public_nginx.json; it needs Debian's nginx-light, which ``make bench``
installs (or ``apt-get install nginx-light``).

The readers are coroutines of one asyncio event loop speaking HTTP/1.1 on a bare protocol
(``--client threads``: a thread per reader with http.client, as results before 2026-12-06 23:30
were measured); each is timed from the moment it asks, connection included for its first page,
to the last byte. The generator shares the machine's 2 cores with the server, and the machine
with whatever else runs: the result records ``uptime`` at start and end, and the server's CPU
seconds, which say what the server itself spent.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import platform
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.nginx import nginx_binary, start_nginx  # noqa: E402 (after the path above)

# The shared documents beside the project, or beside a parent folder (a worktree sits deeper).
SHARED = os.environ.get("CODEDRAFT_SHARED_DIR") or next(
    (folder / "shared" for folder in ROOT.parents if (folder / "shared").is_dir()), ROOT.parent / "shared")
RESULTS = ROOT / "bench" / "results"
TARGET_P95_MS = 100.0
NGINX_MISSING = ("nginx is not installed, and --proxy nginx runs it: `make system-deps` installs it with the "
                 "tests' other Debian packages, or as root `apt-get install nginx-light`")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1) if ordered else 0.0


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    times = [s["ms"] for s in samples if s["status"] == 200]
    return {"requests": len(samples), "errors": sum(s["status"] != 200 for s in samples),
            # bytes on the wire (gzip)
            "p50_ms": percentile(times, 0.50), "p95_ms": percentile(times, 0.95),
            "p99_ms": percentile(times, 0.99), "max_ms": round(max(times), 1) if times else 0.0,
            "bytes": max((s["bytes"] for s in samples), default=0)}


def prepare(folder: Path, corpus: Path) -> str:
    """The database with the two drafts, public; returns the code's slug."""
    from codedraft import create_app
    from codedraft.accounts.operations import create_user
    from codedraft.extensions import db
    from codedraft.importer.operations import import_document
    from codedraft.public.operations import make_public

    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite3'}",
                      "SEARCH_INDEX_DIR": str(folder / "search"), "EXPORT_DIR": str(folder / "exports"),
                      "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://"})
    with app.app_context():
        from flask_migrate import upgrade

        from codedraft.cli import install_migrations

        install_migrations(app)
        upgrade()
        office = create_user("office@bench.test", "Office", None, is_office=True)
        second = import_document((corpus / "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8"),
                                 draft_name="Second Draft")
        import_document((corpus / "gpai-cop-draft3-2025-03.md").read_text(encoding="utf-8"), code=second.code,
                        draft_name="Third Draft")
        make_public(second.code, office)
        db.session.commit()
        slug = second.code.slug
        db.engine.dispose()
    return slug


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEDRAFT_", "FLASK_"))}
    env.pop("REDIS_URL", None)
    env.update({"SECRET_KEY": "bench", "DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite3'}",
                "CODEDRAFT_SEARCH_DIR": str(folder / "search"), "CODEDRAFT_EXPORT_DIR": str(folder / "exports"),
                "CODEDRAFT_BIND": f"127.0.0.1:{port}"})
    log = (folder / "server.log").open("ab")
    return subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py"], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT)


class NotServing(RuntimeError):
    """The server or the proxy did not come up; the message says which and where its log is."""


def wait_until_up(base: str, process: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 60) -> None:
    """Returns once ``base`` serves the public landing page. Raises NotServing when ``process``
    (``what``, logging to ``log``) exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotServing(f"{what} exited with status {process.returncode}; see {log}")
        try:
            if requests.get(f"{base}/public", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise NotServing(f"{what} did not answer on {base} within {timeout:.0f} s; see {log}")


class _Exchange(asyncio.Protocol):
    """One reader's kept-alive HTTP/1.1 connection, as a bare protocol: a request is one write,
    and the response is complete once its Content-Length has arrived. Streams cost several
    times more of the generator's CPU per request, and the generator shares 2 cores with the
    server at the very moment of the burst."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.expected = -1
        self.status = 0
        self.done: asyncio.Future[tuple[int, int]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def ask(self, request: bytes) -> asyncio.Future[tuple[int, int]]:
        self.buffer.clear()
        self.expected, self.status = -1, 0
        self.done = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expected < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).split(b"\r\n")
            self.status = int(head[0].split(b" ", 2)[1])
            length = next((int(line.split(b":", 1)[1]) for line in head[1:]
                           if line.lower().startswith(b"content-length:")), 0)
            self.expected = end + 4 + length
        if len(self.buffer) >= self.expected and self.done is not None and not self.done.done():
            self.done.set_result((self.status, self.expected - self.buffer.find(b"\r\n\r\n") - 4))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("closed"))


async def async_reader(port: int, pages: dict[str, str], rounds: int, think: float, start: asyncio.Event,
                       samples: list[dict[str, Any]], seed: int) -> None:
    """One reader on one kept-alive connection, as a browser tab, timed from the moment it asks
    (the connection opened then, for the first page) to the last byte. Readers are coroutines
    of one event loop: 200 threads of http.client spent about 0.6 ms of the generator's CPU a
    request, all at the same instant in the first round, and that queue (on 2 cores shared
    with the server) was a good part of what the first round measured."""
    chance = random.Random(seed)
    loop = asyncio.get_running_loop()
    requests_ = {name: (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: gzip\r\n"
                        "Accept-Language: en\r\n\r\n").encode() for name, path in pages.items()}
    exchange: _Exchange | None = None
    await start.wait()
    for round_number in range(rounds):
        for name in pages:
            began = time.perf_counter()
            try:
                if exchange is None:
                    _transport, exchange = await loop.create_connection(_Exchange, "127.0.0.1", port)
                status, size = await asyncio.wait_for(exchange.ask(requests_[name]), 60)
            except (OSError, ValueError, IndexError, TimeoutError):
                if exchange is not None and exchange.transport is not None:
                    exchange.transport.close()
                exchange, status, size = None, 0, 0
            samples.append({"page": name, "round": round_number, "status": status, "bytes": size,
                            "ms": (time.perf_counter() - began) * 1000})
            await asyncio.sleep(think * chance.uniform(0.5, 1.5))
    if exchange is not None and exchange.transport is not None:
        exchange.transport.close()


async def run_readers(port: int, pages: dict[str, str], readers: int, rounds: int, think: float,
                      samples: list[dict[str, Any]]) -> None:
    start = asyncio.Event()
    tasks = [asyncio.create_task(async_reader(port, pages, rounds, think, start, samples, n)) for n in range(readers)]
    await asyncio.sleep(0.1)  # every reader waiting on the event: they all ask at the same instant
    start.set()
    await asyncio.gather(*tasks)


def reader(port: int, pages: dict[str, str], rounds: int, think: float, start: threading.Barrier,
           samples: list[dict[str, Any]], seed: int) -> None:
    """One reader on one kept-alive connection, as a browser tab. It asks for gzip, as browsers
    do, and times the request to its last byte; it does not decompress (a browser does that in
    native code), which keeps the generator's own CPU from drowning the server's numbers."""
    chance = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start.wait()
    for round_number in range(rounds):
        for name, path in pages.items():
            began = time.perf_counter()
            try:
                connection.request("GET", path, headers={"Accept-Encoding": "gzip", "Accept-Language": "en"})
                response = connection.getresponse()
                status, size = response.status, len(response.read())
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status, size = 0, 0
            samples.append({"page": name, "round": round_number, "status": status, "bytes": size,
                            "ms": (time.perf_counter() - began) * 1000})
            time.sleep(think * chance.uniform(0.5, 1.5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--corpus", type=Path, default=Path(SHARED) / "corpus")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the results (default: bench/results/public.json, "
                             "or public_nginx.json with --proxy nginx)")
    parser.add_argument("--proxy", choices=("none", "nginx"), default="none",
                        help="readers reach the server directly (default) or through deploy/nginx.conf's cache")
    parser.add_argument("--client", choices=("async", "threads"), default="async",
                        help="readers as coroutines of one event loop (default) or as threads of http.client "
                             "(what earlier results used)")
    args = parser.parse_args()
    if not (args.corpus / "gpai-cop-draft3-2025-03.md").exists():
        print(f"the corpus is not present: {args.corpus}", file=sys.stderr)
        return 2
    nginx = nginx_binary() if args.proxy == "nginx" else None
    if args.proxy == "nginx" and nginx is None:
        print(NGINX_MISSING, file=sys.stderr)
        return 2
    out = args.out or RESULTS / ("public_nginx.json" if args.proxy == "nginx" else "public.json")
    folder = Path(tempfile.mkdtemp(prefix="codedraft-public-bench-"))
    slug = prepare(folder, args.corpus)
    app_port = free_port()
    port = free_port() if args.proxy == "nginx" else app_port
    base = f"http://127.0.0.1:{port}"
    pages = {"draft": f"/public/{slug}/drafts/2", "redline": f"/public/{slug}/compare?from=1&to=2"}
    server = start_server(folder, app_port)
    proxy = start_nginx(nginx, folder, port, [app_port]) if nginx is not None else None
    try:
        wait_until_up(f"http://127.0.0.1:{app_port}", server, "the server (gunicorn)", folder / "server.log")
        if proxy is not None:
            wait_until_up(base, proxy, "nginx", folder / "nginx.out")
        first_view = {}
        for name, path in pages.items():
            began = time.perf_counter()
            # The representation the readers ask for (gzip, English), so a proxy's copy is theirs too.
            response = requests.get(base + path, timeout=120, headers={"Accept-Encoding": "gzip",
                                                                       "Accept-Language": "en"})
            first_view[name] = {"status": response.status_code, "ms": round((time.perf_counter() - began) * 1000, 1),
                                "bytes": len(response.content)}
        samples: list[dict[str, Any]] = []
        start = threading.Barrier(args.readers)
        threads = [threading.Thread(target=reader, args=(port, pages, args.rounds, args.think, start, samples, n))
                   for n in range(args.readers)] if args.client == "threads" else []
        load_at_start = os.getloadavg()
        uptime_at_start = _uptime()
        server_cpu_before = _process_cpu(server.pid)
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        if args.client == "async":
            # The generator still holds the app it prepared the data with: frozen, the collector's
            # full passes do not walk it in the middle of the burst.
            gc.collect()
            gc.freeze()
            asyncio.run(run_readers(port, pages, args.readers, args.rounds, args.think, samples))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = _process_cpu(server.pid) - server_cpu_before
    except NotServing as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        if proxy is not None:
            proxy.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            proxy.wait(30)
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    results = {}
    for name in pages:
        mine = [s for s in samples if s["page"] == name]
        results[name] = {"first_view": first_view[name], "cached": summary(mine),
                         "burst_first_round": summary([s for s in mine if s["round"] == 0]),
                         "after_the_burst": summary([s for s in mine if s["round"] > 0])}
        results[name]["meets_target"] = results[name]["cached"]["p95_ms"] <= TARGET_P95_MS
    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
                    "uptime_at_start": uptime_at_start, "uptime_at_end": _uptime()},
        "server": "one gunicorn gevent worker (gunicorn.conf.py), SQLite"
                  + (", behind nginx with deploy/nginx.conf's cache of public pages" if args.proxy == "nginx" else ""),
        "client": {"async": "one asyncio event loop, a coroutine per reader, HTTP/1.1 keep-alive on a bare protocol",
                   "threads": "a thread per reader, http.client"}[args.client],
        "load": {"readers": args.readers, "rounds": args.rounds, "think_s": args.think,
                 "requests": len(samples), "wall_s": round(wall, 1),
                 "requests_per_s": round(len(samples) / wall, 1),
                 "server_cpu_s": round(server_cpu, 2),
                 "generator_cpu_s": round((own_after.ru_utime + own_after.ru_stime)
                                          - (own_before.ru_utime + own_before.ru_stime), 2)},
        "target_p95_ms": TARGET_P95_MS,
        "pages": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if all(page["meets_target"] for page in results.values()) else 1


def _uptime() -> str:
    """What ``uptime`` says (its load averages are the machine's, other work included)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _process_cpu(pid: int) -> float:
    """CPU seconds used so far by the server: its master and worker processes."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for candidate in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{candidate}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


if __name__ == "__main__":
    sys.exit(main())
