"""Sign-in with an OpenID Connect provider (EU Login or any other), beside local passwords.

Configured from the environment (``codedraft/config.py``); without a client id and the
provider's metadata URL the feature is off and nothing here is registered. Authlib's client
does the protocol: state and nonce kept in the session, the code exchanged for tokens, the ID
token's signature checked against the provider's published keys and its issuer, audience
(our client id), expiry and nonce validated. Anything it refuses ends on a clear page, never
a 500.

An identity is the provider's (issuer, subject) pair, bound to one account
(:class:`ExternalIdentity`). A signed-in person links the provider to their account; someone
signing in with an unknown subject gets a new account with no role (so they read what the
public can) unless their e-mail address already has an account, which must be linked by its
owner first: an address asserted by a provider is never taken as proof of owning an account.
"""
from __future__ import annotations

from typing import Any

import requests
from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.utils import redirect as werkzeug_redirect

from codedraft.accounts import operations as accounts
from codedraft.accounts.models import User
from codedraft.accounts.oidc_models import ExternalIdentity
from codedraft.audit.operations import record_event
from codedraft.extensions import db, limiter

bp = Blueprint("oidc", __name__)
PROVIDER = "provider"
_EXTENSION = "codedraft_oidc"
_NEXT_KEY = "oidc_next"



def _refused() -> tuple[type[Exception], ...]:
    """What the provider or the network can do wrong between the redirect and the callback.

    Authlib and joserfc are imported here and in :func:`install`, not with the module: they are
    some 10 MB of every server process, and most sites configure no provider."""
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError

    return AuthlibBaseError, JoseError, requests.RequestException, KeyError, ValueError


class IdentityError(ValueError):
    """The identity cannot be mapped to an account; the message is translated and safe to show."""


def install(app: Flask) -> None:
    """Register the provider and the sign-in routes when the configuration names a provider."""
    app.jinja_env.globals["oidc_provider_name"] = lambda: (
        app.config["OIDC_PROVIDER_NAME"] if app.config.get("OIDC_CLIENT_ID") else None)
    if not (app.config.get("OIDC_CLIENT_ID") and app.config.get("OIDC_METADATA_URL")):
        return
    from authlib.integrations.flask_client import OAuth

    # One client registry per app: each app (and each test) may name another provider.
    oauth = OAuth(app)
    app.extensions[_EXTENSION] = oauth
    oauth.register(
        PROVIDER, client_id=app.config["OIDC_CLIENT_ID"], client_secret=app.config.get("OIDC_CLIENT_SECRET"),
        server_metadata_url=app.config["OIDC_METADATA_URL"],
        client_kwargs={"scope": app.config.get("OIDC_SCOPE") or "openid email profile", "timeout": 10},
    )
    app.register_blueprint(bp)


def _client() -> Any:
    return current_app.extensions[_EXTENSION].create_client(PROVIDER)


def _same_site_path(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//") and not any(
            c in target for c in "\\\t\r\n"):
        return target
    return None


@bp.route("/login/oidc")
@limiter.limit("30 per minute")
def start() -> ResponseReturnValue:
    """Off to the provider; it sends the browser back to :func:`callback`."""
    session[_NEXT_KEY] = _same_site_path(request.args.get("next")) or ""
    try:
        client = _client()
        callback_url = url_for("oidc.callback", _external=True)
        authorization = client.create_authorization_url(callback_url)
        client.save_authorize_data(redirect_uri=callback_url, **authorization)
        endpoint = client.load_server_metadata()["authorization_endpoint"]
        if not authorization["url"].startswith(endpoint + "?"):
            raise ValueError("authorization URL outside the provider's endpoint")
        # The one redirect off this site: to the configured provider's own endpoint, so it is
        # made here rather than through the app's redirect guard, which keeps others on-site.
        return werkzeug_redirect(authorization["url"])
    except _refused():
        current_app.logger.warning("OpenID Connect provider unreachable", exc_info=True)
        return _failed()


@bp.route("/login/oidc/callback")
@limiter.limit("30 per minute")
def callback() -> ResponseReturnValue:
    try:
        client = _client()
        # Our client id must be among the token's audiences (OpenID Connect Core 3.1.3.7).
        # Authlib's own check only asks for an "azp" naming us, which a token for another
        # client that merely names us as its authorised party would satisfy.
        issuer = client.load_server_metadata()["issuer"]
        token = client.authorize_access_token(claims_options={
            "iss": {"essential": True, "values": [issuer]},
            "aud": {"essential": True, "values": [current_app.config["OIDC_CLIENT_ID"]]},
        })
        claims = token.get("userinfo") or {}
        issuer, subject = str(claims["iss"]), str(claims["sub"])
    except _refused():
        current_app.logger.warning("OpenID Connect sign-in refused", exc_info=True)
        return _failed()
    from codedraft.accounts.views import sign_in  # the one way a browser session starts

    try:
        user = account_for(issuer, subject, claims, signed_in=current_user if current_user.is_authenticated else None)
    except IdentityError as error:
        db.session.rollback()
        return _failed(str(error))
    target = _same_site_path(session.pop(_NEXT_KEY, None)) or url_for("codes.index")
    sign_in(user)  # a fresh session: nothing from before the sign-in survives it
    db.session.commit()
    return redirect(target)


def _failed(message: str | None = None) -> ResponseReturnValue:
    name = current_app.config["OIDC_PROVIDER_NAME"]
    text = message or _("Signing in with %(provider)s did not complete. Please try again.", provider=name)
    return render_template("error.html", title=_("Sign-in failed"), message=text, status=401), 401


def account_for(issuer: str, subject: str, claims: dict[str, Any], *, signed_in: User | None) -> User:
    """The one account of this provider subject, linking or creating it as the module says."""
    if not issuer or not subject or len(issuer) > 300 or len(subject) > 255:
        raise IdentityError(_("The identity provider sent an identity this site cannot use."))
    bound = db.session.scalar(select(User).join(ExternalIdentity, ExternalIdentity.user_id == User.id).where(
        ExternalIdentity.issuer == issuer, ExternalIdentity.subject == subject))
    if bound is not None:
        if signed_in is not None and signed_in.id != bound.id:
            raise IdentityError(_("This identity is already linked to another account."))
        if not bound.is_active:
            raise IdentityError(_("This account is closed."))
        return bound
    if signed_in is not None:
        user = signed_in
    else:
        email = str(claims.get("email") or "").strip()
        if "@" not in email or len(email) > 254:
            raise IdentityError(_("The identity provider did not give an e-mail address."))
        if accounts.find_user_by_email(email) is not None:
            raise IdentityError(_("An account with this e-mail address exists. Sign in with its password, then "
                                  "sign in with the identity provider once to link the two."))
        name = str(claims.get("name") or " ".join(
            str(claims.get(part) or "") for part in ("given_name", "family_name")).strip() or email)[:200]
        user = accounts.create_user(email, name, None)
    db.session.add(ExternalIdentity(issuer=issuer, subject=subject, user_id=user.id))
    db.session.flush()
    record_event("identity.linked", actor=user, subject=user.email, details={"issuer": issuer})
    return user
