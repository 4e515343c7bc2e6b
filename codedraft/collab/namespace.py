"""The Socket.IO adapter around the co-editing core: authorise, hand over, acknowledge, broadcast.

Nothing here knows Yjs: messages go to :class:`ClauseStore`, which asks the pure core. What this
module owns is who may do what (SECURITY-CASES 1-6: read from the database once per socket and
clause, and again after any change of rights or logins, announced by a signal), message shape
checks (8, 11), throttling of every event (12, 35), presence, which the server stamps with the
account's own name and colour (34, codedraft.collab.presence), and the fan-out: the edits of a
clause stored within a few milliseconds reach each other socket in one message.
"""
from __future__ import annotations

import functools
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, g, has_request_context, request, session
from flask_babel import get_locale
from flask_socketio import ConnectionRefusedError, Namespace, emit, join_room, leave_room

from codedraft import policy, signals
from codedraft.accounts.models import User
from codedraft.accounts.operations import live_login_session
from codedraft.codes.models import Clause, Role
from codedraft.codes.operations import clause_by_uid
from codedraft.collab.core import AwarenessEntry, ProtocolError, awareness_removal, pack_frames
from codedraft.collab.messages import said_in
from codedraft.collab.presence import ClaimBook, Identity, MemoryClaimBook, accept_presence
from codedraft.collab.store import IDLE_SECONDS, ClauseStore, PersistenceFailed
from codedraft.extensions import db, socketio
from codedraft.server import enable_nodelay
from codedraft.web import LOGIN_SESSION_KEY
from codedraft.websocket import keep_what_a_socket_needs, send_event

log = logging.getLogger(__name__)

NAMESPACE = "/collab"
# A y-protocols awareness message starts with message type 1 (sync messages with 0).
AWARENESS_FRAME = b"\x01"
# Typing produces a few messages a second; a burst after reconnect a few hundred. Beyond this a
# socket is flooding (SECURITY-CASES 12) and is cut off, other sockets unaffected.
RATE_PER_SECOND = 60.0
RATE_BURST = 400.0
# Joining opens (and may load) a clause document and replays everyone's presence: it spends
# this many messages' worth of the budget, so a socket joining in a loop is cut off quickly.
JOIN_COST = 20.0
# How often this process looks for clause documents nobody here uses any more (ClauseStore.evict_idle).
SWEEP_EVERY_SECONDS = 30.0
# Open co-editing connections one account may hold in this process: a clause page holds one (its
# editor and its feedback panel share it), so this is thirty-two tabs and windows. Each costs the
# server some 65 KB and a slot of the worker's connections (gunicorn.conf.py), so without a cap
# one signed-in script could take them all and lock everyone else out.
SOCKETS_PER_ACCOUNT = 32
# Every socket joins this room when it reads its rights from the database; closing the room (in
# every process, through the message queue when there is one) is how a change of rights or a
# logout tells every socket to read them again. A socket not in the room holds no cached rights.
RIGHTS_ROOM = "rights-current"


def clause_room(uid: str) -> str:
    return f"clause:{uid}"


def login_room(login_session_id: str) -> str:
    return f"login:{login_session_id}"


