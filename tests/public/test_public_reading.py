"""Public reading: anyone reads a public code's published material, and nothing else."""
from __future__ import annotations

import gzip
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from codedraft.drafts.models import Draft
from codedraft.extensions import db
from codedraft.feedback import operations as feedback
from codedraft.public import operations as public
from codedraft.timeutil import utcnow
from tests.conftest import csrf_token, login
from tests.public.conftest import FIRST_TEXT, SECOND_TEXT, UNPUBLISHED, UNPUBLISHED_TITLE, PublicScene

NEVER_PUBLIC = (UNPUBLISHED, UNPUBLISHED_TITLE, "HIDDEN-COMMENT", "HIDDEN-REASON", "WITHDRAWN-COMMENT",
                "PRIVATE-SUMMARY", "PRIVATE-TEXT", "Reviewer Person", "Other Reviewer")


def public_pages(scene: PublicScene) -> list[str]:
    slug = scene.code.slug
    return ["/", "/public", f"/public/{slug}", f"/public/{slug}/process", f"/public/{slug}/drafts/1",
            f"/public/{slug}/drafts/2", f"/public/{slug}/compare", f"/public/{slug}/compare?from=2&to=1&layout=side",
            f"/public/{slug}/feedback", f"/public/{slug}/feedback.json", f"/public/{slug}/drafts/2.akn.xml"]


def test_a_visitor_reads_every_public_page_and_nothing_unpublished(public_scene: PublicScene, client: FlaskClient):
    for path in public_pages(public_scene):
        response = client.get(path)
        assert response.status_code == 200, path
        text = response.get_data(as_text=True)
        for secret in NEVER_PUBLIC:
            assert secret not in text, (path, secret)


def test_the_drafts_read_as_published(public_scene: PublicScene, client: FlaskClient):
    slug = public_scene.code.slug
    assert FIRST_TEXT in client.get(f"/public/{slug}/drafts/1").get_data(as_text=True)
    second = client.get(f"/public/{slug}/drafts/2").get_data(as_text=True)
    assert SECOND_TEXT in second and "Commitment 1. Documentation" in second
    redline = client.get(f"/public/{slug}/compare").get_data(as_text=True)
    assert "<ins" in redline and "<del" in redline and "First Draft compared with Second Draft" in redline


def test_the_landing_page_says_what_the_code_is_and_where_the_round_stands(public_scene: PublicScene,
                                                                          client: FlaskClient):
    page = client.get("/").get_data(as_text=True)
    assert "Open Code of Practice" in page and "A code drafted in the open." in page
    assert "Second round" in page and "closed" in page
    assert "How to take part" in page
    assert "Private Code" not in page


def test_the_process_page_names_groups_chairs_and_rounds(public_scene: PublicScene, client: FlaskClient):
    page = client.get(f"/public/{public_scene.code.slug}/process").get_data(as_text=True)
    assert "Transparency WG" in page and "Chair Person" in page and "I Transparency" in page
    assert "Second round" in page and "not yet published" in page


