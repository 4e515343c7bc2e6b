"""The shared copies of published draft and redline pages, for visitors without an account.

A visitor's request is answered from memory before any other work, once it is known that the
code is still public and which draft is its latest (a new draft changes the redline's default
pair and the list of drafts, so older copies are then stale). That state is read by one small
query and remembered for ``STATE_SECONDS``: the query cost more than the rest of the request
(profiled), and the Office's changes in this process forget it at once (:func:`forget_state`),
so only another process can serve a code made private for up to that long. Each copy is kept as it is
sent, also gzip-compressed (the pages are 0.3-0.6 MB of HTML), with an ETag for revalidation.
"""
from __future__ import annotations

import gzip
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from threading import Lock
from typing import Any

from flask import Response, current_app, request
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import Select, bindparam, func, select

from codedraft.codes.models import Code
from codedraft.database import storable_text
from codedraft.drafts.models import Draft
from codedraft.extensions import db
from codedraft.public.models import PublicCode

#: How long a browser or a proxy may keep a copy.
MAX_AGE_SECONDS = 300
#: How long a process trusts what it read about a code being public and its latest draft.
STATE_SECONDS = 1.0
#: The query arguments a shared page depends on; any other argument is ignored, so adding
#: junk to the address cannot fill the cache with copies of one page.
_ARGUMENTS = ("from", "to", "layout", "lang")


@dataclass(frozen=True)
class SharedCopy:
    body: bytes
    gzipped: bytes
    etag: str
    latest_draft: int


class SharedPages:
    """Least-recently-used copies, safe to share between threads."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._copies: OrderedDict[tuple[Any, ...], SharedCopy] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[Any, ...]) -> SharedCopy | None:
        with self._lock:
            found = self._copies.get(key)
            if found is not None:
                self._copies.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], copy: SharedCopy) -> None:
        with self._lock:
            self._copies[key] = copy
            self._copies.move_to_end(key)
            while len(self._copies) > self.size:
                self._copies.popitem(last=False)


pages = SharedPages()


@cache
def _state_query() -> Select[Any]:
    return (select(func.max(Draft.id), func.count(PublicCode.code_id.distinct()))
            .select_from(Code).join(PublicCode, PublicCode.code_id == Code.id)
            .outerjoin(Draft, Draft.code_id == Code.id).where(Code.slug == bindparam("slug")))


_states: dict[str, tuple[float, int | None]] = {}
_states_lock = Lock()


def public_state(slug: str) -> int | None:
    """The code's latest draft id (0 with none) if the code is public, else None."""
    if not storable_text(slug):
        return None
    now = time.monotonic()
    with _states_lock:
        known = _states.get(slug)
    if known is not None and known[0] > now:
        return known[1]
    latest, public = db.session.connection().execute(_state_query(), {"slug": slug}).one()
    state = int(latest or 0) if public else None
    with _states_lock:
        if len(_states) > 10_000:
            _states.clear()  # slugs come from addresses: never let them grow the map without bound
        _states[slug] = (now + STATE_SECONDS, state)
    return state


def forget_state() -> None:
    """Read every code's state afresh: called when the Office opens or closes a code or a draft
    is published in this process."""
    with _states_lock:
        _states.clear()


def _key() -> tuple[Any, ...]:
    return (request.path, *(request.args.get(name, "") for name in _ARGUMENTS), str(get_locale()))


def _respond(copy: SharedCopy) -> Response:
    if copy.etag in request.if_none_match:
        response = Response(status=304)
    elif "gzip" in request.accept_encodings:
        response = current_app.response_class(copy.gzipped, mimetype="text/html")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = current_app.response_class(copy.body, mimetype="text/html")
    response.headers["ETag"] = f'"{copy.etag}"'
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_SECONDS}"
    response.headers["Vary"] = "Accept-Encoding, Accept-Language, Cookie"
    return response


def cached_response(slug: str) -> Response | None:
    """The shared copy for this request, when the visitor has no account and it is current."""
    if current_user.is_authenticated:
        return None
    copy = pages.get(_key())
    if copy is None:
        return None
    if public_state(slug) != copy.latest_draft:
        return None  # private now (the view answers 404) or a newer draft: render again
    return _respond(copy)


def shared_response(slug: str, render: Callable[[bool], str]) -> Any:
    """Render the page for a signed-in reader (their own copy, ``render(False)``) or, for a
    visitor, the shared copy (``render(True)``: nothing of any session in it) and keep it."""
    if current_user.is_authenticated:
        return render(False)
    latest = public_state(slug)
    body = render(True).encode("utf-8")
    copy = SharedCopy(body=body, gzipped=gzip.compress(body, compresslevel=6),
                      etag=hashlib.sha256(body).hexdigest()[:32], latest_draft=latest or 0)
    if latest is not None:
        pages.put(_key(), copy)
    return _respond(copy)
