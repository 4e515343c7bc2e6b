"""The clause feed on Redis streams: one stream per clause, read in order by every process.

``XADD codedraft:clause-feed:<clause id>`` after the writer's commit, with the log id, the
publishing store's token and the update bytes; one reader per process ``XREAD``s the streams of
the clauses it holds, blocking, from the position it noted before reading the log (see
codedraft/collab/feed.py for why nothing falls between the two). A stream keeps its last
``STREAM_LENGTH`` entries (trimmed approximately) and expires a day after its last edit. A
reader that fell further behind than that (its last entry trimmed away while it read full
batches) would otherwise skip the trimmed entries silently; it notices and reads the log instead.

A process-private wake stream is part of every ``XREAD``, so a clause opened while the reader
blocks is followed at once rather than after the block times out.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid

import redis

from codedraft.collab.feed import START, OnEdits, OnGap, OnQuiet, Published, StreamedEdit, position_key

log = logging.getLogger(__name__)

STREAM_LENGTH = 20_000
STREAM_SECONDS = 24 * 3600
# A stream's expiry is set again when this process last set it longer ago than this, not with
# every batch: one command fewer per clause per group commit, and "a day after its last edit"
# stays true to within a minute.
EXPIRY_REFRESH_SECONDS = 60.0
# The reader blocks this long when nothing comes; a quiet feed is when owed bodies are written.
BLOCK_MS = 500
# Owed bodies are written at least this often while edits keep coming.
QUIET_AT_LEAST_EVERY = 1.0
# At most this many edits per stream per read.
READ_COUNT = 1000
# Edits that could not be published are kept (and published again) up to this many.
UNPUBLISHED_LIMIT = 100_000




def stream_key(clause_id: int, prefix: str) -> str:
    """``prefix``: the deployment's (codedraft/scaleout/keys.py)."""
    return f"{prefix}:clause-feed:{clause_id}"


def peers_key(prefix: str) -> str:
    """Every feed announces its start here. A process killed between a commit and its
    publication left edits in the log that no stream carries; when it (or any process) starts,
    the others read the clauses they hold again from the log."""
    return f"{prefix}:clause-feed-peers"


