"""Real server processes on real PostgreSQL and Redis, and co-editors that survive a restart.

Used by tests/scaleout and by bench/realtime_scaled.py and bench/soak.py. Each server is a
gunicorn (gunicorn.conf.py: gevent, one worker) on its own loopback port; a process can be
SIGKILLed and started again on the same port.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from flask import Flask

from codedraft import create_app
from codedraft.extensions import db
from tests.support.live import CSRF_META, YClient, wait_for

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("CODEDRAFT_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# A Redis database of its own, so the rate-limit counters of these tests touch nothing else.
REDIS_TEST_DB = int(os.environ.get("CODEDRAFT_TEST_REDIS_DB", "11"))
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
               "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]
SECRET = "scaleout-test-secret"
PASSWORD = "correct horse battery"


def services_problem(patience: float = 15.0) -> str | None:
    """Why PostgreSQL or Redis cannot be used here, or None if both answer within ``patience``
    seconds. Not at the first refusal: the machine's Redis is shared, and a test of another run
    on the same machine (test_faults restarts it) takes it down for a second or two."""
    deadline = time.monotonic() + patience
    while True:
        problem = _services_problem_now()
        if problem is None or time.monotonic() >= deadline:
            return problem
        time.sleep(0.5)


def _services_problem_now() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.Error as error:
        return f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {error}"
    client = redis.Redis(REDIS_HOST, REDIS_PORT, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable: {error}"
    finally:
        client.close()
    return None


def sqlalchemy_url(database: str) -> str:
    return f"postgresql+psycopg://root@127.0.0.1:5432/{database}"


@contextmanager
def fresh_database(prefix: str = "codedraft_t") -> Iterator[str]:
    """A new, empty PostgreSQL database in the local cluster; dropped (forcibly) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_url() -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"


def clear_rate_limits() -> None:
    """Forget the HTTP rate-limit counters of earlier runs (they live in our own Redis db)."""
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=REDIS_TEST_DB)
    for key in client.scan_iter("*LIMITER*"):  # Flask-Limiter names them "LIMITS:LIMITER/..."
        client.delete(key)


