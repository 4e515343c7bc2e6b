"""Passwords, secrets and response headers."""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, Request, Response, current_app, g, has_app_context, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import gettext
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.formparser import FormDataParser
from werkzeug.routing import IntegerConverter

from codedraft.concurrency import run_blocking
from codedraft.database import TextNotStorable, storable_text
from codedraft.json_depth import nesting_exceeds
from codedraft.numbers import MAX_INTEGER


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_cost: int) -> tuple[PasswordHasher, str]:
    """The hasher for these costs, and a hash to verify against when the account does not exist,
    so that timing does not reveal which accounts exist."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost)
    return hasher, hasher.hash("codedraft-no-such-account")


def _current_hasher() -> tuple[PasswordHasher, str]:
    # Defaults are argon2-cffi's recommended profile; tests lower them through configuration.
    config = current_app.config if has_app_context() else {}
    return _hasher(int(config.get("ARGON2_TIME_COST", 3)), int(config.get("ARGON2_MEMORY_COST", 65536)))


def hash_password(password: str) -> str:
    # About 50 ms of C work at the default cost: on a real thread under gevent (run_blocking).
    return run_blocking(_current_hasher()[0].hash, password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    hasher, dummy = _current_hasher()
    try:
        return run_blocking(hasher.verify, stored_hash or dummy, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are stored as digests only; a database leak reveals no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def content_security_policy(style_nonce: str, *, editor: bool = False) -> str:
    """No inline script, ever. CodeMirror injects its stylesheet as a <style> element, which the
    per-request nonce admits. Only a page with the live editor also admits style *attributes*
    (``style-src-attr``): y-codemirror.next colours remote cursors and selections with them, and
    CodeMirror sets them with setAttribute, which no nonce can cover. Attributes cannot load
    resources or run script, the colours in them are the server's own palette, checked again
    against ``#rrggbb`` in the browser, and the Markdown sanitiser removes every style attribute
    from user text. Every other page refuses style attributes altogether."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{style_nonce}'",
            "style-src-attr 'unsafe-inline'" if editor else "style-src-attr 'none'",
            *_FIXED_DIRECTIVES,
        ]
    )


_FIXED_DIRECTIVES = (
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def csp_nonce() -> str:
    """This request's nonce for CodeMirror's <style> element (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


class RememberingCookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the last few hundred verified cookies remembered.

    Flask-SocketIO pushes a request context, and so opens the session, for every socket message;
    checking the signature each time was 7% of the server's CPU with 50 typists. The same cookie
    string always decodes to the same contents, so a verified one is reused for up to a minute
    (it may thus outlive its 12-hour expiry by that minute; revocation is the login-session row's
    job anyway). Every caller gets its own copy.
    """

    remember_seconds = 60.0
    capacity = 512

    def __init__(self) -> None:
        self._verified: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return super().open_session(app, request)
        key = (cookie, str(app.secret_key))
        now = time.monotonic()
        remembered = self._verified.get(key)
        if remembered is not None and now - remembered[0] < self.remember_seconds:
            return self.session_class(remembered[1])
        session = super().open_session(app, request)
        if session is not None and not session.new:
            if len(self._verified) >= self.capacity:
                self._verified.clear()
            self._verified[key] = (now, dict(session))
        return session


def allow_editor_styles() -> None:
    """Called by a view that puts the live editor on its page (see content_security_policy)."""
    g.editor_on_page = True


#: Sent with every response: pages, the API, static files and the Socket.IO transport alike.
STATIC_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
#: The Socket.IO transport answers with data, never a page: nothing may load or run from it.
TRANSPORT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def install_security_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response: Response) -> Response:
        policy = content_security_policy(csp_nonce(), editor=bool(g.get("editor_on_page")))
        response.headers.setdefault("Content-Security-Policy", policy)
        for name, value in STATIC_SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        return response


