"""A real OpenID Connect provider on 127.0.0.1, built with Authlib's server side, for tests.

It speaks the authorization code flow with discovery, a JWKS endpoint and RS256-signed ID tokens.
It signs in ``provider.subject`` without asking (a test plays the person who already has a
session at the provider). Two switches make it misbehave the way an attacker or a misconfigured
provider would: ``tamper`` changes the ID token's claims after signing, and ``audience`` issues
tokens for another client.
"""
from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "codedraft-test-client"
CLIENT_SECRET = "codedraft-test-secret"


@dataclass
class Person:
    """Someone with an account at the provider."""

    subject: str
    email: str
    name: str

    def get_user_id(self) -> str:
        return self.subject


@dataclass
class Client(ClientMixin):
    redirect_uris: list[str] = field(default_factory=list)

    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    redirect_uri: str
    scope: str
    nonce: str | None
    person: Person
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return "0"

    def get_amr(self) -> list[str]:
        return ["pwd"]


class Provider:
    """The provider's state: its key, its people, its codes, and the misbehaviour switches."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"}, private=True)
        self.client = Client()
        self.codes: dict[str, Code] = {}
        self.person = Person("subject-0001", "eva@provider.test", "Eva Provider")
        self.issuer = ""
        self.audience: str | list[str] = CLIENT_ID
        self.extra_claims: dict[str, Any] = {}
        self.tamper = False
        self.tokens_issued = 0


def _tampered(id_token: str) -> str:
    """The same token with another subject in its claims and the original signature."""
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _app(provider: Provider) -> Flask:
    app = Flask("test-oidc-provider")
    app.config["SECRET_KEY"] = secrets.token_hex(16)

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, req: Any) -> None:
            provider.codes[code] = Code(code, req.payload.redirect_uri, req.scope, req.payload.data.get("nonce"),
                                        req.user)

        def query_authorization_code(self, code: str, client: Any) -> Code | None:
            return provider.codes.get(code)

        def delete_authorization_code(self, authorization_code: Code) -> None:
            provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> Person:
            return authorization_code.person

    class IdTokens(OpenIDCode):
        def exists_nonce(self, nonce: str, req: Any) -> bool:
            return any(code.nonce == nonce for code in provider.codes.values())

        def resolve_client_private_key(self, client: Any) -> Any:
            return provider.key

        def get_client_algorithm(self, client: Any) -> str:
            return "RS256"

        def get_encode_header(self, client: Any) -> dict[str, str]:
            return {"alg": "RS256", "kid": "test-key"}

        def get_client_claims(self, client: Any) -> dict[str, Any]:
            return {"iss": provider.issuer, "aud": provider.audience, **provider.extra_claims}

        def generate_user_info(self, user: Person, scope: str) -> UserInfo:
            return UserInfo(sub=user.subject, email=user.email, email_verified=True, name=user.name)

    server = AuthorizationServer(app, query_client=lambda client_id: provider.client if client_id == CLIENT_ID
                                 else None, save_token=lambda token, req: None)
    server.register_grant(CodeGrant, [IdTokens(require_nonce=True)])

    @app.route("/.well-known/openid-configuration")
    def metadata() -> Any:
        return jsonify(issuer=provider.issuer, authorization_endpoint=f"{provider.issuer}/authorize",
                       token_endpoint=f"{provider.issuer}/token", jwks_uri=f"{provider.issuer}/jwks",
                       response_types_supported=["code"], subject_types_supported=["public"],
                       id_token_signing_alg_values_supported=["RS256"],
                       token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"])

    @app.route("/jwks")
    def jwks() -> Any:
        return jsonify(keys=[provider.key.as_dict(private=False)])

    @app.route("/authorize")
    def authorize() -> Any:
        try:
            grant = server.get_consent_grant(end_user=provider.person)
        except OAuth2Error as error:
            return jsonify(error=error.error, description=error.description), 400
        return server.create_authorization_response(grant_user=provider.person, grant=grant)

    @app.route("/token", methods=["POST"])
    def token() -> Any:
        response = server.create_token_response()
        body = response.get_json()
        if response.status_code == 200 and body and "id_token" in body:
            provider.tokens_issued += 1
            if provider.tamper:
                body["id_token"] = _tampered(body["id_token"])
                response.set_data(json.dumps(body))
        return response

    return app


@contextmanager
def running_provider() -> Iterator[Provider]:
    """A provider serving on a free loopback port until the block ends."""
    provider = Provider()
    server = make_server("127.0.0.1", 0, _app(provider), threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(5)
