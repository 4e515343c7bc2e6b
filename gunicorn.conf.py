"""gunicorn settings for one CodeDraft server process (see docs/deploy.md).

Start one gunicorn per port; several of them, on PostgreSQL and Redis, behind the proxy in
deploy/nginx.conf. Every setting can be overridden on the command line or by the variables below.
"""
import os
from typing import Any

from gunicorn.workers.base_async import AsyncWorker


# The hooks import the app's code when called, in the worker: importing it here loaded Flask and
# much of CodeDraft into gunicorn's master too, about 9 MB of a process that only supervises.
def post_worker_init(worker: Any) -> None:
    from codedraft.scaleout import gunicorn_hooks

    gunicorn_hooks.post_worker_init(worker)


def worker_exit(server: Any, worker: Any) -> None:
    from codedraft.scaleout import gunicorn_hooks

    gunicorn_hooks.worker_exit(server, worker)


# Another app module only for measurements (bench/soak.py --probe-memory).
wsgi_app = os.environ.get("CODEDRAFT_WSGI_APP", "wsgi:app")
# gevent notes, for every greenlet, the stack that spawned it (a debugging aid): some 30 objects
# for each of the four greenlets of every connected socket.
os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")
bind = [os.environ.get("CODEDRAFT_BIND", "127.0.0.1:5001")]
# One worker: a Socket.IO session lives in one process (see the hooks module for why).
workers = 1
# gevent: every socket a greenlet on one OS thread. With a thread per socket (gthread), a
# thousand viewers meant four thousand threads fighting over the GIL and joins timing out
# (bench/results/realtime.json); codedraft.concurrency moves blocking work to real threads.


class GeventWorker(AsyncWorker):
    """gunicorn's gevent worker, with gevent loaded in the worker process only.

    gunicorn's master makes each worker object before it forks, so naming "gevent" loaded gevent
    into the master, a process that only supervises: 6 MB of its 31 (bench/realtime_bench.py,
    1,000 viewers). The master makes this one; in the forked worker, before anything else runs,
    it turns into gunicorn's own GeventWorker (the same object, its class swapped: both are
    AsyncWorkers made by the same constructor), which loads and starts gevent there.
    """

    def init_process(self) -> None:
        from gunicorn.workers.ggevent import GeventWorker as Loaded

        self.__class__ = Loaded
        self.init_process()


_chosen = os.environ.get("CODEDRAFT_WORKER_CLASS", "gevent")
worker_class: Any = GeventWorker if _chosen == "gevent" else _chosen
worker_connections = int(os.environ.get("CODEDRAFT_CONNECTIONS", "4000"))
threads = int(os.environ.get("CODEDRAFT_THREADS", "256"))  # used only by CODEDRAFT_WORKER_CLASS=gthread
# The gthread worker's heartbeat runs in its main loop, so long-lived websockets are not "stuck".
timeout = 60
graceful_timeout = 10
keepalive = 5
# Behind the proxy: trust X-Forwarded-* only from it.
forwarded_allow_ips = os.environ.get("CODEDRAFT_PROXY_IPS", "127.0.0.1")
accesslog = os.environ.get("CODEDRAFT_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("CODEDRAFT_LOG_LEVEL", "warning")
proc_name = "codedraft"