@dataclass
class TokenBucket:
    rate: float = RATE_PER_SECOND
    capacity: float = RATE_BURST
    tokens: float = RATE_BURST
    stamp: float = field(default_factory=time.monotonic)

    def take(self, cost: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


@dataclass
class Connection:
    """What the server remembers of one socket: who, which login, which clauses, whose presence."""

    user_id: int
    login_session_id: str
    # The account's name and colour: the only presence others see from this socket.
    identity: Identity
    bucket: TokenBucket = field(default_factory=TokenBucket)
    # Whether TCP_NODELAY is in force on this socket, read back from the kernel.
    nodelay: bool = False
    # The interface language at connect (session, else Accept-Language): refusals are said in it.
    language: str | None = None
    # clause uid -> awareness client id -> last clock: the ids this socket introduced there (only
    # these may it update or remove), and what to announce when it leaves.
    presence: dict[str, dict[int, int]] = field(default_factory=dict)
    # clause uid -> the last awareness message this socket sent there, replayed to newcomers so
    # they see who is here at once (peers only re-announce themselves every 15 s).
    awareness_frames: dict[str, bytes] = field(default_factory=dict)
    # clause uid -> what this socket's user may do there (None: nothing), valid while the socket
    # is in RIGHTS_ROOM.
    rights: dict[str, policy.ClauseRights | None] = field(default_factory=dict)
    # clause uid -> the Yjs client ids this socket's user owns there (claimed in the claim book,
    # by presence or by a first edit): the only ids its updates may add history to.
    authored: dict[str, set[int]] = field(default_factory=dict)


def _in_the_sockets_language(handler: Callable[[CollabNamespace, Any], dict[str, Any]]
                              ) -> Callable[[CollabNamespace, Any], dict[str, Any]]:
    """An event handler whose refusal ({"ok": False, "error": ...}) is said in the socket's language."""

    @functools.wraps(handler)
    def answer(self: CollabNamespace, data: Any = None) -> dict[str, Any]:
        return self._in_language(request.sid, handler(self, data))

    return answer


class CollabNamespace(Namespace):
    def __init__(self, app: Flask, store: ClauseStore, *, idle_seconds: float = IDLE_SECONDS,
                 sweep_every: float = SWEEP_EVERY_SECONDS, claims: ClaimBook | None = None,
                 sockets_per_account: int = SOCKETS_PER_ACCOUNT) -> None:
        super().__init__(NAMESPACE)
        self.app = app
        self.store = store
        self.claims: ClaimBook = claims or MemoryClaimBook()
        self.connections: dict[str, Connection] = {}
        self.sockets_per_account = sockets_per_account
        self._lock = threading.Lock()
        self.idle_seconds = idle_seconds
        self.sweep_every = sweep_every
        self._sweeping = False
        self.fanout = Fanout(self.readers)
        self.route_urls: list[str] | None = None
        self.route_self: str | None = None

    # -- helpers ------------------------------------------------------------------------------

    def _live_user(self, sid: str) -> User | None:
        """The socket's user if their login session is still alive; else the socket is closed."""
        connection = self.connections.get(sid)
        login = live_login_session(connection.login_session_id) if connection else None
        if login is None:
            self._drop(sid, "Your session has ended; sign in again.")
            return None
        return login.user

    def _drop(self, sid: str, reason: str) -> None:
        """Tell the socket why, then close its transport, not just the namespace: a client that
        ignores the namespace's disconnect could otherwise keep the connection and go on sending."""
        _reply("error", {"clause": None, "error": self._said(sid, reason)}, to=sid)
        close_transport(sid)

    def _said(self, sid: str, reason: str) -> str:
        connection = self.connections.get(sid)
        if connection is not None:
            return said_in(reason, connection.language)
        # A socket dropped while its event was served: the request's language, or with no
        # request (the "y" events) the app's.
        return said_in(reason, None if has_request_context() else self.app.config["BABEL_DEFAULT_LOCALE"])

    def _in_language(self, sid: str, result: dict[str, Any]) -> dict[str, Any]:
        """An event's answer, its refusal (``{"ok": False, "error": ...}``) said in the socket's language."""
        if isinstance(result, dict) and isinstance(result.get("error"), str):
            result["error"] = self._said(sid, result["error"])
        return result

    def _spend(self, sid: str, connection: Connection, cost: float = 1.0) -> bool:
        """Every event spends the socket's budget (SECURITY-CASES 12, 35); an exhausted one is cut off."""
        if connection.bucket.take(cost):
            return True
        log.warning("throttling socket %s of user %s", sid, connection.user_id)
        self._drop(sid, "Too many messages; slow down.")
        return False

    @staticmethod
    def _clause_uid(data: Any) -> str | None:
        if isinstance(data, dict) and isinstance(data.get("clause"), str) and 0 < len(data["clause"]) <= 64:
            return str(data["clause"])
        return None

    def _authorised_clause(self, sid: str, uid: str) -> tuple[User, Clause, Role] | None:
        user = self._live_user(sid)
        if user is None:
            return None
        clause = clause_by_uid(uid)
        role = policy.clause_role(user, clause) if clause is not None else None
        if clause is None or role is None:
            return None
        return user, clause, role

    def _owner_elsewhere(self, uid: str) -> str | None:
        """With owner routing (codedraft/scaleout/routing.py): the owner's URL when it is another
        process; None when this process serves the clause."""
        if not self.route_urls:
            return None
        from codedraft.scaleout.routing import owner_of

        owner = owner_of(uid, self.route_urls)
        return None if owner == self.route_self else owner

    def clauses_in_use(self) -> set[str]:
        """The clauses some socket of this process has joined."""
        return {uid for connection in list(self.connections.values()) for uid in list(connection.presence)}

    def _start_sweeping(self) -> None:
        """Begin the sweep of idle documents with the first socket (a CLI or a test app never needs it)."""
        with self._lock:
            if self._sweeping:
                return
            self._sweeping = True
        socketio.start_background_task(self._sweep)

    def _sweep(self) -> None:
        """Forever: drop idle documents every sweep."""
        while True:
            socketio.sleep(self.sweep_every)
            dropped = self._guarded("dropping idle clause documents",
                                    lambda: self.store.evict_idle(self.clauses_in_use(), idle_for=self.idle_seconds))
            if dropped:
                log.info("dropped %d idle clause document(s) from memory", len(dropped))

    @staticmethod
    def _guarded(what: str, step: Callable[[], list[str]]) -> list[str]:
        """One step of the sweep; a failure is logged and the sweep goes on."""
        try:
            return step()
        except Exception:
            log.exception("%s failed", what)
            return []

    # -- events -------------------------------------------------------------------------------

    def on_connect(self, auth: Any = None) -> None:
        login = live_login_session(session.get(LOGIN_SESSION_KEY))
        if login is None:
            # SECURITY-CASES 1: refused at connect; no room joined, nothing sent.
            raise ConnectionRefusedError(said_in("Sign in to edit clauses.", None))
        user = login.user
        connection = Connection(user_id=login.user_id, login_session_id=login.id,
                                identity=Identity(user.name, user.colour, user.id),
                                nodelay=_set_nodelay_from_environ(request.environ), language=str(get_locale() or "en"))
        # Counted and added with nothing in between that could yield to another connecting socket.
        held = sum(1 for other in list(self.connections.values()) if other.user_id == login.user_id)
        if held >= self.sockets_per_account:
            raise ConnectionRefusedError(said_in("Too many pages are open for this account; close some, then "
                                                 "reload this one.", None))
        self.connections[request.sid] = connection
        keep_what_a_socket_needs(request.environ)
        join_room(login_room(login.id))
        self._start_sweeping()

    def on_disconnect(self, reason: Any = None) -> None:
        connection = self.connections.pop(request.sid, None)
        if connection is None:
            return
        for uid, clocks in connection.presence.items():
            self._release_claims(connection, uid, clocks)
            if clocks:
                emit("y", {"clause": uid, "msg": awareness_removal(clocks)}, to=clause_room(uid), skip_sid=request.sid)

    def _release_claims(self, connection: Connection, uid: str, clocks: dict[int, int]) -> None:
        # An id this socket edited under stays its user's: the browser may still hold edits of it
        # (offline, unacknowledged) that it sends from its next connection, and nobody else may
        # take their clocks meanwhile (see ClauseDocument.receive's ``writes_as``).
        edited = connection.authored.get(uid, set())
        for client_id in clocks:
            if client_id in edited:
                continue
            try:
                self.claims.release(uid, client_id, connection.user_id)
            except Exception:  # a claim left behind expires; leaving must not fail for it
                log.exception("could not release presence %s in clause %s", client_id, uid)

    @_in_the_sockets_language
    def on_join(self, data: Any) -> dict[str, Any]:
        connection = self.connections.get(request.sid)
        if connection is None:
            return {"ok": False, "error": "Not connected."}
        if not self._spend(request.sid, connection, JOIN_COST):
            return {"ok": False, "error": "Too many messages; slow down."}
        uid = self._clause_uid(data)
        if uid is None:
            return {"ok": False, "error": "Send {clause: '<clause id>'}."}
        owner = self._owner_elsewhere(uid)
        if owner is not None:
            return {"ok": False, "error": "This clause is served by another process.", "redirect": owner}
        found = self._authorised_clause(request.sid, uid)
        if found is None:
            # SECURITY-CASES 2: same answer for missing and forbidden; room membership unchanged.
            return {"ok": False, "error": "No such clause, or you may not see it."}
        user, clause, _role = found
        readonly = not policy.can_edit_clause(user, clause)
        suggest_only = readonly and policy.can_suggest_on_clause(user, clause)
        name, colour = user.name, user.colour
        connection.identity = Identity(name, colour, user.id)
        # Never wait on the store (which may load the clause) while holding a pooled connection.
        db.session.close()
        opened = self.store.open(clause, compact=False)
        join_room(clause_room(uid))
        connection.presence.setdefault(uid, {})
        _reply("y", {"clause": uid, "msg": opened.doc.sync_step1()})
        for other_sid, other in list(self.connections.items()):
            frame = other.awareness_frames.get(uid)
            if frame is not None and other_sid != request.sid:
                _reply("y", {"clause": uid, "msg": frame})
        # The snapshot of a long replayed log is written after this socket is answered: the
        # write (an fsync) made the first open of a 10,000-update clause 10-15 ms slower.
        if self.store.owes_snapshot(opened):
            socketio.start_background_task(self.store.compact_if_long, opened)
        return {"ok": True, "readonly": readonly, "suggest_only": suggest_only,
                "user": {"id": user.id, "name": name, "color": colour}}

    @_in_the_sockets_language
    def on_leave(self, data: Any) -> dict[str, Any]:
        connection = self.connections.get(request.sid)
        if connection is None:
            return {"ok": False, "error": "Not connected."}
        if not self._spend(request.sid, connection):
            return {"ok": False, "error": "Too many messages; slow down."}
        uid = self._clause_uid(data)
        if uid is None:
            return {"ok": False, "error": "Send {clause: '<clause id>'}."}
        clocks = connection.presence.pop(uid, None)
        if clocks:
            self._release_claims(connection, uid, clocks)
        connection.awareness_frames.pop(uid, None)
        leave_room(clause_room(uid))
        if clocks:
            emit("y", {"clause": uid, "msg": awareness_removal(clocks)}, to=clause_room(uid))
        return {"ok": True}

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Edits and presence ("y", nearly every message a socket sends) are served in an app
        context only. Flask-SocketIO runs each event in a request context of its own: a Request
        built from the socket's environ, URL matching, the session cookie opened and verified,
        all of it for a handler that reads none of them (it has the socket id and the socket's
        own state); under bench/realtime_bench.py's acknowledged load that was about a sixth of
        the worker's profile samples, and serving "y" without it took acknowledged updates/s from
        1,284-1,396 to 1,760-1,854. Every other event keeps Flask-SocketIO's context."""
        if event == "y" and args:
            sid, data = args[0], (args[1] if len(args) > 1 else None)
            with self.app.app_context():
                return self._in_language(sid, self.receive_y(sid, data))
        return super().trigger_event(event, *args)

    def receive_y(self, sid: str, data: Any) -> dict[str, Any]:
        """A y-protocols message from socket ``sid``: an edit (authorised, validated, applied,
        stored; acknowledged by the answer, then broadcast) or presence. Uses no request context."""
        connection = self.connections.get(sid)
        if connection is None:
            return {"ok": False, "error": "Not connected."}
        if not self._spend(sid, connection):
            return {"ok": False, "error": "Too many messages; slow down."}
        uid = self._clause_uid(data)
        message = data.get("msg") if isinstance(data, dict) else None
        if uid is None or not isinstance(message, bytes | bytearray):
            return {"ok": False, "error": "Send {clause: '<clause id>', msg: <binary y-protocols message>}."}
        if uid not in connection.presence:
            return {"ok": False, "error": "Join the clause first."}
        known, rights = self._rights(sid, connection, uid)
        if not known:
            self._drop(sid, "Your session has ended; sign in again.")
            return {"ok": False, "error": "Your session has ended; sign in again."}
        if rights is None:
            self._lose_clause(sid, connection, uid)
            return {"ok": False, "error": "You may not see this clause any more."}
        if message[:1] == AWARENESS_FRAME:
            _hand_back_connection()
            return self._receive_presence(sid, connection, uid, bytes(message))
        may_write = rights.may_edit
        user_id = connection.user_id
        opened = self.store.opened(uid)
        if opened is None:
            clause = clause_by_uid(uid)
            if clause is None:
                return {"ok": False, "error": "You may not see this clause any more."}
            _hand_back_connection()
            opened = self.store.open(clause)
        else:
            # Hand the pooled connection back before waiting on the store: with every typist's
            # handler holding one while it waited, the writer could not get a connection.
            _hand_back_connection()
        try:
            outcome = self.store.receive(opened, bytes(message), user_id=user_id, may_write=may_write,
                                         may_suggest=rights.may_suggest,
                                         writes_as=lambda client_id, has_history: self._writes_as(
                                             connection, uid, client_id, has_history))
        except ProtocolError as error:
            if not may_write:
                _reply("role", {"clause": uid, "readonly": True, "suggest_only": rights.may_suggest}, to=sid)
            return {"ok": False, "error": error.reason}
        except PersistenceFailed as error:
            return {"ok": False, "error": str(error)}
        if outcome.reply is not None:
            _reply("y", {"clause": uid, "msg": outcome.reply}, to=sid)
        if outcome.deferred:
            # Held until what it builds on arrives; the step 1 just sent asks the sender for it.
            # Not acknowledged as stored, because it is not yet.
            return {"ok": False, "error": "Held until earlier edits arrive; send them first.", "resync": True}
        if outcome.broadcast is not None:
            self.fanout.add(uid, outcome.broadcast, sender=sid)
        return {"ok": True}

    def _lose_clause(self, sid: str, connection: Connection, uid: str) -> None:
        """Read access lost while connected (SECURITY-CASES 5): out of the room, and told why
        (the page says it instead of showing a text that no longer changes)."""
        connection.presence.pop(uid, None)
        connection.awareness_frames.pop(uid, None)
        leave_room(clause_room(uid), sid=sid, namespace=NAMESPACE)
        _reply("role", {"clause": uid, "readonly": True, "removed": True,
                        "error": self._said(sid, "You may not see this clause any more.")}, to=sid)

    def readers(self, uid: str, sids: list[str]) -> list[str]:
        """Of this process's sockets ``sids`` (in clause ``uid``'s room), those that may read the
        clause now; the fan-out sends its edits to these only.

        A socket whose rights on the clause are current (cached, and no role or login has changed
        since: it is in ``RIGHTS_ROOM``) passes at once. Any other is read again here, before it
        is sent a thing: a socket that lost read access, and sends nothing itself, would otherwise
        go on receiving every keystroke. One that may no longer read is taken out of the room and
        told; one whose login ended is closed."""
        current = _room_members(RIGHTS_ROOM)
        allowed: list[str] = []
        unsure: list[str] = []
        for sid in sids:
            connection = self.connections.get(sid)
            if connection is not None and sid in current and connection.rights.get(uid) is not None:
                allowed.append(sid)
            else:
                unsure.append(sid)
        if unsure:
            with self.app.app_context():
                allowed.extend(sid for sid in unsure if self._still_reads(sid, uid))
        return allowed

    def _still_reads(self, sid: str, uid: str) -> bool:
        connection = self.connections.get(sid)
        if connection is None:  # in the room without a connection of this namespace: never sent to
            leave_room(clause_room(uid), sid=sid, namespace=NAMESPACE)
            return False
        known, rights = self._rights(sid, connection, uid)
        if not known:
            self._drop(sid, "Your session has ended; sign in again.")
            return False
        if rights is None:
            self._lose_clause(sid, connection, uid)
            return False
        return True

    def _writes_as(self, connection: Connection, uid: str, client_id: int, has_history: bool) -> bool:
        """Whether the socket's user may add to Yjs client ``client_id``'s history in clause
        ``uid``: an id is the user's who first announced it (presence) or edited under it; asked
        of the claim book once per socket and id. An id with a history here but no claim (one
        process restarted: its claim book was in memory) goes to the account the log names for
        it first, so nobody else can take it before its owner's offline edits come back."""
        authored = connection.authored.setdefault(uid, set())
        if client_id in authored:
            return True
        if has_history and self.claims.owner(uid, client_id) is None:
            author = self._author_in_log(uid, client_id)
            if author is not None:
                self.claims.claim(uid, client_id, author)
        if not self.claims.claim(uid, client_id, connection.user_id):
            return False
        authored.add(client_id)
        return True

    def _author_in_log(self, uid: str, client_id: int) -> int | None:
        opened = self.store.opened(uid)
        if opened is None:
            return None
        try:
            return self.store.log.author_of_client(opened.clause_id, client_id)
        finally:
            _hand_back_connection()  # the caller goes on to wait for the writer

    def _rights(self, sid: str, connection: Connection, uid: str) -> tuple[bool, policy.ClauseRights | None]:
        """(whether the login is alive, the rights on clause ``uid``) of the socket, from its cache
        while that is current, else from one query of plain rows."""
        if not _in_room(sid, RIGHTS_ROOM):
            connection.rights.clear()
            # Into the room before the query: a change committed after the query began closes the
            # room after this, so the answer cached below is read again on the next message.
            join_room(RIGHTS_ROOM, sid=sid, namespace=NAMESPACE)
        elif uid in connection.rights:
            return True, connection.rights[uid]
        answer = policy.socket_rights(connection.login_session_id, uid)
        if not answer.login_alive:
            return False, None
        connection.rights[uid] = answer.rights
        return True, answer.rights

    def _receive_presence(self, sid: str, connection: Connection, uid: str, message: bytes) -> dict[str, Any]:
        """Relay presence as the server's word: stamped with the account's identity, only for the
        client ids this socket introduced (codedraft.collab.presence)."""
        try:
            accepted = accept_presence(message, clause=uid, identity=connection.identity, user_id=connection.user_id,
                                       introduced=connection.presence.get(uid, {}), claims=self.claims)
        except ProtocolError as error:
            return {"ok": False, "error": error.reason}
        self._remember_presence(connection, uid, accepted.entries)
        connection.awareness_frames[uid] = accepted.message
        emit("y", {"clause": uid, "msg": accepted.message}, to=clause_room(uid), skip_sid=sid, namespace=NAMESPACE)
        return {"ok": True}

    @staticmethod
    def _remember_presence(connection: Connection, uid: str, entries: dict[int, AwarenessEntry] | Any) -> None:
        clocks = connection.presence.setdefault(uid, {})
        for client_id, entry in entries.items():
            if entry.state is None:
                clocks.pop(client_id, None)
            else:
                clocks[client_id] = entry.clock

    # -- pushed from elsewhere ----------------------------------------------------------------

    def forget_rights(self) -> None:
        """Every socket, in every process, reads its rights again before its next message."""
        socketio.close_room(RIGHTS_ROOM, namespace=NAMESPACE)

    def rights_changed(self, _app: Flask) -> None:
        """A role or login changed in the current transaction: forget now, and again once the app
        context ends (after the commit), so no socket keeps rights it read before the commit."""
        self.forget_rights()
        g.codedraft_rights_changed = True

    def forget_rights_after_commit(self, _error: BaseException | None = None) -> None:
        if g.pop("codedraft_rights_changed", False):
            self.forget_rights()

    def login_session_ended(self, _app: Flask, *, login_session_id: str) -> None:
        self.end_login_session(login_session_id)
        self.forget_rights()

    def end_login_session(self, login_session_id: str) -> None:
        """Logout in another tab: every socket of that login loses its authority at once."""
        socketio.emit("error", {"clause": None, "error": said_in("You signed out.", None)},
                      to=login_room(login_session_id), namespace=NAMESPACE)
        socketio.close_room(login_room(login_session_id), namespace=NAMESPACE)
        for sid, connection in list(self.connections.items()):
            if connection.login_session_id == login_session_id:
                socketio.server.disconnect(sid, namespace=NAMESPACE)
                close_transport(sid)

    def live_text_committed(self, _app: Flask, *, edits: list[tuple[str, bytes]]) -> None:
        """Edits the server made (restore, amendment, import, a released held edit), committed:
        to their clauses' rooms."""
        for uid, frame in edits:
            self.fanout.add(uid, frame, sender=None)


class Fanout:
    """Sends the edits of a clause acknowledged together (one group commit's, or what arrived
    while the last fan-out was being sent) as one ``y`` message per receiver, ``{clause, frames}``:
    the y-protocols frames one after another, each as a varuint length and its bytes (lib0's
    writeVarUint8Array). Everyone in the clause's room gets every frame except their own: the
    sockets that sent none get one message between them, each sender one without its own frames.
    Runs after the senders' acknowledgements, so the order is persist, acknowledge, broadcast.
    Only to this process's sockets: with several processes each reads the others' edits from the
    clause feed (codedraft/collab/feed.py) and sends them to its own sockets, so edits never
    travel through the Socket.IO message queue."""

    def __init__(self, readers: Callable[[str, list[str]], list[str]]) -> None:
        # Which of the room's sockets may read the clause now (CollabNamespace.readers).
        self._readers = readers
        self._pending: dict[str, list[tuple[str | None, bytes]]] = {}
        self._lock = threading.Lock()
        self._wake: Any = None

    def add(self, uid: str, frame: bytes, *, sender: str | None) -> None:
        with self._lock:
            if self._wake is None:
                self._wake = socketio.server.eio.create_event()
                socketio.start_background_task(self._run)
            self._pending.setdefault(uid, []).append((sender, frame))
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Yield once, no longer: the edits that one group commit stored wake their handlers
            # together, and each adds its edit before this runs, so a batch still goes out as one
            # message per receiver. A fixed wait (4 ms) coalesced little more under load and put
            # its whole length on every edit's delivery when the server was not busy.
            socketio.sleep(0)
            with self._lock:
                self._wake.clear()
                pending, self._pending = self._pending, {}
            for uid, edits in pending.items():
                try:
                    self._send(uid, edits)
                except Exception:  # one clause's failure must not stop every other clause's fan-out
                    log.exception("broadcasting %d edit(s) of clause %s failed", len(edits), uid)

    def _send(self, uid: str, edits: list[tuple[str | None, bytes]]) -> None:
        senders = sorted({sender for sender, _ in edits if sender is not None})
        server = socketio.server
        in_room = dict(_room_members(clause_room(uid)))  # a copy: readers() may take sockets out
        receivers = self._readers(uid, [sid for sid in in_room if sid not in senders])
        send_event(server, NAMESPACE, [in_room[sid] for sid in receivers],
                   "y", {"clause": uid, "frames": pack_frames([frame for _, frame in edits])})
        for sender in senders:
            others = [frame for who, frame in edits if who != sender]
            eio_sid = server.manager.eio_sid_from_sid(sender, NAMESPACE)
            if others and eio_sid is not None:
                send_event(server, NAMESPACE, [eio_sid], "y", {"clause": uid, "frames": pack_frames(others)})


def _room_members(room: str) -> Any:
    """The sockets of this process in ``room`` (sid -> Engine.IO sid), straight from the Socket.IO
    manager's table: its public get_rooms() walks every room, one per socket."""
    return socketio.server.manager.rooms.get(NAMESPACE, {}).get(room, {})


def _in_room(sid: str, room: str) -> bool:
    return sid in _room_members(room)


def close_transport(sid: str) -> None:
    """Close the Engine.IO connection under a Socket.IO session of this process, if still open.

    Closing the transport, not only the namespace: a binary event already on its way would
    otherwise reach a namespace that is gone, and python-socketio logs such late packets as
    errors with tracebacks. The close runs the namespace's disconnect handler, flushes what was
    queued for the socket (the error telling it why), then ends the connection.
    """
    server = socketio.server
    try:
        eio_sid = server.manager.eio_sid_from_sid(sid, NAMESPACE)
    except (KeyError, AttributeError):
        eio_sid = None
    if eio_sid is not None:
        server.eio.disconnect(eio_sid)


#: Event names Socket.IO keeps for itself. A client sending one as an ordinary event would run
#: the namespace's own connect or disconnect handler: a second connect with a fresh message
#: budget, or a "disconnect" that forgets the socket while it stays connected and in its rooms.
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener",
                             "removeListener"})


