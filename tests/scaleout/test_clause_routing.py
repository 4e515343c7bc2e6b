"""deploy/nginx.conf, run by nginx for real in front of two processes (PostgreSQL + Redis):
co-editing connections are routed by the clause in their query, as the browser sends it
(static/src/collab/socket.js), and the clause's pages by the clause in their path, so everything
about a clause reaches one process, whichever transport a connection uses; nginx's own log says
which process served each request (a websocket's once it closes)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
import socketio

from codedraft.codes import operations as codes
from codedraft.codes.models import Clause
from codedraft.extensions import db
from tests.scaleout import cluster as cl
from tests.scaleout.conftest import Scene
from tests.support.live import wait_for
from tests.support.nginx import nginx_binary, served_by, start_nginx

EDITORS = ("chair", "member")  # both may edit: every token typed is acknowledged
# Clauses made until the proxy has put one on each process: 2 ** -59 that 60 all land on one.
MOST_CLAUSES = 60


def _nginx() -> str:
    binary = nginx_binary()
    if binary is None:
        message = "this test runs deploy/nginx.conf: `make system-deps` installs nginx-light"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _new_clause(scene: Scene, n: int) -> str:
    with scene.app.app_context():
        chapter = db.session.get(Clause, scene.clause.id).chapter
        uid = codes.add_clause(chapter, kind="commitment", number=str(n + 2), title=f"Routed {n}",
                               body="Routed text.").uid
        db.session.commit()
        db.session.remove()
    return uid


def _served(proxy_dir: Path, uid: str) -> dict[int, int]:
    """How many requests about clause ``uid`` (its connections, its pages) each process served
    (port -> count)."""
    counts: dict[int, int] = {}
    for port, request in served_by(proxy_dir):
        if re.search(rf"[?&]clause={re.escape(uid)}\b|/clauses/{re.escape(uid)}\b", request):
            counts[port] = counts.get(port, 0) + 1
    return counts


def _one_clause_on_each(scene: Scene, base: str, proxy_dir: Path, ports: list[int]) -> list[str]:
    """Clauses, one served by each process (in the order of ``ports``): a new clause's Engine.IO
    handshake through the proxy (one plain request) says where the proxy sends the clause."""
    found: dict[int, str] = {}
    for n in range(MOST_CLAUSES):
        uid = _new_clause(scene, n)
        handshake = requests.get(f"{base}/socket.io/", params={"EIO": "4", "transport": "polling", "clause": uid},
                                 timeout=10)
        assert handshake.status_code == 200, handshake.text
        wait_for(lambda uid=uid: _served(proxy_dir, uid), 10, "the handshake in nginx's log")
        (port,) = _served(proxy_dir, uid)
        found.setdefault(port, uid)
        if len(found) == len(ports):
            return [found[port] for port in ports]
    raise AssertionError(f"the proxy sent {MOST_CLAUSES} clauses all to one process: not routed by clause")


def test_every_connection_of_a_clause_reaches_one_process_through_the_deployed_proxy(pg_cluster, scene, tmp_path):
    binary = _nginx()
    ports = [pg_cluster.add().port, pg_cluster.add().port]
    proxy_dir = tmp_path / "nginx"
    proxy_dir.mkdir()
    port = cl.free_port()
    proxy = start_nginx(binary, proxy_dir, port, ports, log_upstreams=True)
    base = f"http://127.0.0.1:{port}"
    editors: list[cl.Typist] = []
    pollers: list[socketio.Client] = []
    try:
        wait_for(lambda: _answers(base), 30, f"nginx on {base} (log: {proxy_dir / 'nginx.log'})")
        uids = _one_clause_on_each(scene, base, proxy_dir, ports)
        for uid in uids:
            for who in EDITORS:
                typist = cl.Typist(f"{base}?clause={uid}", scene.cookie(who), f"{who}-{uid}")
                typist.connect()
                assert typist.join(uid)["ok"]
                assert typist.synced.wait(10)
                editors.append(typist)
            # As a browser starts: long-polling first (several requests of one session, each of
            # which the process holding the session must answer), then the upgrade.
            poller = socketio.Client(reconnection=False)
            poller.connect(f"{base}?clause={uid}", namespaces=["/collab"],
                           headers={"Cookie": scene.cookie("member")}, wait_timeout=10)
            assert poller.call("join", {"clause": uid}, namespace="/collab", timeout=10)["ok"]
            pollers.append(poller)
        for editor in editors:
            editor.type_token(1)
        # The clause's page and its suggestion list go where its connections went.
        page = cl.browser_with(scene.cookie("chair"))
        for uid in uids:
            for path in ("", "/suggestions"):
                answer = page.get(f"{base}/codes/{scene.code.slug}/clauses/{uid}{path}", timeout=10)
                assert answer.status_code == 200, (path, answer.status_code)
        for uid in uids:
            in_clause = [editor for editor in editors if editor.clause == uid]
            wait_for(lambda in_clause=in_clause: len({e.value() for e in in_clause}) == 1
                     and all(e.acked == set(e.typed) for e in in_clause), 20, f"clause {uid} converged")
    finally:
        for editor in editors:
            editor.close()
        for poller in pollers:
            poller.disconnect()
        proxy.terminate()
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
    # A websocket is logged once it has closed. Each clause: its discovering handshake, a websocket
    # for each editor, the long-polling connection's handshake and upgrade at least, its page
    # and its suggestion list.
    websockets = len(EDITORS) + 1
    wait_for(lambda: all(sum(1 for _port, request in served_by(proxy_dir)
                             if f"clause={uid}" in request and "transport=websocket" in request) >= websockets
                         for uid in uids), 20, "every connection in nginx's log")
    for port, uid in zip(ports, uids, strict=True):
        served = _served(proxy_dir, uid)
        assert set(served) == {port} and served[port] >= websockets + 4, \
            f"clause {uid} was routed to the process on port {port}; its requests reached {served}"


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/login", timeout=2).status_code == 200
    except requests.RequestException:
        return False