def test_comments_and_responses_appear_only_once_the_round_is_published(public_scene: PublicScene,
                                                                       client: FlaskClient):
    url = f"/public/{public_scene.code.slug}/feedback"
    assert "PUBLISHED-COMMENT" not in client.get(url).get_data(as_text=True)
    assert client.get(url + ".json").get_json()["comments"] == []
    public.publish_round(public_scene.round, public_scene.people["office"])
    db.session.commit()
    page = client.get(url).get_data(as_text=True)
    assert "PUBLISHED-COMMENT" in page and "PUBLISHED-RESPONSE" in page and "Partly accepted" in page
    assert "Org civil-society" in page and "Civil society" in page
    dataset = client.get(url + ".json").get_json()
    assert dataset["licence"] == {"id": "CC-BY-4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}
    assert [c["comment"] for c in dataset["comments"]] == ["Please define *current*. PUBLISHED-COMMENT"]
    assert dataset["comments"][0]["clause"] == "Commitment 1. Documentation"  # as published, not live
    for secret in NEVER_PUBLIC:
        assert secret not in page and secret not in str(dataset)


def test_a_round_cannot_be_published_while_open(public_scene: PublicScene):
    draft = db.session.get(Draft, public_scene.round.draft_id)
    open_round = feedback.open_round(public_scene.code, draft, utcnow() + timedelta(days=3))
    with pytest.raises(public.PublicError):
        public.publish_round(open_round, public_scene.people["office"])


def test_a_quote_of_unpublished_live_text_is_left_out(public_scene: PublicScene, client: FlaskClient):
    comment = public_scene.comments["kept"]
    comment.quote = UNPUBLISHED
    public.publish_round(public_scene.round, public_scene.people["office"])
    db.session.commit()
    assert UNPUBLISHED not in client.get(f"/public/{public_scene.code.slug}/feedback").get_data(as_text=True)
    comment.quote = "keep the documentation current"
    db.session.commit()
    page = client.get(f"/public/{public_scene.code.slug}/feedback").get_data(as_text=True)
    assert "keep the documentation current</blockquote>" in page


def test_a_private_code_and_a_missing_one_answer_the_same_404(public_scene: PublicScene, client: FlaskClient):
    private = public_scene.private_code.slug
    for slug in (private, "no-such-code", "%00", "x" * 500):
        for suffix in ("", "/process", "/drafts/1", "/drafts/1.akn.xml", "/compare", "/feedback", "/feedback.json"):
            response = client.get(f"/public/{slug}{suffix}")
            assert response.status_code == 404, (slug, suffix)
    public.make_private(public_scene.code, public_scene.people["office"])
    db.session.commit()
    assert client.get(f"/public/{public_scene.code.slug}/drafts/1").status_code == 404


def test_bad_draft_numbers_are_a_404_never_a_500(public_scene: PublicScene, client: FlaskClient):
    slug = public_scene.code.slug
    for query in ("from=99", "to=0", "from=abc", "from=99999999999999999999999", "from=%C2%B2", "to=-1"):
        assert client.get(f"/public/{slug}/compare?{query}").status_code == 404, query
    assert client.get(f"/public/{slug}/drafts/99999999999999999999999").status_code == 404


def test_an_anonymous_visitor_reaches_nothing_of_the_participants(public_scene: PublicScene, client: FlaskClient):
    slug, uid = public_scene.code.slug, public_scene.clause.uid
    comment = public_scene.comments["hidden"].id
    routes = [f"/codes/{slug}", f"/codes/{slug}/clauses/{uid}", f"/codes/{slug}/clauses/{uid}/history",
              f"/codes/{slug}/clauses/{uid}/history/replay", f"/codes/{slug}/clauses/{uid}/history/blame",
              f"/codes/{slug}/clauses/{uid}/feedback", f"/codes/{slug}/clauses/{uid}/feedback/{comment}",
              f"/codes/{slug}/feedback", f"/codes/{slug}/compare?from=2&to=live", f"/codes/{slug}/exports",
              f"/codes/{slug}/drafts/2", f"/codes/{slug}/search?q=UNPUBLISHED", "/search?q=UNPUBLISHED",
              f"/codes/{slug}/settings", f"/codes/{slug}/public-reading", f"/api/v1/codes/{slug}",
              f"/api/v1/codes/{slug}/clauses/{uid}", f"/api/v1/codes/{slug}/compare?from=2&to=live",
              f"/api/v1/codes/{slug}/clauses/{uid}/history", "/api/v1/search?q=UNPUBLISHED",
              f"/api/v1/codes/{slug}/clauses/{uid}/comments"]
    for path in routes:
        response = client.get(path)
        assert response.status_code in (302, 401, 404), (path, response.status_code)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login"), path
        assert UNPUBLISHED not in response.get_data(as_text=True), path


def test_only_the_office_changes_public_reading(public_scene: PublicScene, client: FlaskClient):
    slug = public_scene.code.slug
    login(client, public_scene.people["chair"].email)
    token = csrf_token(client, "/")
    assert client.get(f"/codes/{slug}/public-reading").status_code == 403
    assert client.post(f"/codes/{slug}/public-reading", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/codes/{slug}/public-reading/rounds/{public_scene.round.id}",
                       data={"csrf_token": token, "publish": "on"}).status_code == 403
    assert public.published_round_ids(public_scene.code) == set()


def test_the_office_makes_a_code_private_and_publishes_a_round(public_scene: PublicScene, client: FlaskClient):
    slug = public_scene.code.slug
    login(client, public_scene.people["office"].email)
    token = csrf_token(client, f"/codes/{slug}/public-reading")
    assert client.post(f"/codes/{slug}/public-reading", data={"csrf_token": token}).status_code == 302
    assert client.get(f"/public/{slug}").status_code == 404
    response = client.post(f"/codes/{slug}/public-reading",
                           data={"csrf_token": token, "public": "on", "licence": "no-such-licence"})
    assert response.status_code == 302 and client.get(f"/public/{slug}").status_code == 404
    client.post(f"/codes/{slug}/public-reading", data={"csrf_token": token, "public": "on", "licence": "CC0-1.0"})
    assert client.get(f"/public/{slug}/feedback.json").get_json()["licence"]["id"] == "CC0-1.0"
    client.post(f"/codes/{slug}/public-reading/rounds/{public_scene.round.id}",
                data={"csrf_token": token, "publish": "on"})
    assert "PUBLISHED-COMMENT" in client.get(f"/public/{slug}/feedback").get_data(as_text=True)
    assert client.post(f"/codes/{slug}/public-reading/rounds/999999",
                       data={"csrf_token": token, "publish": "on"}).status_code == 404
    assert client.post(f"/codes/{slug}/public-reading", data={"public": "on"}).status_code == 403  # no CSRF


def test_public_pages_in_polish_use_polish_dates(public_scene: PublicScene, client: FlaskClient):
    page = client.get(f"/public/{public_scene.code.slug}", headers={"Accept-Language": "pl"}).get_data(as_text=True)
    month = public_scene.round.closes_at.month
    polish_months = ["stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia",
                     "września", "października", "listopada", "grudnia"]
    assert polish_months[month - 1] in page


def test_visitors_share_one_cached_copy_that_carries_no_session(public_scene: PublicScene, client: FlaskClient,
                                                               app):
    slug = public_scene.code.slug
    for path in (f"/public/{slug}/drafts/2", f"/public/{slug}/compare"):
        first = client.get(path)
        assert first.headers["Cache-Control"] == "public, max-age=300" and "Set-Cookie" not in first.headers
        html = first.get_data(as_text=True)
        assert 'name="csrf-token"' not in html and 'name="csp-nonce"' not in html
        assert app.test_client().get(path).get_data() == first.get_data()  # another visitor, the same copy
        polish = app.test_client().get(path + ("&" if "?" in path else "?") + "lang=pl").get_data(as_text=True)
        assert 'lang="pl"' in polish and "Zmiany między projektami" in polish
        assert f'href="/public/{slug}/compare?from=2&amp;to=1&amp;lang=pl"' in app.test_client().get(
            f"/public/{slug}/compare?from=2&to=1").get_data(as_text=True)  # the language link keeps the page
    zipped = client.get(f"/public/{slug}/drafts/2", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.get_data()) == client.get(f"/public/{slug}/drafts/2").get_data()
    again = client.get(f"/public/{slug}/drafts/2", headers={"If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    public.make_private(public_scene.code, public_scene.people["office"])
    db.session.commit()
    assert client.get(f"/public/{slug}/drafts/2").status_code == 404  # no stale copy once private
    public.make_public(public_scene.code, public_scene.people["office"])
    db.session.commit()
    login(client, public_scene.people["chair"].email)
    own = client.get(f"/public/{slug}/drafts/2")
    assert 'name="csrf-token"' in own.get_data(as_text=True) and "Cache-Control" not in own.headers


def test_a_cookieless_visitor_is_answered_before_flask_with_the_same_copy(public_scene: PublicScene, app):
    """The shared copy goes out from SharedPagesMiddleware, without a Flask request, exactly as
    Flask sends it; a cookie, a code made private or a stale state go through Flask."""
    from flask import request_started

    slug = public_scene.code.slug
    path = f"/public/{slug}/drafts/2"
    started: list[str] = []

    def count(sender, **_extra):
        from flask import request

        started.append(request.path)

    headers = {"Accept-Encoding": "gzip", "Accept-Language": "pl;q=0.9, en;q=0.1"}
    # Trusted for an hour here: at the default second, a busy machine between two requests
    # would make the second go through Flask, which is right but not what this test looks at.
    app.config["PUBLIC_STATE_SECONDS"] = 3600
    with request_started.connected_to(count, app):
        through_flask = app.test_client().get(path, headers=headers)
        assert started == [path]
        before_flask = app.test_client().get(path, headers=headers)
        assert started == [path], "the second visitor never reached Flask"
        assert before_flask.get_data() == through_flask.get_data()
        assert 'lang="pl"' in gzip.decompress(before_flask.get_data()).decode()
        for name in ("ETag", "Cache-Control", "Vary", "Content-Encoding", "Content-Type", "X-Frame-Options",
                     "X-Content-Type-Options", "Referrer-Policy"):
            assert before_flask.headers[name] == through_flask.headers[name], name
        assert "style-src-attr 'none'" in before_flask.headers["Content-Security-Policy"]
        assert "Set-Cookie" not in before_flask.headers
        head = app.test_client().head(path, headers=headers)
        assert head.status_code == 200 and head.get_data() == b""
        etag = before_flask.headers["ETag"]
        assert app.test_client().get(path, headers={"If-None-Match": etag, **headers}).status_code == 304
        # Another language is another copy: rendered once by Flask, then served before it.
        english = app.test_client().get(path + "?lang=en&junk=1", headers=headers)
        assert english.status_code == 200 and started[-1] == path
        count_before = len(started)
        assert app.test_client().get(path + "?lang=en", headers=headers).get_data() == english.get_data()
        assert len(started) == count_before
        # A visitor with any cookie goes through Flask (their session may hold a language or a login).
        with_cookie = app.test_client()
        with_cookie.set_cookie("other", "1")
        assert with_cookie.get(path, headers=headers).status_code == 200 and len(started) == count_before + 1
    public.make_private(public_scene.code, public_scene.people["office"])
    db.session.commit()
    assert app.test_client().get(path, headers=headers).status_code == 404


def test_a_state_older_than_its_trust_goes_through_flask(public_scene: PublicScene, app):
    from flask import request_started

    path = f"/public/{public_scene.code.slug}/drafts/2"
    started: list[str] = []
    app.config["PUBLIC_STATE_SECONDS"] = 0  # every state read is stale at once
    with request_started.connected_to(lambda sender, **_extra: started.append(path), app):
        first = app.test_client().get(path)
        second = app.test_client().get(path)
    assert len(started) == 2 and first.get_data() == second.get_data()


@pytest.mark.parametrize("path", ["/public/", "/public//drafts/2", "/public/%ff%fe/drafts/2",
                                  "/public/x/drafts/99999999999999999999",
                                  "/public/x/compare?from=%00&to=" + "9" * 5000, "/public/" + "a" * 5000 + "/drafts/1"])
def test_odd_public_addresses_are_never_a_500(public_scene: PublicScene, app, path: str):
    slug = public_scene.code.slug
    app.test_client().get(f"/public/{slug}/drafts/2")
    for headers in ({}, {"Accept-Language": "x" * 3000 + ";q=abc", "Accept-Encoding": ";;;", "If-None-Match": '"'}):
        response = app.test_client().get(path.replace("/x/", f"/{slug}/"), headers=headers)
        assert response.status_code < 500, (path, response.status_code)


def test_the_public_redline_speaks_the_readers_language(public_scene: PublicScene, app):
    slug = public_scene.code.slug
    polish = app.test_client().get(f"/public/{slug}/compare?lang=pl").get_data(as_text=True)
    english = app.test_client().get(f"/public/{slug}/compare").get_data(as_text=True)
    assert "Przepisy ze zmienionym tekstem" in polish and "Clauses with changed text" not in polish
    assert "Clauses with changed text" in english and "Przepisy" not in english