def with_transport_headers(start_response: Callable[..., Any]) -> Callable[..., Any]:
    """``start_response`` adding the security headers to a response Flask never sees: Socket.IO
    answers its transport (``/socket.io/``) itself (see codedraft.entry)."""

    def with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        present = {name.lower() for name, _value in headers}
        extra = [(name, value) for name, value in STATIC_SECURITY_HEADERS if name.lower() not in present]
        if "content-security-policy" not in present:
            extra.append(("Content-Security-Policy", TRANSPORT_CSP))
        return start_response(status, headers + extra, exc_info)

    return with_headers


# --- Redirect targets (SECURITY-CASES 36) ---------------------------------------------------

# Browsers drop tabs and newlines inside URLs and read "\" as "/", so "/\t/evil" and "/\evil"
# both lead off-site; CR/LF in a Location header would otherwise split it.
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x20\x7f\\]")


def safe_local_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site ("/codes/x?y#z"), else None.

    Refused: anything absolute or scheme-relative ("https://…", "//host", "/\\host"), any control
    character, space, tab or backslash, and anything longer than 2,000 characters.
    """
    if not target or len(target) > 2000 or not target.startswith("/") or _UNSAFE_IN_PATH.search(target):
        return None
    parts = urlsplit(target)
    if target.startswith("//") or parts.scheme or parts.netloc:
        return None
    return target


def guarded_location(location: str, host: str | None) -> str:
    """What a redirect may send the browser to: a safe local path, or an absolute URL on
    ``host`` (from ``url_for(_external=True)``); anything else becomes the home page."""
    if safe_local_path(location) is not None:
        return location
    if _UNSAFE_IN_PATH.search(location) is None:
        parts = urlsplit(location)
        if parts.scheme in ("http", "https") and host is not None and parts.netloc == host:
            return location
    return "/"


# --- Input limits (SECURITY-CASES 38) -------------------------------------------------------

#: Deepest JSON nesting a request body may have; parsed only after this is checked.
MAX_JSON_DEPTH = 32
#: The range every integer from a URL, a query or a form must fall in: what an Integer column
#: holds on PostgreSQL (32 bits), so any such number can be compared with any id column.
LARGEST_INTEGER = MAX_INTEGER
SMALLEST_INTEGER = -MAX_INTEGER - 1


class InputRejected(BadRequest):
    """A request value outside what the application accepts; the description says which."""


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing nesting deeper than :data:`MAX_JSON_DEPTH` before parsing (deep
    nesting made ``json.loads`` raise RecursionError: a 500) and integers beyond 64 bits."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if nesting_exceeds(s, MAX_JSON_DEPTH):
            raise InputRejected(f"JSON nested more than {MAX_JSON_DEPTH} levels deep is not accepted.")
        kwargs.setdefault("parse_int", _bounded_int)
        return super().loads(s, **kwargs)


#: JSON bodies may carry larger numbers than URLs (sizes, offsets), but nothing beyond 64 bits.
_JSON_INTEGER_LIMIT = (1 << 63) - 1


def _bounded_int(literal: str) -> int:
    if len(literal) > 20:
        raise InputRejected("A number in the request is out of range.")
    value = int(literal)
    if not -_JSON_INTEGER_LIMIT - 1 <= value <= _JSON_INTEGER_LIMIT:
        raise InputRejected("A number in the request is out of range.")
    return value


class BoundedIntegerConverter(IntegerConverter):
    """``<int:…>`` in routes matches only integers a database column can hold: a longer one is a 404."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", LARGEST_INTEGER)
        super().__init__(map, *args, **kwargs)


class BoundedMultiDict(ImmutableMultiDict):  # type: ignore[type-arg]
    """Query and form values: ``get(key, type=int)`` gives 400 for a number beyond 64 bits
    instead of handing the database a value it cannot bind (a 500 before)."""

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:  # noqa: A002 (werkzeug's name)
        value = super().get(key, default, type)
        if type is int and isinstance(value, int) and not SMALLEST_INTEGER <= value <= LARGEST_INTEGER:
            raise InputRejected(f"The number given for '{key}' is out of range.")
        return value


