"""Passwords, secrets and response headers."""
from __future__ import annotations

import hashlib
import secrets
import time
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, Request, Response, current_app, g, has_app_context
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from codedraft.concurrency import run_blocking


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


def content_security_policy(style_nonce: str) -> str:
    """No inline script, ever. CodeMirror injects its stylesheet as a <style> element, which the
    per-request nonce admits; y-codemirror.next colours remote cursors with style attributes,
    which ``style-src-attr`` admits (attributes cannot load resources or run script; the Markdown
    sanitiser removes every style attribute from user text anyway)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{style_nonce}'",
            "style-src-attr 'unsafe-inline'",
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


def install_security_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce()))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response