class RedisClauseFeed:
    """A :class:`codedraft.collab.feed.ClauseFeed` on the Redis at ``url``."""

    def __init__(self, url: str, prefix: str) -> None:
        self.token = uuid.uuid4().hex
        self._prefix = prefix
        self._peers_key = peers_key(prefix)
        self._url = url
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        # The reader's own connection: a blocking XREAD holds it.
        self._reader_redis = redis.Redis.from_url(url, socket_timeout=BLOCK_MS / 1000 + 5,
                                                  socket_connect_timeout=5)
        self._wake_key = f"{prefix}:clause-feed-wake:{self.token}"
        self._wake_position = "$"
        self._peers_position = "$"
        self._following: dict[int, str] = {}
        self._lock = threading.Lock()
        self._unpublished: list[Published] = []
        self._on_edits: OnEdits | None = None
        self._on_gap: OnGap | None = None
        self._on_quiet: OnQuiet | None = None
        self._reader: threading.Thread | None = None
        self._closed = False
        self._quiet_at = time.monotonic()
        self._quiet_running = False
        # When this process last set each stream's expiry (time.monotonic()).
        self._expiry_set: dict[str, float] = {}
        self.expiry_refresh_seconds = EXPIRY_REFRESH_SECONDS
        self.stats = {"published": 0, "read": 0, "gaps": 0, "publish_failures": 0}

    # -- the interface --------------------------------------------------------------------------

    def start(self, on_edits: OnEdits, on_gap: OnGap, on_quiet: OnQuiet) -> None:
        with self._lock:
            if self._reader is not None:
                return
            self._on_edits, self._on_gap, self._on_quiet = on_edits, on_gap, on_quiet
            self._announce()
            # A thread, or a greenlet when gevent has patched threading (gunicorn's gevent worker).
            self._reader = threading.Thread(target=self._read_loop, name="clause-feed", daemon=True)
            self._reader.start()

    def position(self, clause_id: int) -> str:
        try:
            last = self._redis.xrevrange(stream_key(clause_id, self._prefix), count=1)
        except redis.RedisError:
            log.warning("clause feed: could not read the position of clause %s; following from the start",
                        clause_id)
            return START
        return _text(last[0][0]) if last else START

    def follow(self, clause_id: int, after: str) -> None:
        with self._lock:
            self._following[clause_id] = after
        self._wake()

    def forget(self, clause_id: int) -> None:
        with self._lock:
            self._following.pop(clause_id, None)

    def publish(self, edits: list[Published]) -> None:
        with self._lock:
            held, self._unpublished = self._unpublished, []
        todo = held + edits
        if not todo:
            return
        now = time.monotonic()
        stale = {key for key in (stream_key(edit.clause_id, self._prefix) for edit in todo)
                 if now - self._expiry_set.get(key, -self.expiry_refresh_seconds) >= self.expiry_refresh_seconds}
        try:
            pipe = self._redis.pipeline(transaction=False)
            for edit in todo:
                key = stream_key(edit.clause_id, self._prefix)
                pipe.xadd(key, {"i": edit.log_id, "o": self.token, "u": edit.update},
                          maxlen=STREAM_LENGTH, approximate=True)
            for key in stale:
                pipe.expire(key, STREAM_SECONDS)
            pipe.execute()
            self._expiry_set.update(dict.fromkeys(stale, now))
            self.stats["published"] += len(todo)
        except redis.RedisError as error:
            self.stats["publish_failures"] += 1
            with self._lock:
                # Kept in order, ahead of anything published meanwhile.
                self._unpublished = (todo + self._unpublished)[-UNPUBLISHED_LIMIT:]
            log.warning("clause feed: %d stored edit(s) not published yet (%s)", len(todo), type(error).__name__)

    def read_after(self, clause_id: int, after: str) -> list[StreamedEdit]:
        try:
            raw = self._redis.xrange(stream_key(clause_id, self._prefix), min=f"({after}" if after != START else "-",
                                     count=READ_COUNT)
        except redis.RedisError:
            return []
        return [_edit(entry_id, fields) for entry_id, fields in raw]

    def close(self) -> None:
        self._closed = True
        self._wake()
        for client in (self._redis, self._reader_redis):
            try:
                client.close()
            except redis.RedisError:
                pass

    # -- the reader -----------------------------------------------------------------------------

    def _announce(self) -> None:
        try:
            self._peers_position = _text(self._redis.xadd(self._peers_key, {"started": self.token}, maxlen=100,
                                                          approximate=True))
        except redis.RedisError:
            pass  # Redis is down: the reader's recovery reads the log anyway

    def _wake(self) -> None:
        try:
            self._redis.xadd(self._wake_key, {"w": 1}, maxlen=10, approximate=False)
            self._redis.expire(self._wake_key, 600)
        except redis.RedisError:
            pass  # the reader's next timeout picks the clause up

    def _read_loop(self) -> None:
        broken = False
        delay = 0.5
        while not self._closed:
            try:
                if broken:
                    self._reader_redis.ping()
                    self._recovered()
                    broken, delay = False, 0.5
                self._read_once()
            except redis.RedisError as error:
                if not broken:
                    log.warning("clause feed: connection to Redis lost (%s); reading the log once it is back",
                                type(error).__name__)
                broken = True
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
            except Exception:  # a store's failure on one batch must not end the reader
                log.exception("clause feed: handling streamed edits failed")
                time.sleep(0.1)

    def _quiet(self) -> None:
        """Run ``on_quiet`` (database writes) beside the reader, never in its way: while it waits on
        PostgreSQL the reader goes on delivering. At most one runs at a time."""
        with self._lock:
            if self._quiet_running:
                return
            self._quiet_running = True

        def run() -> None:
            try:
                if self._on_quiet is not None:
                    self._on_quiet()
            except Exception:
                log.exception("clause feed: writing owed bodies failed")
            finally:
                with self._lock:
                    self._quiet_running = False

        threading.Thread(target=run, name="clause-feed-bodies", daemon=True).start()

    def _recovered(self) -> None:
        """Redis answers again: publish what waited, then let the store read the log for what
        this process may have missed (entries published while it could not read, or lost with
        a Redis that restarted empty)."""
        self.stats["gaps"] += 1
        with self._lock:
            waiting = bool(self._unpublished)
        if waiting:
            self.publish([])
        if self._on_gap is not None:
            self._on_gap()

    def _read_once(self) -> None:
        with self._lock:
            streams = {stream_key(clause_id, self._prefix): after for clause_id, after in self._following.items()}
            unpublished = bool(self._unpublished)
        if unpublished:  # published late, others read them from their streams
            self.publish([])
        streams[self._wake_key] = self._wake_position
        streams[self._peers_key] = self._peers_position
        answer = self._reader_redis.xread(streams, count=READ_COUNT, block=BLOCK_MS)
        if (not answer or time.monotonic() - self._quiet_at >= QUIET_AT_LEAST_EVERY) and self._on_quiet is not None:
            self._quiet_at = time.monotonic()
            self._quiet()
        if not answer:
            return
        for raw_key, entries in answer:
            key = _text(raw_key)
            if key == self._wake_key:
                self._wake_position = _text(entries[-1][0])
                continue
            if key == self._peers_key:
                self._peers_position = _text(entries[-1][0])
                if any(fields.get(b"started", b"").decode() != self.token for _, fields in entries):
                    self.stats["gaps"] += 1
                    if self._on_gap is not None:
                        self._on_gap()
                continue
            clause_id = int(key.rsplit(":", 1)[1])
            if len(entries) >= READ_COUNT and self._trimmed_past(key, streams[key]):
                self.stats["gaps"] += 1
                if self._on_gap is not None:
                    self._on_gap()  # moves this clause's position past what the log gave
            edits = [_edit(entry_id, fields) for entry_id, fields in entries]
            with self._lock:
                after = self._following.get(clause_id)
                if after is None:
                    continue
                edits = [e for e in edits if position_key(e.position) > position_key(after)]
                if not edits:
                    continue
                self._following[clause_id] = edits[-1].position
            self.stats["read"] += len(edits)
            if self._on_edits is not None:
                self._on_edits(clause_id, edits)

    def _trimmed_past(self, key: str, after: str) -> bool:
        """Whether entries after ``after`` were trimmed before this reader read them: the stream's
        first entry now lies beyond it. Asked only of full batches, since a reader that keeps up
        reads short ones and cannot have fallen ``STREAM_LENGTH`` entries behind."""
        info = self._reader_redis.xinfo_stream(key)
        if after == START:  # following from the stream's beginning: lost only what was trimmed
            return int(info.get("entries-added", 0)) > int(info.get("length", 0))
        first = info.get("recorded-first-entry-id") or (info.get("first-entry") or (None,))[0]
        # The entry at ``after`` is gone, so the trimming reached past this reader's position.
        return first is not None and position_key(_text(first)) > position_key(after)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _edit(entry_id: bytes | str, fields: dict[bytes, bytes]) -> StreamedEdit:
    return StreamedEdit(_text(entry_id), int(fields[b"i"]), fields[b"o"].decode(), fields[b"u"])
