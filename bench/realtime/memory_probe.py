"""CodeDraft with a memory probe, for the soak (bench/soak.py --probe-memory).

gunicorn serves ``app`` from here instead of wsgi:app (CODEDRAFT_WSGI_APP). Every
CODEDRAFT_PROBE_EVERY seconds a greenlet appends one JSON line to CODEDRAFT_PROBE_FILE:

* resident memory, anonymous and file-backed;
* Python's live objects (``sys.getallocatedblocks``, the gc's object count and the types that grew);
* what glibc's malloc has handed out and what it holds free (the documents' Rust memory is there);
* the sizes of what the server keeps: open clauses, their encoded state, catch-up ids, sockets.

Together they say whether a rise is the documents growing, Python objects piling up (a leak), or
neither (allocators keeping pages). Cheap enough to leave on for a soak. With
CODEDRAFT_PROBE_TRACEMALLOC=1 it also traces allocations and lists the biggest growths by source
line; that slows the server several times and its snapshots themselves inflate the resident
memory, so it finds a leak's place, not its size.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from codedraft import create_app
from codedraft.collab.store import store_for
from codedraft.extensions import socketio

TRACE_DEPTH = 8
TOP_GROWTHS = 15


def resident_mb() -> dict[str, float]:
    """VmRSS and its anonymous and file-backed parts, in MB."""
    wanted = {"VmRSS:": "rss_mb", "RssAnon:": "anon_mb", "RssFile:": "file_mb"}
    found: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0] + ":"
        if key in wanted:
            found[wanted[key]] = round(int(line.split()[1]) / 1024, 1)
    return found


def malloc_arena_mb() -> dict[str, float]:
    """glibc's own view: bytes in use by malloc, and bytes it holds free (fragmentation)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return {}

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    if not hasattr(libc, "mallinfo2"):
        return {}
    libc.mallinfo2.restype = Mallinfo2
    info = libc.mallinfo2()
    return {"in_use_mb": round((info.uordblks + info.hblkhd) / 2**20, 1),
            "held_free_mb": round(info.fordblks / 2**20, 1)}


def server_state(flask_app: Any) -> dict[str, Any]:
    """Sizes of what the server keeps: open clauses, their documents, bodies owed, sockets."""
    store = store_for(flask_app)
    clauses = [store.opened(uid) for uid in list(store._open)]  # noqa: SLF001 (a probe looks inside)
    server = socketio.server
    return {
        "open_clauses": len(clauses),
        "document_state_bytes": sum(len(c.doc.encode_state()) for c in clauses if c is not None),
        "clauses_owing_body": sum(1 for c in clauses if c is not None and c.body_owed),
        "engineio_sockets": len(server.eio.sockets) if server is not None else None,
        "gc_objects": len(gc.get_objects()),
    }


def object_counts() -> Counter[str]:
    return Counter(type(o).__name__ for o in gc.get_objects())


def traced_growths(first: tracemalloc.Snapshot | None) -> dict[str, Any]:
    if first is None:
        return {}
    growths = tracemalloc.take_snapshot().compare_to(first, "traceback")[:TOP_GROWTHS]
    return {"python_traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1),
            "top_growths": [{"kb": round(g.size_diff / 1024, 1), "count": g.count_diff,
                             "where": [f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno}"
                                       for f in g.traceback][-4:]}
                            for g in growths]}


def probe_loop(flask_app: Any, path: Path, every: float) -> None:
    started = time.monotonic()
    first_counts = object_counts()
    first = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    while True:
        counts = object_counts()
        record = {
            "seconds": round(time.monotonic() - started, 1),
            **resident_mb(),
            "python_blocks": sys.getallocatedblocks(),
            "malloc": malloc_arena_mb(),
            **server_state(flask_app),
            "object_growth": dict((counts - first_counts).most_common(8)),
            **traced_growths(first),
        }
        with path.open("a") as out:
            out.write(json.dumps(record) + "\n")
        time.sleep(every)


if os.environ.get("CODEDRAFT_PROBE_TRACEMALLOC") == "1":
    tracemalloc.start(TRACE_DEPTH)
app = create_app()
_probe = threading.Thread(target=probe_loop, name="memory-probe", daemon=True,
                          args=(app, Path(os.environ["CODEDRAFT_PROBE_FILE"]),
                                float(os.environ.get("CODEDRAFT_PROBE_EVERY", "60"))))
_probe.start()
