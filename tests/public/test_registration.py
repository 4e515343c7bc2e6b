"""Self-registration: a stakeholder applies, the Office approves or refuses; nothing tells
whether an e-mail address has an account; applicants read only what the public can."""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from codedraft.accounts.models import Organisation, User
from codedraft.audit.models import AuditEvent
from codedraft.codes.models import Membership
from codedraft.extensions import db
from codedraft.policy import code_role
from codedraft.registration.models import Application
from tests.conftest import csrf_token, login
from tests.public.conftest import PublicScene

GOOD = {"name": "Ada Applicant", "email": "ada@example.test", "password": "long enough secret",
        "password_again": "long enough secret", "organisation": "Open Models Alliance", "category": "civil-society",
        "message": "We publish model cards."}


def apply(client: FlaskClient, scene: PublicScene, **changes: str):
    data = {**GOOD, "code": scene.code.slug, **changes}
    return client.post("/register", data={"csrf_token": csrf_token(client, "/register"), **data})


def test_an_application_makes_a_roleless_account_that_reads_only_public_pages(public_scene: PublicScene,
                                                                             client: FlaskClient):
    response = apply(client, public_scene)
    assert response.status_code == 200 and "Application received" in response.get_data(as_text=True)
    application = db.session.query(Application).one()
    assert (application.status, application.organisation_name, application.category) == (
        "pending", "Open Models Alliance", "civil-society")
    assert code_role(application.applicant, public_scene.code.id) is None
    assert login(client, GOOD["email"], GOOD["password"]).status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert "has not decided on your application" in home and "Open Code of Practice" in home
    slug, uid = public_scene.code.slug, public_scene.clause.uid
    for path in (f"/codes/{slug}", f"/codes/{slug}/clauses/{uid}", f"/codes/{slug}/drafts/2",
                 f"/codes/{slug}/clauses/{uid}/feedback"):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/public/{slug}/drafts/2").status_code == 200
    assert client.get("/office/applications").status_code == 403


def test_a_known_address_gets_the_same_answer_and_nothing_changes(public_scene: PublicScene, client: FlaskClient):
    reviewer = public_scene.people["reviewer"]
    before = reviewer.password_hash
    fresh = apply(client, public_scene).get_data(as_text=True)
    known = apply(client, public_scene, email=reviewer.email.upper(), name="Someone Else").get_data(as_text=True)
    strip = lambda page: page.replace(GOOD["email"], "").replace(reviewer.email.upper(), "")  # noqa: E731
    assert strip(known).split('csrf-token" content="')[0] == strip(fresh).split('csrf-token" content="')[0]
    db.session.expire_all()
    assert db.session.get(User, reviewer.id).password_hash == before
    assert db.session.query(Application).count() == 1


def test_bad_applications_are_refused_with_a_message_and_nothing_stored(public_scene: PublicScene,
                                                                       client: FlaskClient, app: Flask):
    app.config["REGISTRATIONS_PER_HOUR"] = 100  # every attempt counts, failed ones too
    cases = [{"email": "not-an-address"}, {"name": " "}, {"password_again": "something else entirely"},
             {"password": "short", "password_again": "short"}, {"category": "astronaut"},
             {"code": public_scene.private_code.slug}, {"code": "no-such-code"}, {"message": "x" * 5000}]
    for changes in cases:
        response = apply(client, public_scene, **changes)
        assert response.status_code == 400, changes
        assert 'class="flash flash-error"' in response.get_data(as_text=True)
    assert db.session.query(Application).count() == 0
    assert db.session.query(User).filter(User.email == GOOD["email"]).count() == 0


def test_applications_are_rate_limited(public_scene: PublicScene, client: FlaskClient, app: Flask):
    app.config["REGISTRATIONS_PER_HOUR"] = 2
    statuses = [apply(client, public_scene, email=f"n{i}@example.test").status_code for i in range(3)]
    assert statuses == [200, 200, 429]


def test_the_office_approves_and_the_category_is_its_to_confirm(public_scene: PublicScene, client: FlaskClient,
                                                               make_user: Callable[..., User]):
    apply(client, public_scene, organisation="Org civil-society")  # an organisation others already belong to
    application = db.session.query(Application).one()
    office = public_scene.people["office"]
    login(client, office.email)
    queue = client.get("/office/applications").get_data(as_text=True)
    assert "Ada Applicant" in queue and "We publish model cards." in queue
    token = csrf_token(client, "/office/applications")
    response = client.post(f"/office/applications/{application.id}/approve",
                           data={"csrf_token": token, "organisation": "Org civil-society", "category": "academia"})
    assert response.status_code == 302
    db.session.expire_all()
    applicant = db.session.get(User, application.user_id)
    assert applicant.organisation.name == "Org civil-society" and applicant.stakeholder_category == "academia"
    assert db.session.query(Organisation).filter_by(name="Org civil-society").count() == 1
    assert public_scene.people["reviewer"].organisation.category == "academia"  # shared: the Office confirmed it
    membership = db.session.query(Membership).filter_by(user_id=applicant.id).one()
    assert (membership.code_id, membership.role) == (public_scene.code.id, "reviewer")
    assert db.session.query(AuditEvent).filter_by(action="registration.approved").count() == 1
    again = client.post(f"/office/applications/{application.id}/refuse", data={"csrf_token": token, "reason": "x"})
    assert again.status_code == 302
    assert db.session.get(Application, application.id).status == "approved"


def test_the_office_refuses_with_a_reason_the_applicant_reads(public_scene: PublicScene, client: FlaskClient,
                                                             app: Flask):
    apply(client, public_scene)
    application = db.session.query(Application).one()
    office_client = app.test_client()
    login(office_client, public_scene.people["office"].email)
    token = csrf_token(office_client, "/office/applications")
    assert office_client.post(f"/office/applications/{application.id}/refuse",
                              data={"csrf_token": token, "reason": " "}).status_code == 302
    assert db.session.get(Application, application.id).status == "pending"  # no reason, no refusal
    office_client.post(f"/office/applications/{application.id}/refuse",
                       data={"csrf_token": token, "reason": "Not a stakeholder of this code."})
    assert office_client.post("/office/applications/99999999999999999999/approve",
                              data={"csrf_token": token}).status_code == 404
    login(client, GOOD["email"], GOOD["password"])
    home = client.get("/").get_data(as_text=True)
    assert "refused your application" in home and "Not a stakeholder of this code." in home
    assert client.get(f"/codes/{public_scene.code.slug}").status_code == 404


def test_only_the_office_decides(public_scene: PublicScene, client: FlaskClient):
    apply(client, public_scene)
    application = db.session.query(Application).one()
    login(client, public_scene.people["chair"].email)
    token = csrf_token(client, "/")
    assert client.get("/office/applications").status_code == 403
    assert client.post(f"/office/applications/{application.id}/approve",
                       data={"csrf_token": token, "category": "academia"}).status_code == 403
    assert db.session.get(Application, application.id).status == "pending"


def test_a_pending_applicant_joins_no_clause_over_socketio(public_scene: PublicScene, client: FlaskClient):
    from tests.support.live import YClient, http_sign_in, serving

    apply(client, public_scene)
    with serving(public_scene.app) as base:
        browser = http_sign_in(base, GOOD["email"], GOOD["password"])
        socket = YClient(base, browser).connect()
        try:
            ack = socket.join(public_scene.clause.uid)
            assert ack == {"ok": False, "error": "No such clause, or you may not see it."}
        finally:
            socket.sio.disconnect()