def guard_transport(server: Any) -> None:
    """Three kinds of packet never reach python-socketio's handlers:

    * late packets, which a client sent before its connection was closed and which are still
      read from the socket's buffer afterwards (the session is gone): dropped quietly;
    * malformed packets (not Socket.IO, JSON nested thousands deep, a binary attachment out of
      place or missing, an event with no name): the connection is closed, with one warning line
      naming it, never a traceback;
    * events named like Socket.IO's own (:data:`RESERVED_EVENTS`): closed the same way.
    """
    engine = server.eio
    handle_message = server._handle_eio_message
    handle_event = server._handle_event

    def on_event(eio_sid: str, namespace: str | None, ack_id: int | None, data: Any) -> Any:
        if not (isinstance(data, list) and data and isinstance(data[0], str)):
            raise ValueError("an event without a name")
        if data[0] in RESERVED_EVENTS:
            raise ValueError("a reserved event name")
        return handle_event(eio_sid, namespace, ack_id, data)

    def on_message(eio_sid: str, data: Any) -> Any:
        connection = engine.sockets.get(eio_sid)
        if connection is None or connection.closing or connection.closed:
            log.debug("dropped a late packet of closed connection %s", eio_sid)
            return None
        try:
            return handle_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError, RecursionError) as error:
            log.warning("closing connection %s: malformed packet (%s: %s)", eio_sid, type(error).__name__,
                        str(error)[:80])
            engine.disconnect(eio_sid)
            return None

    server._handle_event = on_event
    engine.on("message", on_message)


