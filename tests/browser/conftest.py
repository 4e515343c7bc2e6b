"""Shared browser-test fixtures: Debian's Chromium through Playwright, and a real server process.

``chromium``: a launched headless Chromium (never a downloaded browser). Skipped when
/usr/bin/chromium is missing, except under CI, where that is a failure.
``live_process``: a CodeDraft server in a subprocess on a fixed free port with its own SQLite
file, which a test can SIGKILL and restart on the same port (see LiveProcess).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"Debian's chromium is missing at {CHROMIUM}; `make test` installs it")
    pytest.skip(f"Debian's chromium is missing at {CHROMIUM}; run `make system-deps` to install it")


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright.sync_api.Browser); closed after the test."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveProcess:
    """A server subprocess on ``port`` over the SQLite file ``database``.

    ``start()`` waits until it answers; ``kill()`` sends SIGKILL (nothing is flushed or closed
    gracefully); ``restart()`` is kill + start on the same port. ``config()`` gives the app
    configuration a test uses to create and seed the same database in-process.
    """

    def __init__(self, workdir: Path, server: str = "werkzeug") -> None:
        # "werkzeug": the development server's threads (make run); "gunicorn": production's
        # gevent worker (gunicorn.conf.py) with its own websocket driver (codedraft/websocket.py).
        self.server = server
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = workdir / "codedraft.sqlite3"
        self.secret = "browser-test-secret"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"

    def config(self) -> dict[str, Any]:
        return {"TESTING": True, "SECRET_KEY": self.secret, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{self.database}",
                "SEARCH_INDEX_DIR": str(self.workdir / "search"), "EXPORT_DIR": str(self.workdir / "exports"),
                "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "memory://",
                "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024}

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "CODEDRAFT_"))}
        env.update({"SECRET_KEY": self.secret, "DATABASE_URL": f"sqlite:///{self.database}",
                    "CODEDRAFT_SEARCH_DIR": str(self.workdir / "search"),
                    "CODEDRAFT_EXPORT_DIR": str(self.workdir / "exports"),
                    "CODEDRAFT_BASE_URL": self.base, "PYTHONUNBUFFERED": "1"})
        env.pop("REDIS_URL", None)
        return env

    def start(self, timeout: float = 20) -> None:
        if self.server == "gunicorn":
            command = [sys.executable, "-m", "gunicorn", "-c", str(PROJECT_ROOT / "gunicorn.conf.py"),
                       "--chdir", str(PROJECT_ROOT), "--bind", f"127.0.0.1:{self.port}"]
        else:
            command = [sys.executable, "-m", "tests.browser.live_server", "--port", str(self.port)]
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            # A session of its own: kill() ends gunicorn's worker with its master.
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.environment(), stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if requests.get(f"{self.base}/login", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout} s: {self.log_tail()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:] if self.log_path.exists() else ""


@pytest.fixture
def live_process(tmp_path: Path) -> Iterator[LiveProcess]:
    """A not-yet-started server process; create the schema and data with ``config()`` first."""
    live = LiveProcess(tmp_path)
    try:
        yield live
    finally:
        live.kill()
