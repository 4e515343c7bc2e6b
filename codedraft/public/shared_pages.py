"""The shared copies of published draft and redline pages, for visitors without an account.

A visitor's request is answered from memory before any other work, once it is known that the
code is still public and which draft is its latest (a new draft changes the redline's default
pair and the list of drafts, so older copies are then stale). That state is read by one small
query and remembered for ``STATE_SECONDS``: the query cost more than the rest of the request
(profiled), and the Office's changes in this process forget it at once (:func:`forget_state`),
so only another process can serve a code made private for up to that long. Each copy is kept as it is
sent, also gzip-compressed (the pages are 0.3-0.6 MB of HTML), with an ETag for revalidation.

A visitor who sends no cookie at all is answered by :class:`SharedPagesMiddleware` in front of
Flask, when the copy and the code's state are both in memory: no session, no login, no rate
limit, no locale selector, no database. Through Flask a cached answer cost about 2 ms of CPU,
most of it the request machinery; 200 new readers arriving at once on one worker queued behind
each other for 300 ms. Anything the middleware is not sure of (a cookie, another argument, a
state older than ``STATE_SECONDS``) goes through Flask as before, which answers the same bytes.

The copies and the states belong to the app (``app.extensions``), not to the process.
"""
from __future__ import annotations

import gzip
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from threading import Lock
from typing import Any

from babel import Locale
from flask import Flask, Response, current_app, request
from flask_babel import get_locale
from flask_login import current_user
from sqlalchemy import Select, bindparam, func, select
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Request as WerkzeugRequest

from codedraft.codes.models import Code
from codedraft.database import storable_text
from codedraft.drafts.models import Draft
from codedraft.extensions import db
from codedraft.public.models import PublicCode
from codedraft.security import STATIC_SECURITY_HEADERS, content_security_policy

#: How long a browser or a proxy may keep a copy.
MAX_AGE_SECONDS = 300
#: How long a process trusts what it read about a code being public and its latest draft
#: (``PUBLIC_STATE_SECONDS`` in the app's config overrides it).
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


@dataclass
class SharedState:
    """One app's copies, and what it last read about each code (slug -> (until, latest draft))."""

    pages: SharedPages = field(default_factory=SharedPages)
    states: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    lock: Lock = field(default_factory=Lock)


_EXTENSION = "codedraft_shared_pages"


def shared_state(app: Flask | None = None) -> SharedState:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get(_EXTENSION)
    if found is None:
        found = app.extensions.setdefault(_EXTENSION, SharedState())
    return found  # type: ignore[no-any-return]


@cache
def _state_query() -> Select[Any]:
    return (select(func.max(Draft.id), func.count(PublicCode.code_id.distinct()))
            .select_from(Code).join(PublicCode, PublicCode.code_id == Code.id)
            .outerjoin(Draft, Draft.code_id == Code.id).where(Code.slug == bindparam("slug")))


def public_state(slug: str) -> int | None:
    """The code's latest draft id (0 with none) if the code is public, else None."""
    if not storable_text(slug):
        return None
    shared = shared_state()
    now = time.monotonic()
    with shared.lock:
        known = shared.states.get(slug)
    if known is not None and known[0] > now:
        return known[1]
    latest, public = db.session.connection().execute(_state_query(), {"slug": slug}).one()
    state = int(latest or 0) if public else None
    trusted_for = float(current_app.config.get("PUBLIC_STATE_SECONDS", STATE_SECONDS))
    with shared.lock:
        if len(shared.states) > 10_000:
            shared.states.clear()  # slugs come from addresses: never let them grow the map without bound
        shared.states[slug] = (now + trusted_for, state)
    return state


def forget_state() -> None:
    """Read every code's state afresh: called when the Office opens or closes a code or a draft
    is published in this process."""
    shared = shared_state()
    with shared.lock:
        shared.states.clear()


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
    copy = shared_state().pages.get(_key())
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
        shared_state().pages.put(_key(), copy)
    return _respond(copy)


class SharedPagesMiddleware:
    """Answers a cookieless visitor's GET of a shared page from memory, before Flask.

    Serves only what Flask would serve to the same request from the same copy: the key is made
    as ``_key`` makes it (path, the page's arguments, the language chosen as ``select_locale``
    would choose it without a session), and the code's state must be one read less than
    ``STATE_SECONDS`` ago. Everything else, and every miss, goes to Flask.
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.app = app
        self._languages: dict[str, str] = {}
        self._encodings: dict[str, bool] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (environ.get("REQUEST_METHOD") in ("GET", "HEAD") and environ.get("PATH_INFO", "").startswith("/public/")
                and not environ.get("HTTP_COOKIE")):
            answered = self._answer(environ, start_response)
            if answered is not None:
                return answered
        return self.wsgi_app(environ, start_response)

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
        # Plain reads of the environ where they give what Werkzeug gives: this runs for every
        # visitor, and parsing the same Accept headers again was most of its cost (profiled).
        try:
            path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:  # not what a WSGI server passes; Flask may make sense of it
            return None
        parts = path.split("/")
        slug = parts[2] if len(parts) > 3 else ""
        args = WerkzeugRequest(environ).args if environ.get("QUERY_STRING") else None
        languages = self.app.config["LANGUAGES"]
        chosen = args.get("lang") if args is not None else None
        if chosen not in languages:
            chosen = self._language(environ.get("HTTP_ACCEPT_LANGUAGE", ""), languages)
        key = (path, *((args.get(name, "") if args is not None else "") for name in _ARGUMENTS),
               _locale_name(str(chosen)))
        shared = shared_state(self.app)
        copy = shared.pages.get(key)
        if copy is None:
            return None
        with shared.lock:
            known = shared.states.get(slug)
        if known is None or known[0] <= time.monotonic() or known[1] != copy.latest_draft:
            return None  # Flask reads the state again (and answers 404 for a code made private)
        headers = [("ETag", f'"{copy.etag}"'), ("Cache-Control", f"public, max-age={MAX_AGE_SECONDS}"),
                   ("Vary", "Accept-Encoding, Accept-Language, Cookie"),
                   ("Content-Security-Policy", content_security_policy(secrets.token_urlsafe(16))),
                   *STATIC_SECURITY_HEADERS]
        if environ.get("HTTP_IF_NONE_MATCH") and copy.etag in WerkzeugRequest(environ).if_none_match:
            start_response("304 NOT MODIFIED", headers)
            return []
        body = copy.body
        if self._gzip(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = copy.gzipped
            headers.append(("Content-Encoding", "gzip"))
        headers += [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def _language(self, header: str, languages: tuple[str, ...]) -> str:
        """``request.accept_languages.best_match`` as select_locale uses it, remembered per header."""
        found = self._languages.get(header)
        if found is None:
            found = parse_accept_header(header, LanguageAccept).best_match(languages) or languages[0]
            if len(self._languages) > 1_000:
                self._languages.clear()  # headers come from visitors: bounded
            self._languages[header] = found
        return found

    def _gzip(self, header: str) -> bool:
        found = self._encodings.get(header)
        if found is None:
            found = "gzip" in parse_accept_header(header)
            if len(self._encodings) > 1_000:
                self._encodings.clear()
            self._encodings[header] = found
        return found


@cache
def _locale_name(language: str) -> str:
    """What ``str(get_locale())`` says for a language code ("pl", "en")."""
    return str(Locale.parse(language))
