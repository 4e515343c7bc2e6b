"""Real editing histories replayed through real Socket.IO clients against a real server.

Sequential traces: one client types the whole trace (several transactions per Yjs update, so a
trace costs at most ~1,500 messages) and the server's stored text must equal the trace's
``endContent`` byte for byte. The concurrent ``clownschool`` trace: three clients, one per
author; each author's edits are made on a private "trace doc" holding exactly the history that
author had seen (the transaction's causal past, as ``parents`` says), and the resulting Yjs
updates are sent by that author's client. At the end every client and the server hold
``endContent``. Traces live in ../shared/data/editing-traces (see SOURCE.md there).
"""
from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pycrdt import Doc, Text, merge_updates

from codedraft.codes import operations as codes
from codedraft.codes.models import Clause
from codedraft.collab.core import depends_on_missing
from codedraft.collab.namespace import TokenBucket
from codedraft.extensions import db
from tests.conftest import PASSWORD, shared_file
from tests.realtime.conftest import stored_text
from tests.support.live import YClient, http_sign_in, serving, wait_for

MAX_MESSAGES = 1_500
SLOW = os.environ.get("CODEDRAFT_SLOW") == "1"
# Prefix of the two big traces replayed in the ordinary run (all of them with CODEDRAFT_SLOW=1).
BIG_TRACE_PREFIX = 12_000