class StrictFormDataParser(FormDataParser):
    """A form whose text is not UTF-8 is refused with a 400 rather than quietly changed: Werkzeug
    keeps an escape that decodes to no character (``%FF``) as the literal text "%FF", and treats a
    body of raw invalid bytes as an empty form. A browser sends neither to these pages (they are
    UTF-8, and a typed "%" arrives as "%25"); any other client is told what was wrong. Raised as an
    HTTP error, not a ValueError, which the parser would swallow."""

    def _parse_urlencoded(self, stream: Any, mimetype: str, content_length: int | None,
                          options: dict[str, str]) -> Any:
        try:
            items = parse_qsl(stream.read().decode(), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise InputRejected(gettext("The form's text is not valid UTF-8.")) from None
        return stream, self.cls(items), self.cls()


class BoundedRequest(Request):
    parameter_storage_class = BoundedMultiDict
    form_data_parser_class = StrictFormDataParser

    #: False once ``args`` found the query string not UTF-8 (``refuse_unstorable_values`` refuses it).
    query_is_utf8 = True

    @cached_property
    def args(self) -> Any:
        """Werkzeug's, read once, noting whether the query string is UTF-8 (``query_is_utf8``).

        Werkzeug keeps an escape that decodes to no character (``%FF``) as the literal text, and
        raw bytes that are not UTF-8 (no browser sends them; a script can) raised
        UnicodeDecodeError wherever ``request.args`` was first read: a 500, and another while the
        error page read it too. Here such a query is read with U+FFFD in their place, so every
        page can read it, and is refused with a 400 before any view acts on it."""
        try:
            items = parse_qsl(self.query_string.decode(), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            self.query_is_utf8 = False
            items = parse_qsl(self.query_string.decode(errors="replace"), keep_blank_values=True,
                              errors="werkzeug.url_quote")
        return self.parameter_storage_class(items)


class GuardedFlask(Flask):
    """Flask with the input limits above, and every redirect checked where it is made."""

    request_class = BoundedRequest
    json_provider_class = BoundedJSONProvider

    def redirect(self, location: str, code: int = 302) -> Any:
        from flask import has_request_context, request

        host = request.host if has_request_context() else None
        return super().redirect(guarded_location(location, host), code)


def install_input_limits(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request(refuse_unstorable_values)


def refuse_unstorable_values() -> None:
    """Refuse a query string that is not UTF-8, and a form that holds a NUL character, before any
    view runs.

    Werkzeug keeps an escape of a query string that decodes to no character (``?q=%FF``) as the
    literal text "%FF": a search would look for those three characters, and a filter would
    quietly match nothing. The form parser refuses the same in a form (``StrictFormDataParser``).

    No field of a form means one, and PostgreSQL refuses it both in a value written and in a
    query's parameter (looking up an organisation or a working group by the name typed): each was
    a 500 there, while SQLite stored it. The flush hook (``database.check_string_lengths``)
    catches what reaches a column by any other way; query strings are read by views that refuse
    what they do not know (the API's own checks, the sign-in callback's 401)."""
    # Reading the arguments (once per request, cached) notes whether the query string is UTF-8.
    if request.query_string and request.args is not None and not getattr(request, "query_is_utf8", True):
        raise InputRejected(gettext("The address's query is not valid UTF-8."))
    if request.form:  # parsed once, here or by the CSRF check
        for key, value in request.form.items(multi=True):
            # Not every value is text: a test client may send None, which no browser can.
            if not storable_text(str(key)) or (isinstance(value, str) and not storable_text(value)):
                # The flush hook's own refusal, so one handler (web.py) says it, in one wording.
                raise TextNotStorable(str(key).replace("\x00", "\\0")[:60])