def _hand_back_connection() -> None:
    """Give the session's pooled connection back before waiting on the store. Only if the event
    opened a session: closing one that does not exist creates it first (most edits find their
    rights cached and never touch the database)."""
    if db.session.registry.has():
        db.session.close()


def _reply(event: str, data: dict[str, Any], *, to: str | None = None) -> None:
    """Send to one socket of this process (the one being served, or ``to``) directly, not through
    the message queue: with several processes every queued message goes to Redis and back to all
    of them, and a thousand people joining at once made that round trip the bottleneck."""
    emit(event, data, to=to or request.sid, namespace=NAMESPACE, ignore_queue=True)


def _set_nodelay_from_environ(environ: dict[str, Any]) -> bool:
    """Small frames go out at once (DESIGN.md: a 40 ms Nagle floor otherwise). Returns whether
    the kernel reports TCP_NODELAY on the connection afterwards."""
    # Werkzeug's threads, gunicorn's threads, gunicorn's gevent worker, in that order.
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket") or environ.get("gunicorn.sock")
    if sock is None:
        return False
    try:
        enable_nodelay(sock)
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    except OSError:
        return False


def install(app: Any, store: ClauseStore) -> CollabNamespace:
    namespace = CollabNamespace(
        app, store, idle_seconds=float(app.config.get("COLLAB_IDLE_SECONDS", IDLE_SECONDS)),
        sweep_every=float(app.config.get("COLLAB_SWEEP_SECONDS", SWEEP_EVERY_SECONDS)), claims=_claim_book(app),
        sockets_per_account=int(app.config.get("COLLAB_SOCKETS_PER_ACCOUNT", SOCKETS_PER_ACCOUNT)))
    namespace.route_urls = app.config.get("COLLAB_ROUTE_URLS")
    namespace.route_self = app.config.get("COLLAB_ROUTE_SELF")
    socketio.on_namespace(namespace)
    guard_transport(socketio.server)
    signals.login_session_ended.connect(namespace.login_session_ended, sender=app)
    signals.rights_changed.connect(namespace.rights_changed, sender=app)
    signals.live_text_committed.connect(namespace.live_text_committed, sender=app)
    app.teardown_appcontext(namespace.forget_rights_after_commit)
    app.extensions["codedraft_collab_namespace"] = namespace
    return namespace


def _claim_book(app: Any) -> ClaimBook:
    """Presence claims live in Redis when processes share it, else in this process."""
    if app.config.get("REDIS_URL"):
        from codedraft.scaleout.keys import key_prefix
        from codedraft.scaleout.presence_claims import RedisClaimBook

        return RedisClaimBook(app.config["REDIS_URL"], key_prefix(app.config))
    return MemoryClaimBook()