def load_trace(name: str) -> dict[str, Any]:
    path = shared_file("data", "editing-traces", f"{name}.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        trace: dict[str, Any] = json.load(handle)
    return trace


def utf8_offset(mirror: str, position: int) -> int:
    """pycrdt counts UTF-8 bytes; the traces count code points (DESIGN.md)."""
    return position if mirror.isascii() else len(mirror[:position].encode("utf-8"))


def splice(text: Text, mirror: str, patch: list[Any]) -> str:
    """Apply one ``[position, deleted, inserted]`` patch to ``text``; return the new mirror."""
    position, deleted, inserted = patch
    start = utf8_offset(mirror, position)
    if deleted:
        end = start + len(mirror[position:position + deleted].encode("utf-8"))
        del text[start:end]
    if inserted:
        text.insert(start, inserted)
    return mirror[:position] + inserted + mirror[position + deleted:]


@dataclass
class TraceStage:
    app: Any
    base: str
    clause: Clause
    emails: list[str]
    clients: list[YClient] = field(default_factory=list)

    def editor(self, number: int = 0) -> YClient:
        client = YClient(self.base, http_sign_in(self.base, self.emails[number], PASSWORD)).connect()
        self.clients.append(client)
        # These tests measure replay, not flood control (SECURITY-CASES 12 has its own test).
        namespace = self.app.extensions["codedraft_collab_namespace"]
        namespace.connections[client.sio.get_sid("/collab")].bucket = TokenBucket(rate=1e9, capacity=1e9, tokens=1e9)
        assert client.join(self.clause.uid)["ok"]
        assert client.synced.wait(5)
        return client


@pytest.fixture
def trace_stage(app, make_code, make_user) -> Iterator[TraceStage]:
    code = make_code("Trace Code")
    clause = codes.add_clause(codes.add_chapter(code, "Chapter"), kind="section", title="Trace", body="")
    emails = [make_user("chair", code, name=f"Author {n}").email for n in range(3)]
    db.session.commit()
    with serving(app) as base:
        stage = TraceStage(app, base, clause, emails)
        yield stage
        for client in stage.clients:
            client.close()


def replay_sequential(client: YClient, txns: list[dict[str, Any]]) -> tuple[str, int]:
    """Type the transactions through ``client``, several per Yjs update; return (text, messages)."""
    per_message = max(1, math.ceil(len(txns) / MAX_MESSAGES))
    mirror = ""
    messages = 0
    for start in range(0, len(txns), per_message):
        with client.editing() as text:
            for txn in txns[start:start + per_message]:
                for patch in txn["patches"]:
                    mirror = splice(text, mirror, patch)
        messages += 1
    return mirror, messages


def check_stored(stage: TraceStage, client: YClient, expected: str, messages: int) -> None:
    # Two more acks than updates: the client's step 1 on joining and its step 2 answering the server's.
    wait_for(lambda: len(client.acks) >= messages + 2, timeout=60, message="every update acknowledged")
    assert all(ack["ok"] for ack in client.acks), [a for a in client.acks if not a["ok"]][:3]
    assert client.value() == expected
    stored = stored_text(stage.app, stage.clause.id)
    assert stored.encode("utf-8") == expected.encode("utf-8")
    with stage.app.app_context():
        assert db.session.get(Clause, stage.clause.id).body == expected
        db.session.remove()


SMALL_SEQUENTIAL = ["sveltecomponent", "json-crdt-patch", "json-crdt-blog-post", "clownschool_flat", "rustcode"]


@pytest.mark.parametrize("name", SMALL_SEQUENTIAL)
def test_sequential_trace_reaches_its_end_content(trace_stage, name):
    trace = load_trace(name)
    assert trace["startContent"] == ""
    client = trace_stage.editor()
    text, messages = replay_sequential(client, trace["txns"])
    assert text == trace["endContent"]  # the local replay itself is right
    assert messages <= MAX_MESSAGES
    check_stored(trace_stage, client, trace["endContent"], messages)


@pytest.mark.parametrize("name", ["automerge-paper", "seph-blog1"])
def test_big_trace(trace_stage, name):
    """A prefix normally; the whole trace with CODEDRAFT_SLOW=1."""
    trace = load_trace(name)
    txns = trace["txns"] if SLOW else trace["txns"][:BIG_TRACE_PREFIX]
    expected = ""
    for txn in txns:
        for position, deleted, inserted in txn["patches"]:
            expected = expected[:position] + inserted + expected[position + deleted:]
    if SLOW:
        assert expected == trace["endContent"]
    client = trace_stage.editor()
    text, messages = replay_sequential(client, txns)
    assert text == expected
    check_stored(trace_stage, client, expected, messages)


# --- the concurrent trace ---------------------------------------------------------------------


@dataclass
class Author:
    """One author of the concurrent trace: a private trace doc and the client that sends."""

    number: int
    client: YClient
    doc: Doc[Text] = field(default_factory=Doc)
    seen: list[int] = field(default_factory=list)  # per author: last txn seq applied here (-1: none)
    buffer: list[int] = field(default_factory=list)  # txn indices made but not yet sent

    @property
    def text(self) -> Text:
        return self.doc.get("body", type=Text)


def causal_vectors(txns: list[dict[str, Any]], authors: int) -> tuple[list[int], list[list[int]]]:
    """Per txn: its sequence number among its author's txns, and the vector of the latest txn
    seq of every author in its causal past including itself. Asserts each author's txns form a
    chain (each builds on the author's previous one), which makes vectors exact."""
    counts = [0] * authors
    sequence: list[int] = []
    vectors: list[list[int]] = []
    for index, txn in enumerate(txns):
        agent = txn["agent"]
        past = [-1] * authors
        for parent in txn["parents"]:
            assert parent < index
            past = [max(a, b) for a, b in zip(past, vectors[parent], strict=True)]
        assert past[agent] == counts[agent] - 1, f"txn {index} does not build on its author's previous one"
        sequence.append(counts[agent])
        counts[agent] += 1
        past[agent] = sequence[-1]
        vectors.append(past)
    return sequence, vectors


def test_concurrent_clownschool_converges(trace_stage):
    trace = load_trace("clownschool")
    txns: list[dict[str, Any]] = trace["txns"]
    count = trace["numAgents"]
    sequence, vectors = causal_vectors(txns, count)
    by_author_seq = {(txn["agent"], sequence[i]): i for i, txn in enumerate(txns)}
    authors = [Author(n, trace_stage.editor(n), seen=[-1] * count) for n in range(count)]
    updates: list[bytes] = [b""] * len(txns)
    sent = 0

    def flush(author: Author) -> None:
        """Send what the author made since the last flush, once its dependencies are there."""
        nonlocal sent
        if not author.buffer:
            return
        update = merge_updates(*(updates[i] for i in author.buffer))
        client = author.client
        wait_for(lambda: not depends_on_missing(update, client.state_vector()), timeout=20,
                 message=f"author {author.number} receives what its edits build on")
        client.apply_local(update)  # observed as a local change: the client sends it
        author.buffer = []
        sent += 1

    for index, txn in enumerate(txns):
        author = authors[txn["agent"]]
        past = [max((vectors[p][a] for p in txn["parents"]), default=-1) for a in range(count)]
        # Whatever the author had seen from others and not yet sent must reach the server first.
        for other in authors:
            if other is not author and other.buffer and past[other.number] >= sequence[other.buffer[0]]:
                flush(other)
        # Bring the trace doc to exactly the causal past of this txn, in trace order.
        missing = sorted(by_author_seq[(a, s)] for a in range(count) if a != author.number
                         for s in range(author.seen[a] + 1, past[a] + 1))
        with author.doc.transaction():
            for earlier in missing:
                author.doc.apply_update(updates[earlier])
        for a in range(count):
            author.seen[a] = max(author.seen[a], past[a])
        before = author.doc.get_state()
        mirror = str(author.text)
        with author.doc.transaction():
            for patch in txn["patches"]:
                mirror = splice(author.text, mirror, patch)
        updates[index] = author.doc.get_update(before)
        author.seen[author.number] = sequence[index]
        author.buffer.append(index)
        if len(author.buffer) >= 200:
            flush(author)
    for author in authors:
        flush(author)
    end = trace["endContent"]
    for author in authors:
        wait_for(lambda a=author: a.client.value() == end, timeout=30, message=f"client {author.number} converges")
    wait_for(lambda: all(len(a.client.acks) >= 1 for a in authors), message="acks")
    for author in authors:
        assert all(ack["ok"] or ack.get("resync") for ack in author.client.acks)
    assert stored_text(trace_stage.app, trace_stage.clause.id).encode("utf-8") == end.encode("utf-8")
    assert sent < 3_000
