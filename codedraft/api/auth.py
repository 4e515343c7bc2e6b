"""Bearer-token authentication for the API: tokens only, never cookies, so no CSRF surface."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, jsonify, request

from codedraft.accounts.models import User
from codedraft.accounts.operations import user_for_api_token

F = TypeVar("F", bound=Callable[..., Any])


def api_user() -> User:
    return g.api_user  # type: ignore[no-any-return]


def token_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = user_for_api_token(token.strip()) if scheme.lower() == "bearer" and token else None
        if user is None:
            response = jsonify(error="A valid personal access token is required (Authorization: Bearer …).")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="codedraft"'
            return response
        g.api_user = user
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