def redis_restart(down_seconds: float = 1.0) -> None:
    """Stop the machine's Redis without saving, wait, and start it again with the machine's command.

    Always starts it again, even if stopping failed half-way: other tests need it.
    """
    try:
        subprocess.run(["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS_PORT), "shutdown", "nosave"],
                       capture_output=True, timeout=10, check=False)
        time.sleep(down_seconds)
    finally:
        ensure_redis()


def ensure_redis() -> None:
    """Start the machine's Redis if it does not answer; wait until it does."""
    client = redis.Redis(REDIS_HOST, REDIS_PORT, socket_timeout=1)
    try:
        if answers(client):
            return
        subprocess.run(REDIS_START, capture_output=True, timeout=20, check=False)
        wait_for(lambda: answers(client), 20, "Redis to answer again")
    finally:
        # Left to the garbage collector, its socket raised ResourceWarning (an error in pytest).
        client.close()


def answers(client: redis.Redis) -> bool:
    """Whether the Redis behind ``client`` answers a ping now."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def local_app(database_uri: str, **extra: Any) -> Flask:
    """An app in this (test) process on the shared database, for seeding and reading the log.

    It has no message queue of its own: only the server processes talk to Redis.
    """
    return create_app({
        "TESTING": True, "SECRET_KEY": SECRET, "SQLALCHEMY_DATABASE_URI": database_uri, "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://", "LOGIN_ATTEMPTS_PER_MINUTE": 100_000,
        "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024, **extra,
    })


@dataclass
class ServerProcess:
    """One gunicorn serving CodeDraft on a loopback port."""

    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
             "--bind", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for(self._answers, timeout, f"server on port {self.port} (log: {self.log_path})")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"server on port {self.port} exited: {self.log_path.read_text()[-2000:]}")
        try:
            return requests.get(f"{self.base}/login", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs, as in a crash."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            pass
        self.process = None

    def pids(self) -> list[int]:
        """The gunicorn master and its worker (the worker holds the app's memory)."""
        if self.process is None:
            return []
        found = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            found += [int(p) for p in children.read_text().split()]
        return found


@dataclass
class Cluster:
    """Several server processes on one database (and one Redis when ``redis`` is set)."""

    database_uri: str
    log_dir: Path
    redis: str | None
    servers: list[ServerProcess] = field(default_factory=list)

    def add(self, *, threads: int = 64, extra_env: dict[str, str] | None = None) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
        env.update({"SECRET_KEY": SECRET, "DATABASE_URL": self.database_uri, "CODEDRAFT_THREADS": str(threads),
                    "CODEDRAFT_SEARCH_DIR": str(self.log_dir / "search"),
                    "CODEDRAFT_EXPORT_DIR": str(self.log_dir / "exports"), "PYTHONUNBUFFERED": "1"})
        env.pop("REDIS_URL", None)
        if self.redis:
            env["REDIS_URL"] = self.redis
        env.update(extra_env or {})
        port = free_port()
        server = ServerProcess(port, env, self.log_dir / f"server-{port}.log")
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.servers:
            server.stop()


def session_cookie(app: Flask, email: str, password: str = PASSWORD) -> str:
    """Sign in through the real login form (in this process) and return the session cookie.

    The cookie is signed with the shared SECRET_KEY and names a login-session row in the shared
    database, so every server process accepts it. Signing in here keeps the tests clear of the
    servers' login rate limit, which one test checks on its own.
    """
    client = app.test_client()
    with app.app_context():
        page = client.get("/login").get_data(as_text=True)
        token = CSRF_META.search(page).group(1)  # type: ignore[union-attr]
        response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return f"{cookie.key}={cookie.value}"


def browser_with(cookie: str) -> requests.Session:
    browser = requests.Session()
    name, value = cookie.split("=", 1)
    browser.cookies.set(name, value)
    return browser


class Typist(YClient):
    """A co-editor that types numbered tokens, remembers which were acknowledged, and reconnects.

    Every token is one insert at a token boundary, so each stays contiguous in the text and can be
    counted: an acknowledged token must be in the database once, whatever happens to the server.
    """

    def __init__(self, base: str, cookie: str, name: str) -> None:
        super().__init__(base, browser_with(cookie))
        self.cookie = cookie
        self.name = name
        self.typed: list[str] = []
        self.acked: set[str] = set()
        self.refused: list[Any] = []
        self._label: str | None = None
        self.sent_at: dict[str, float] = {}

    def send(self, frame: bytes, *, clause: str | None = None) -> None:
        label = self._label

        def acknowledged(answer: dict[str, Any]) -> None:
            self.acks.append(answer)
            if answer.get("ok") and label is not None:
                self.acked.add(label)
            elif not answer.get("ok"):
                self.refused.append(answer)

        try:
            self.sio.emit("y", {"clause": clause or self.clause, "msg": frame}, namespace="/collab",
                          callback=acknowledged)
        except Exception:  # noqa: BLE001  (disconnected: the edit stays in the replica, resent on rejoin)
            pass

    def type_token(self, index: int, position: str = "end", rng: Any = None) -> str:
        from codedraft.collab.offsets import codepoint_to_utf8

        token = f"[{self.name}{index}]"
        # Choosing the place and inserting under one lock: a remote edit in between could
        # otherwise put the token inside another one.
        with self._lock:
            current = str(self.text)
            if position == "end" or not current:
                at = len(current)
            else:
                at = rng.choice([0] + [i + 1 for i, char in enumerate(current) if char == "]"])
            self._label = token
            try:
                self.text.insert(codepoint_to_utf8(current, at), token)
            finally:
                self._label = None
        self.typed.append(token)
        self.sent_at[token] = time.monotonic()
        return token

    def resync(self) -> None:
        """Send our step 1: the server answers with step 2, every edit we lack (after its own
        catch-up from the database). The browser provider does this when it rejoins."""
        from pycrdt import create_sync_message

        with self._lock:
            step1 = create_sync_message(self.doc)
        self.send(step1)

    def reconnect(self, base: str | None = None, timeout: float = 30) -> None:
        """Connect again (to ``base`` or the same server), rejoin, and sync both ways.

        Joining sends our step 1 and answers the server's with step 2, which carries every edit
        the server does not have: that is the resend of what was not acknowledged.
        """
        from tests.support.live import InOrderClient

        if base is not None:
            self.base = base
        with self._lock:
            old = self.sio
        try:
            if old.eio.ws is not None:
                old.eio.ws.abort()
                old.eio.ws.shutdown()
            old.eio.disconnect(abort=True)
        except Exception:  # noqa: BLE001  (already gone with the server)
            pass
        self.synced.clear()
        self.sio = InOrderClient(reconnection=False)
        self.sio.on("y", self._on_y, namespace="/collab")
        self.sio.on("error", lambda data: self.errors.append(data), namespace="/collab")
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect()
                break
            except Exception:  # noqa: BLE001  (server still starting)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        clause = self.clause
        assert clause is not None
        ack = self.join(clause)
        assert ack.get("ok"), ack
        assert self.synced.wait(10), "no sync step 2 after rejoining"


def count_tokens(text: str, tokens: list[str]) -> dict[str, int]:
    return {token: text.count(token) for token in tokens}


# Yjs's encoding of an update with no structs and no deletions.
EMPTY_UPDATE = b"\x00\x00"


def stored_state(app: Flask, clause_id: int) -> tuple[str, int, int]:
    """(text rebuilt from the log, number of log rows, rows that added nothing = stored twice)."""
    from pycrdt import Doc, Text
    from sqlalchemy import select

    from codedraft.collab.models import ClauseUpdate

    with app.app_context():
        updates = db.session.scalars(select(ClauseUpdate.update).where(ClauseUpdate.clause_id == clause_id)
                                     .order_by(ClauseUpdate.id)).all()
        db.session.remove()
    doc: Doc[Text] = Doc()
    body = doc.get("body", type=Text)
    pending_vector = doc.get_state()
    redundant = 0
    for update in updates:
        doc.apply_update(update)
        vector = doc.get_state()
        # An empty update (the seed of an empty clause) adds nothing by design: not a repeat.
        if vector == pending_vector and update != EMPTY_UPDATE:
            redundant += 1
        pending_vector = vector
    return str(body), len(updates), redundant


def where_tokens_are(app: Flask, clause_id: int, tokens: list[str]) -> dict[str, Any]:
    """For a failure's report: the log rows whose bytes hold each token (a Yjs update carries
    inserted text as UTF-8), and the text the app's own loader rebuilds from the log."""
    from sqlalchemy import select

    from codedraft.collab.core import ClauseDocument
    from codedraft.collab.models import ClauseUpdate

    with app.app_context():
        rows = db.session.execute(select(ClauseUpdate.id, ClauseUpdate.origin, ClauseUpdate.update)
                                  .where(ClauseUpdate.clause_id == clause_id).order_by(ClauseUpdate.id)).all()
        db.session.remove()
    loaded = ClauseDocument.from_history(None, [row.update for row in rows]).text
    return {"rows": {token: [(row.id, row.origin) for row in rows if token.encode() in row.update] for token in tokens},
            "in_loaded_text": {token: loaded.count(token) for token in tokens}, "log_rows": len(rows)}


def type_concurrently(typists: list[Typist], count: int, interval: float, *, seed: int,
                      position: str = "random") -> None:
    """Every typist types ``count`` tokens, one each ``interval`` seconds, all at once."""
    import random

    def run(typist: Typist, offset: int) -> None:
        rng = random.Random(seed + offset)
        for _ in range(count):
            typist.type_token(len(typist.typed), position, rng)
            time.sleep(interval * (0.5 + rng.random()))

    threads = [threading.Thread(target=run, args=(t, i)) for i, t in enumerate(typists)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
