"""Presence is the server's word (SECURITY-CASES 34, 35). Pure: no Flask, no Socket.IO.

A browser announces its presence in a clause with y-protocols awareness states. Every peer's
editor renders those states: y-codemirror.next writes ``user.color`` into a ``style`` attribute
and ``user.name`` into the cursor label. So the server never relays a state as sent:

* the ``user`` field is replaced by the account's own name and palette colour;
* only the fields the editor reads are kept (``user`` and a well-formed ``cursor``);
* a socket may update or remove only the awareness client ids it introduced itself, and a
  client id belongs to the first account that announced it (:class:`ClaimBook`);
* an awareness message is a few KiB at most.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from codedraft.collab.core import AwarenessEntry, ProtocolError, awareness_message, awareness_payload, parse_awareness

#: Largest awareness message accepted. A browser's own state with a cursor is under 300 bytes.
MAX_AWARENESS_BYTES = 4096
#: Most awareness client ids one socket may introduce in one clause (a page has one; a reloaded
#: editor in the same page may bring a second).
MAX_CLIENTS_PER_SOCKET = 4
#: The only colour form that reaches any ``style`` attribute.
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_MAX_NAME = 100
_MAX_TYPE_NAME = 64
_RELATIVE_POSITION_KEYS = {"type", "tname", "item", "assoc"}


@dataclass(frozen=True)
class Identity:
    """What others see of a person: set from the account, never from the socket."""

    name: str
    colour: str
    #: The account's id, which suggestion marks name too: a peer's editor names a new suggester
    #: from "Here now" at once, and folds one person's tabs into one entry there.
    account: int | None = None

    def __post_init__(self) -> None:
        if not COLOUR.match(self.colour):
            raise ValueError(f"presence colour {self.colour!r} is not #rrggbb")

    def as_user_field(self) -> dict[str, Any]:
        # colorLight is the selection background y-codemirror.next paints: the colour at 20%.
        field: dict[str, Any] = {"name": self.name[:_MAX_NAME], "color": self.colour, "colorLight": f"{self.colour}33"}
        if self.account is not None:
            field["id"] = self.account
        return field


class ClaimBook(Protocol):
    """Which account introduced an awareness client id in a clause (shared by processes when scaled out)."""

    def claim(self, clause: str, client_id: int, user_id: int) -> bool:
        """Record ``user_id`` as the owner if the id is new; True if ``user_id`` owns it."""

    def release(self, clause: str, client_id: int, user_id: int) -> None:
        """Forget the id if ``user_id`` owns it (its socket left)."""

    def owner(self, clause: str, client_id: int) -> int | None:
        """Who owns the id, if anyone does."""


class MemoryClaimBook:
    """The claim book of a single process."""

    def __init__(self) -> None:
        self._owners: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def claim(self, clause: str, client_id: int, user_id: int) -> bool:
        with self._lock:
            return self._owners.setdefault((clause, client_id), user_id) == user_id

    def release(self, clause: str, client_id: int, user_id: int) -> None:
        with self._lock:
            if self._owners.get((clause, client_id)) == user_id:
                del self._owners[(clause, client_id)]

    def owner(self, clause: str, client_id: int) -> int | None:
        with self._lock:
            return self._owners.get((clause, client_id))


@dataclass
class PresenceUpdate:
    """An accepted awareness message: what to relay, and the states it carried."""

    message: bytes
    entries: dict[int, AwarenessEntry]


def accept_presence(
    message: bytes,
    *,
    clause: str,
    identity: Identity,
    user_id: int,
    introduced: Mapping[int, int],
    claims: ClaimBook,
) -> PresenceUpdate:
    """Check and rewrite one awareness message from a socket.

    ``introduced`` holds the client ids this socket announced in the clause so far. Raises
    ProtocolError (nothing relayed) for an oversize or malformed message, a removal of an id the
    socket did not introduce, a new id beyond :data:`MAX_CLIENTS_PER_SOCKET`, or an id another
    account owns.
    """
    payload = awareness_payload(message, MAX_AWARENESS_BYTES)
    if payload is None:
        raise ProtocolError("not an awareness message")
    entries = parse_awareness(payload)
    new_ids = [client_id for client_id, entry in entries.items()
               if client_id not in introduced and entry.state is not None]
    if any(entry.state is None and client_id not in introduced for client_id, entry in entries.items()):
        raise ProtocolError("a connection may only remove the presence it announced itself")
    if len(introduced) + len(new_ids) > MAX_CLIENTS_PER_SOCKET:
        raise ProtocolError("a connection may announce at most %(limit)d presences in a clause",
                            limit=MAX_CLIENTS_PER_SOCKET)
    for client_id in new_ids:
        if not claims.claim(clause, client_id, user_id):
            raise ProtocolError("that presence belongs to another person")
    stamped = {client_id: AwarenessEntry(entry.clock, _stamped_state(entry.state, identity))
               for client_id, entry in entries.items()}
    return PresenceUpdate(awareness_message(stamped), stamped)


def _stamped_state(state: dict[str, Any] | None, identity: Identity) -> dict[str, Any] | None:
    if state is None:
        return None
    stamped: dict[str, Any] = {"user": identity.as_user_field()}
    cursor = state.get("cursor")
    if _is_cursor(cursor):
        stamped["cursor"] = cursor
    return stamped


def _is_cursor(value: Any) -> bool:
    """y-codemirror.next's cursor: ``{anchor, head}``, each a Yjs relative position as JSON."""
    return (isinstance(value, dict) and set(value) == {"anchor", "head"}
            and _is_relative_position(value["anchor"]) and _is_relative_position(value["head"]))


def _is_relative_position(value: Any) -> bool:
    if not isinstance(value, dict) or not set(value) <= _RELATIVE_POSITION_KEYS:
        return False
    for key in ("type", "item"):
        if key in value and value[key] is not None and not _is_id(value[key]):
            return False
    if "tname" in value and value["tname"] is not None and not (
            isinstance(value["tname"], str) and len(value["tname"]) <= _MAX_TYPE_NAME):
        return False
    return "assoc" not in value or (type(value["assoc"]) is int and -1 <= value["assoc"] <= 1)


def _is_id(value: Any) -> bool:
    return (isinstance(value, dict) and set(value) == {"client", "clock"}
            and all(type(value[key]) is int and 0 <= value[key] < 2**53 for key in ("client", "clock")))
