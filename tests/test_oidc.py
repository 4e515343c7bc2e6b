"""OpenID Connect sign-in against a real provider on 127.0.0.1 (Authlib's server side): a round
trip, one account per subject, linking by the account's owner, and refusals of a tampered ID
token, a token for another audience, a forged state and a provider error, never a 500."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from codedraft import create_app
from codedraft.accounts import operations as accounts
from codedraft.accounts.models import User
from codedraft.accounts.oidc_models import ExternalIdentity
from codedraft.extensions import db
from tests.conftest import PASSWORD, app_config
from tests.support.live import http_sign_in, serving
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture
def site(tmp_path: Path, provider: Provider) -> Iterator[tuple[Flask, str]]:
    app = create_app(app_config(tmp_path, OIDC_METADATA_URL=f"{provider.issuer}/.well-known/openid-configuration",
                                OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET=CLIENT_SECRET,
                                OIDC_PROVIDER_NAME="Test Login"))
    with app.app_context():
        db.create_all()
        with serving(app) as base:
            provider.client.redirect_uris = [f"{base}/login/oidc/callback"]
            yield app, base
        db.session.remove()
        db.engine.dispose()


def sign_in_with_provider(base: str, browser: requests.Session | None = None) -> requests.Response:
    browser = browser or requests.Session()
    response = browser.get(f"{base}/login/oidc?next=/account/tokens", timeout=20)
    response.browser = browser  # type: ignore[attr-defined]
    return response


def identities() -> list[tuple[str, str, int]]:
    db.session.expire_all()
    return [(i.issuer, i.subject, i.user_id) for i in db.session.query(ExternalIdentity)]


def test_a_round_trip_signs_in_and_maps_the_subject_to_one_account(site: tuple[Flask, str], provider: Provider):
    _app, base = site
    assert "Sign in with Test Login" in requests.get(f"{base}/login", timeout=10).text
    first = sign_in_with_provider(base)
    assert first.status_code == 200 and first.url == f"{base}/account/tokens", first.text[:300]
    user = db.session.query(User).filter_by(email="eva@provider.test").one()
    assert user.name == "Eva Provider" and user.password_hash is None
    assert identities() == [(provider.issuer, "subject-0001", user.id)]
    again = sign_in_with_provider(base)
    assert again.status_code == 200 and db.session.query(User).count() == 1 and len(identities()) == 1
    assert provider.tokens_issued == 2


def refusal_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [type(record.exc_info[1]).__name__ for record in caplog.records
            if record.exc_info and "OpenID Connect" in record.getMessage()]


def test_a_tampered_id_token_is_refused(site: tuple[Flask, str], provider: Provider, caplog: pytest.LogCaptureFixture):
    _app, base = site
    provider.tamper = True
    response = sign_in_with_provider(base)
    assert response.status_code == 401 and "did not complete" in response.text
    assert refusal_reasons(caplog) == ["BadSignatureError"]
    assert provider.tokens_issued == 1 and identities() == [] and db.session.query(User).count() == 0
    assert response.browser.get(f"{base}/account/tokens", timeout=10).url.startswith(f"{base}/login")  # type: ignore[attr-defined]


def test_a_token_for_another_audience_is_refused(site: tuple[Flask, str], provider: Provider,
                                                 caplog: pytest.LogCaptureFixture):
    _app, base = site
    provider.audience = "another-client"
    response = sign_in_with_provider(base)
    assert response.status_code == 401 and "did not complete" in response.text
    assert refusal_reasons(caplog) == ["InvalidClaimError"]
    # Issued to another client that names us as its authorised party: still not ours.
    provider.extra_claims = {"azp": CLIENT_ID}
    assert sign_in_with_provider(base).status_code == 401
    assert refusal_reasons(caplog) == ["InvalidClaimError", "InvalidClaimError"]
    assert provider.tokens_issued == 2 and identities() == []


def test_forged_callbacks_and_provider_errors_are_a_clear_401(site: tuple[Flask, str], provider: Provider):
    _app, base = site
    for query in ("code=abc&state=forged", "", "error=access_denied&error_description=no", "code=%00&state=%00"):
        response = requests.get(f"{base}/login/oidc/callback?{query}", timeout=10)
        assert response.status_code == 401, query
    browser = requests.Session()
    started = browser.get(f"{base}/login/oidc", allow_redirects=False, timeout=10)
    assert started.status_code == 302 and started.headers["Location"].startswith(f"{provider.issuer}/authorize")
    # The right state, a code the provider never issued.
    state = started.headers["Location"].split("state=")[1].split("&")[0]
    assert browser.get(f"{base}/login/oidc/callback?code=never-issued&state={state}", timeout=10).status_code == 401
    assert identities() == []


def test_an_existing_address_is_linked_only_by_its_owner(site: tuple[Flask, str], provider: Provider):
    app, base = site
    owner = accounts.create_user("eva@provider.test", "Eva Local", PASSWORD)
    db.session.commit()
    refused = sign_in_with_provider(base)
    assert refused.status_code == 401 and "Sign in with its password" in refused.text and identities() == []
    browser = http_sign_in(base, "eva@provider.test", PASSWORD)  # local passwords still work
    linked = sign_in_with_provider(base, browser)
    assert linked.status_code == 200
    assert identities() == [(provider.issuer, "subject-0001", owner.id)]
    fresh = sign_in_with_provider(base)  # from now on the subject signs in to that account
    assert fresh.status_code == 200 and db.session.query(User).count() == 1


def test_an_identity_bound_to_one_account_is_not_taken_by_another(site: tuple[Flask, str], provider: Provider):
    _app, base = site
    assert sign_in_with_provider(base).status_code == 200
    accounts.create_user("other@example.test", "Other", PASSWORD)
    db.session.commit()
    other = http_sign_in(base, "other@example.test", PASSWORD)
    response = sign_in_with_provider(base, other)
    assert response.status_code == 401 and "already linked to another account" in response.text
    assert len(identities()) == 1


def test_without_configuration_there_is_no_provider_sign_in(client: Any):
    assert client.get("/login/oidc").status_code == 404
    assert "Sign in with" not in client.get("/login").get_data(as_text=True).replace("Sign in</", "")


def test_someone_signed_in_with_the_provider_applies_and_the_office_approves(site: tuple[Flask, str],
                                                                             provider: Provider):
    """End to end against the real provider: an identity-provider account has no role and no
    password; from its home page it applies (no address or password asked), the Office approves
    from its queue, and the person then takes part in the code. Bad and repeated applications are
    refused with a message, never a 500."""
    import re

    from codedraft.codes import operations as codes
    from codedraft.codes.models import Membership
    from codedraft.public.operations import make_public
    from codedraft.registration.models import Application

    app, base = site
    app.config["REGISTRATIONS_PER_HOUR"] = 100  # the limit has its own test; here every refusal is seen
    office = accounts.create_user("office@example.test", "Office", PASSWORD, is_office=True)
    code = codes.create_code("Open Code")
    private = codes.create_code("Private Code")
    make_public(code, office)
    db.session.commit()
    signed_in = sign_in_with_provider(base)
    browser = signed_in.browser  # type: ignore[attr-defined]
    home = browser.get(f"{base}/", timeout=10).text
    assert 'href="/register"' in home, "the home page of someone with no part yet offers to apply"
    form = browser.get(f"{base}/register?code={code.slug}", timeout=10).text
    assert "You apply as Eva Provider (eva@provider.test)" in form and 'name="password"' not in form
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)

    def post(**fields: str) -> requests.Response:
        return browser.post(f"{base}/register", data={"csrf_token": token, **fields}, allow_redirects=False,
                            timeout=10)

    for bad in ({"code": code.slug, "category": "no-such"}, {"code": private.slug, "category": "academia"},
                {"code": "x" * 5000, "category": "academia"}, {"code": code.slug, "category": "academia",
                                                                "organisation": "o" * 201},
                {"code": code.slug, "category": "academia", "message": "m" * 2001}, {}):
        response = post(**bad)
        assert response.status_code == 400, (bad, response.status_code)
    assert db.session.query(Application).count() == 0
    filed = post(code=code.slug, category="academia", organisation="<b>Uni</b>", message="We study models.")
    assert filed.status_code == 303
    assert post(code=code.slug, category="academia").status_code == 400  # once only
    pending = browser.get(f"{base}/", timeout=10).text
    assert "The Office has not decided on your application yet" in pending
    db.session.expire_all()
    application = db.session.query(Application).one()
    eva = db.session.query(User).filter_by(email="eva@provider.test").one()
    assert (application.user_id, application.code_id, application.status) == (eva.id, code.id, "pending")
    chief = http_sign_in(base, office.email, PASSWORD)
    queue = chief.get(f"{base}/office/applications", timeout=10).text
    assert "Eva Provider" in queue and "&lt;b&gt;Uni&lt;/b&gt;" in queue
    office_token = re.search(r'name="csrf_token" value="([^"]+)"', queue).group(1)
    approved = chief.post(f"{base}/office/applications/{application.id}/approve",
                          data={"csrf_token": office_token, "organisation": "Uni", "category": "academia"},
                          allow_redirects=False, timeout=10)
    assert approved.status_code == 302
    db.session.expire_all()
    membership = db.session.query(Membership).filter_by(user_id=eva.id).one()
    assert (membership.code_id, membership.role) == (code.id, "reviewer")
    assert "Open Code" in browser.get(f"{base}/", timeout=10).text
    assert post(code=code.slug, category="academia").status_code == 400  # a reviewer applies no more
