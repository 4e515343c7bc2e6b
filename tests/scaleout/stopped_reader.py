"""A co-editor in a process of its own, for a test to stop (SIGSTOP) while others type.

    python -m tests.scaleout.stopped_reader BASE COOKIE CLAUSE_UID

Joins the clause, prints "ready" once synced, then reads one line from stdin: the length the
text should reach. It prints the SHA-256 of its text once the text is that long (or "timeout"
after two minutes) and whether it had to reconnect (a stop longer than Engine.IO's ping
deadline ends the connection; the browser then rejoins and syncs, and so does this; the test
sets a deadline long enough that it must not happen), and exits.
"""
from __future__ import annotations

import hashlib
import sys
import time

from tests.scaleout.cluster import Typist


def main() -> None:
    base, cookie, uid = sys.argv[1:4]
    reader = Typist(base, cookie, "reader")
    reader.connect()
    assert reader.join(uid)["ok"]
    assert reader.synced.wait(30)
    print("ready", flush=True)
    expected = int(sys.stdin.readline())
    deadline = time.monotonic() + 120
    reconnected = False
    while len(reader.value()) < expected and time.monotonic() < deadline:
        if not reader.sio.connected:
            reader.reconnect()
            reconnected = True
        time.sleep(0.05)
    value = reader.value()
    print(hashlib.sha256(value.encode()).hexdigest() if len(value) == expected else "timeout", flush=True)
    print("reconnected" if reconnected else "same connection", flush=True)
    reader.close()


if __name__ == "__main__":
    main()
