"""Grouped, digested, answered together: campaign groups, themes, the response table with
templates and bulk answers, publishing a round's responses and its annex."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from codedraft.extensions import db
from codedraft.feedback import operations as ops
from codedraft.feedback import triage
from codedraft.feedback.models import CampaignGroup, Comment, Response, Theme
from codedraft.timeutil import utcnow
from tests.conftest import csrf_token

CAMPAIGN = ("As a member of the Creators Alliance we ask that the training data summary list every "
            "crawled domain and say whether robots.txt opt-outs were honoured for each of them.")
EDITS = [
    lambda t: t,
    lambda t: t.replace("Creators Alliance", "Authors Guild of Poland"),
    lambda t: t.replace("we ask", "we kindly ask"),
    lambda t: t + " Thank you.",
    lambda t: t.replace("every crawled domain", "each crawled domain"),
    lambda t: t.replace("As a member", "As members").replace("honoured", "honored"),
]
DISTINCT = [
    "The template is too heavy for small and medium enterprises; please allow a one-page summary.",
    "Public bodies need the summary in a machine-readable format so they can check it at scale.",
    "Open-source developers publishing weights should be exempt from listing synthetic data sources.",
]


@pytest.fixture
def campaign(scene, make_user):
    """Six campaign copies from rightsholders and academia, three distinct comments."""
    copies = []
    for index, edit in enumerate(EDITS):
        category = "rightsholder" if index < 4 else "academia"
        author = make_user("reviewer", scene.code, name=f"Signatory {index}", category=category)
        author.organisation.name = f"Org {index}"
        copies.append(ops.post_comment(scene.code, scene.clause, author, edit(CAMPAIGN)))
    others = [ops.post_comment(scene.code, scene.clause, scene.people[who], text)
              for who, text in zip(("reviewer", "second_reviewer", "individual"), DISTINCT, strict=True)]
    db.session.commit()
    return copies, others


def round_url(scene, tail: str = "") -> str:
    return f"/codes/{scene.code.slug}/rounds/{scene.round.id}{tail}"


def close_round(scene) -> None:
    scene.round.opens_at = utcnow() - timedelta(days=2)
    ops.close_round(scene.round)
    db.session.commit()


def post_form(client, page: str, path: str, follow_redirects: bool = False, **data):
    token = csrf_token(client, page)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=follow_redirects)


def test_campaign_copies_form_one_group_with_counts_by_category(scene, campaign):
    copies, others = campaign
    report = triage.group_round(scene.round)
    db.session.commit()
    assert (report.groups, report.grouped_comments, report.comments) == (1, 6, 9)
    [summary] = triage.groups_of_round(scene.round)
    assert summary.size == 6 and summary.by_category == {"rightsholder": 4, "academia": 2}
    assert summary.organisations == [f"Org {i}" for i in range(6)]
    assert summary.group.shared_text == CAMPAIGN
    assert {c.group_id for c in others} == {None}
    # Grouping again keeps the group (and so its answer).
    triage.save_response(scene.round, scene.people["chair"], triage.Target("group", summary.group.id),
                         "Noted.", "accepted")
    triage.group_round(scene.round)
    db.session.commit()
    assert db.session.scalar(select(Response.group_id)) == summary.group.id


def test_the_group_pages_are_for_the_drafting_team_only(scene, campaign):
    triage.group_round(scene.round)
    db.session.commit()
    group_id = db.session.scalar(select(CampaignGroup.id))
    chair = scene.client("chair")
    html = chair.get(round_url(scene, f"/groups/{group_id}")).get_data(as_text=True)
    assert "Campaign group of 6 comments" in html and "Org 5" in html and "Rightsholder: 4" in html
    assert "<svg" in chair.get(round_url(scene, "/groups")).get_data(as_text=True)
    for who in ("reviewer", "observer", "outsider"):
        client = scene.client(who)
        assert client.get(round_url(scene, f"/groups/{group_id}")).status_code == 404, who
        assert client.get(round_url(scene, "/responses")).status_code == 404, who


def test_a_chair_answers_a_group_once_with_a_template_and_the_office_publishes(scene, campaign):
    copies, others = campaign
    chair, office, rita = scene.client("chair"), scene.client("office"), scene.client("reviewer")
    assert post_form(chair, round_url(scene), round_url(scene, "/analyse")).status_code == 303
    group_id = db.session.scalar(select(CampaignGroup.id))
    post_form(chair, round_url(scene, "/templates"), round_url(scene, "/templates"), title="Opt-outs",
              body="The next draft asks providers to document how they honour opt-outs.", disposition="partly_accepted")
    template_id = triage.templates_of(scene.code)[0].id
    answered = post_form(chair, round_url(scene, "/responses"), round_url(scene, "/responses"),
                         target=f"group:{group_id}", template=str(template_id))
    assert answered.status_code == 303
    post_form(chair, round_url(scene, "/responses"), round_url(scene, "/responses"), target=f"comment:{others[0].id}",
              body="Out of scope for this chapter.", disposition="out_of_scope")
    table = chair.get(round_url(scene, "/responses")).get_data(as_text=True)
    assert "Campaign group of 6" in table and "document how they honour opt-outs" in table
    # Not published: the authors see nothing of it.
    assert "not published yet" in rita.get(round_url(scene, "/annex")).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Comment, copies[0].id).disposition is None
    # Publishing waits for the round to close.
    refused = post_form(office, round_url(scene), round_url(scene, "/publish"))
    assert refused.status_code == 303
    assert db.session.get(type(scene.round), scene.round.id).responses_published_at is None
    close_round(scene)
    assert post_form(chair, round_url(scene), round_url(scene, "/publish")).status_code == 403
    published = post_form(office, round_url(scene), round_url(scene, "/publish"))
    assert published.status_code == 303 and published.headers["Location"].endswith("/annex")
    db.session.expire_all()
    assert {db.session.get(Comment, c.id).disposition for c in copies} == {"partly_accepted"}
    assert db.session.get(Comment, others[0].id).status == "rejected"
    annex = rita.get(round_url(scene, "/annex")).get_data(as_text=True)
    assert annex.count("Shared text of 6 submissions") == 1 and "Org 3" in annex
    assert CAMPAIGN in annex and DISTINCT[0] in annex and "Partly accepted" in annex
    assert "Rightsholder: 4" in annex and "Out of scope" in annex
    # Published responses no longer change.
    late = post_form(chair, round_url(scene, "/responses"), round_url(scene, "/responses"),
                     target=f"group:{group_id}", body="Changed.", disposition="accepted", follow_redirects=True)
    assert "can no longer change" in late.get_data(as_text=True)


def test_bulk_answers_and_bad_targets_give_clear_messages(scene, campaign):
    copies, others = campaign
    chair = scene.client("chair")
    page = round_url(scene, "/responses")
    response = post_form(chair, page, page, target=[f"comment:{others[1].id}", f"comment:{others[2].id}"],
                         body="Thank you; see the new measure 1.3.", disposition="addressed_elsewhere")
    assert response.status_code == 303
    assert db.session.scalar(select(Response.id).where(Response.comment_id == others[2].id)) is not None
    for bad in ("group:999999", "comment:abc", "theme:1e9", ""):
        answer = post_form(chair, page, page, target=bad, body="x", disposition="accepted", follow_redirects=True)
        assert answer.status_code == 200, bad
    answer = post_form(chair, page, page, target=f"comment:{others[0].id}", body="x", disposition="nonsense",
                       follow_redirects=True)
    assert "Choose a disposition." in answer.get_data(as_text=True)
    # Someone outside the drafting team is not told the round's table exists.
    assert post_form(scene.client("reviewer"), scene.feedback_url, page, target=f"comment:{others[0].id}",
                     body="x", disposition="accepted").status_code == 404


def test_themes_digest_and_curation(scene, campaign, make_user):
    copies, others = campaign
    for index in range(8):
        author = make_user("reviewer", scene.code, name=f"SME {index}", category="industry")
        ops.post_comment(scene.code, scene.clause, author,
                         f"Small firms cannot afford the reporting burden; the template costs too much ({index}).")
    db.session.commit()
    triage.group_round(scene.round)
    report = triage.compute_themes(scene.round)
    db.session.commit()
    assert report.themes >= 2
    digests = triage.clause_digest(scene.round, scene.clause)
    # A campaign's copies share their theme.
    assert len({db.session.get(Comment, c.id).theme_id for c in copies}) == 1
    chair = scene.client("chair")
    url = round_url(scene, f"/clauses/{scene.clause.uid}/digest")
    html = chair.get(url).get_data(as_text=True)
    assert "What each stakeholder group asked for" in html and "<svg" in html and "Industry" in html
    assert f"/feedback/{copies[0].id}" in html or f"/feedback/{digests[0].quotes[0].id}" in html
    chapter_html = chair.get(round_url(scene, "/digest")).get_data(as_text=True)
    assert scene.clause.heading in chapter_html and "fb-category-chart" in chapter_html
    first, second = digests[0].theme, digests[1].theme
    second_theme_id = second.id
    post_form(chair, url, round_url(scene, f"/themes/{first.id}/rename"), name="Opt-outs and crawling")
    db.session.expire_all()
    assert db.session.get(Theme, first.id).name == "Opt-outs and crawling" and db.session.get(Theme, first.id).curated
    post_form(chair, url, round_url(scene, f"/themes/{first.id}/merge"), other=str(second_theme_id))
    db.session.expire_all()
    assert db.session.scalar(select(Theme.id).where(Theme.id == second_theme_id)) is None
    members = list(db.session.scalars(select(Comment.id).where(Comment.theme_id == first.id)))
    if others[0].id not in members:  # the split below takes a comment of this theme
        others[0] = db.session.get(Comment, members[-1])
    split = post_form(chair, url, round_url(scene, f"/themes/{first.id}/split"), comment=str(others[0].id),
                      name="SME burden")
    assert split.status_code == 303
    db.session.expire_all()
    new_theme = db.session.scalar(select(Theme).where(Theme.name == "SME burden"))
    assert new_theme is not None and db.session.get(Comment, others[0].id).theme_id == new_theme.id
    assert len(members) > 1
    # Curated themes survive finding themes again; a theme's answer reaches its comments.
    triage.compute_themes(scene.round)
    db.session.commit()
    assert db.session.get(Theme, new_theme.id) is not None
    triage.save_response(scene.round, scene.people["chair"], triage.Target("theme", new_theme.id),
                         "The SME template is simplified.", "accepted")
    db.session.commit()
    assert triage.effective_responses(scene.round)[others[0].id].theme_id == new_theme.id
    # Renaming to nothing is refused with a message, and a reviewer may not curate.
    empty = post_form(chair, url, round_url(scene, f"/themes/{first.id}/rename"), name="  ", follow_redirects=True)
    assert "Give the theme a name." in empty.get_data(as_text=True)
    assert post_form(scene.client("reviewer"), scene.feedback_url, round_url(scene, f"/themes/{first.id}/rename"),
                     name="x").status_code == 404


def test_one_round_state_everywhere_and_support_follows_it(scene):
    observer, rita, chair = scene.client("observer"), scene.client("reviewer"), scene.client("chair")
    page = observer.get(scene.feedback_url).get_data(as_text=True)
    assert 'data-round-status="open_read_only"' in page
    assert "No feedback round is open" not in page, "an observer is not told both that a round is open and that none is"
    refused = scene.post(observer, scene.feedback_url, body="Hi")
    assert refused.status_code == 403
    sam = scene.client("second_reviewer")
    scene.post(rita, scene.feedback_url, body="Support me.")
    comment = db.session.scalar(select(Comment).order_by(Comment.id.desc()))
    assert scene.post(sam, f"{scene.thread_url(comment.id)}/support").status_code == 303
    close_round(scene)
    # After the round closes: reviewers are told so, chairs may still answer, support no longer counts.
    assert 'data-round-status="closed"' in rita.get(scene.feedback_url).get_data(as_text=True)
    assert 'data-round-status="answering"' in chair.get(scene.feedback_url).get_data(as_text=True)
    late = post_form(scene.client("individual"), scene.feedback_url, f"{scene.thread_url(comment.id)}/support",
                     follow_redirects=True)
    assert "Support can be given only" in late.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Comment, comment.id).support_count == 1
    rounds_page = rita.get(f"/codes/{scene.code.slug}/rounds").get_data(as_text=True)
    assert 'data-round-state="closed"' in rounds_page
    # A scheduled round is named with its opening time.
    ops.open_round(scene.code, scene.draft, utcnow() + timedelta(days=20), opens_at=utcnow() + timedelta(days=3),
                   name="Round 2")
    db.session.commit()
    assert 'data-round-status="scheduled"' in rita.get(scene.feedback_url).get_data(as_text=True)


def test_groups_themes_and_responses_in_the_api_and_the_dataset(scene, campaign, client):
    import json

    from codedraft.accounts.operations import create_api_token
    from codedraft.collab.store import store_for
    from codedraft.exports import builders
    from codedraft.exports.feedback_export import export_feedback_csv, export_feedback_json
    from tests.test_api import check

    copies, others = campaign
    triage.group_round(scene.round)
    triage.compute_themes(scene.round)
    group_id = db.session.scalar(select(CampaignGroup.id))
    triage.save_response(scene.round, scene.people["chair"], triage.Target("group", group_id), "Noted.", "accepted")
    db.session.commit()  # opening the clause's document stores its seed in a transaction of its own
    amendment_anchor = ops.anchor_selection(store_for(scene.app), scene.clause, "publish a summary", None, None,
                                            "codepoint")
    amendment = ops.post_comment(scene.code, scene.clause, scene.people["reviewer"], "Clearer.",
                                 anchor=amendment_anchor, replacement="release a summary")
    ops.support_comment(scene.code, scene.clause, amendment, scene.people["second_reviewer"])
    tokens = {who: create_api_token(scene.people[who], who)[1] for who in ("chair", "reviewer")}
    db.session.commit()
    spec = client.get("/api/v1/openapi.json").json
    base = f"/api/v1/codes/{scene.code.slug}/rounds/{scene.round.id}"
    chair = {"Authorization": f"Bearer {tokens['chair']}"}
    groups = client.get(base + "/groups", headers=chair)
    check(spec, "/codes/{slug}/rounds/{round_id}/groups", "get", groups)
    assert groups.json["groups"][0]["size"] == 6 and sorted(groups.json["groups"][0]["comment_ids"]) == \
        sorted(c.id for c in copies)
    themes = client.get(base + "/themes", headers=chair)
    check(spec, "/codes/{slug}/rounds/{round_id}/themes", "get", themes)
    assert sum(t["size"] for t in themes.json["themes"]) == 9
    responses = client.get(base + "/responses", headers=chair)
    check(spec, "/codes/{slug}/rounds/{round_id}/responses", "get", responses)
    assert responses.json["responses"][0]["target"] == f"group:{group_id}"
    reviewer = {"Authorization": f"Bearer {tokens['reviewer']}"}
    for tail in ("/groups", "/themes", "/responses"):
        refused = client.get(base + tail, headers=reviewer)
        assert refused.status_code == 404, tail
    # The dataset carries kind, replacement, supports, round, group and theme.
    rows = builders.feedback_rows(scene.code, builders.feedback_scope(scene.people["office"]))
    records = {r["comment_id"]: r for r in json.loads(export_feedback_json(rows))["comments"]}
    amended = records[amendment.id]
    assert (amended["kind"], amended["replacement"], amended["supports"], amended["round"]) == \
        ("amendment", "release a summary", 1, "Round 1")
    assert records[copies[0].id]["group"] == group_id and records[copies[0].id]["theme"]
    header = export_feedback_csv(rows).splitlines()[0]
    assert header.endswith("kind,replacement,supports,round,group,theme")
