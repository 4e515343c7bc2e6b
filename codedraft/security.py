"""Passwords, secrets and response headers."""
from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, Response, current_app, g, has_app_context



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
    return _current_hasher()[0].hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    hasher, dummy = _current_hasher()
    try:
        return hasher.verify(stored_hash or dummy, password) and stored_hash is not None
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
