"""Dispositions with notifications, rounds, visibility, moderation, rate limit, XSS, filters."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from codedraft.extensions import db
from codedraft.feedback import operations as ops
from codedraft.feedback.models import Comment, Notification
from codedraft.timeutil import utcnow
from tests.conftest import csrf_token


def _comments() -> list[Comment]:
    db.session.expire_all()
    return list(db.session.scalars(select(Comment).order_by(Comment.id)))


def test_a_disposition_sets_the_status_and_notifies_the_author(scene):
    rita, chris = scene.client("reviewer"), scene.client("chair")
    scene.post(rita, scene.feedback_url, body="Please clarify.")
    (comment,) = _comments()
    assert scene.post(rita, f"{scene.thread_url(comment.id)}/disposition", disposition="accepted",
                      reason="mine").status_code == 403
    missing = scene.post(chris, f"{scene.thread_url(comment.id)}/disposition", disposition="accepted", reason="")
    assert missing.status_code == 303 and _comments()[0].disposition is None
    scene.post(chris, f"{scene.thread_url(comment.id)}/disposition", disposition="partly_accepted",
               reason="Clarified in 1.2.")
    (comment,) = _comments()
    assert (comment.status, comment.disposition, comment.disposition_reason) == (
        "partly_accepted", "partly_accepted", "Clarified in 1.2.")
    assert comment.disposed_by_id == scene.people["chair"].id
    notes = rita.get("/notifications").get_data(as_text=True)
    assert "“Partly accepted”: Clarified in 1.2." in notes and "1 unread" in notes
    scene.post(rita, "/notifications/read")
    assert ops.unread_count(scene.people["reviewer"]) == 0
    scene.post(chris, f"{scene.thread_url(comment.id)}/disposition", disposition="addressed_elsewhere", reason="See 2.")
    assert _comments()[0].status == "addressed"


def test_reviewers_post_only_in_an_open_round_but_chairs_still_reply(scene):
    rita, chris = scene.client("reviewer"), scene.client("chair")
    scene.post(rita, scene.feedback_url, body="In time.")
    (comment,) = _comments()
    office = scene.client("office")
    rounds = office.get(f"/codes/{scene.code.slug}/rounds").get_data(as_text=True)
    assert "Round 1" in rounds and "open" in rounds
    response = scene.post(office, f"/codes/{scene.code.slug}/rounds/{scene.round.id}/close")
    assert response.status_code == 303
    assert ops.open_round_of(scene.code) is None
    assert scene.post(rita, scene.feedback_url, body="Too late.").status_code == 403
    assert scene.post(rita, f"{scene.thread_url(comment.id)}/replies", body="Late reply").status_code == 403
    assert scene.post(chris, f"{scene.thread_url(comment.id)}/replies", body="Chair answers.").status_code == 303
    assert [r.body for r in _comments()[0].replies] == ["Chair answers."]
    assert "No feedback round is open" in rita.get(scene.feedback_url).get_data(as_text=True)
    # The Office opens the next round through the plain form; reviewers may post again.
    closes = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    assert scene.post(rita, f"/codes/{scene.code.slug}/rounds", draft=str(scene.draft.id),
                      closes_at=closes).status_code == 403
    scene.post(office, f"/codes/{scene.code.slug}/rounds", draft=str(scene.draft.id), closes_at=closes, name="R2")
    assert ops.open_round_of(scene.code).name == "R2"
    assert scene.post(rita, scene.feedback_url, body="Now again.").status_code == 303
    assert _comments()[-1].round_id == ops.open_round_of(scene.code).id


def test_observers_read_but_do_not_post(scene):
    rita, olga = scene.client("reviewer"), scene.client("observer")
    scene.post(rita, scene.feedback_url, body="Visible to observers.")
    assert "Visible to observers." in olga.get(scene.feedback_url).get_data(as_text=True)
    assert scene.post(olga, scene.feedback_url, body="Observer speaks.").status_code == 403
    (comment,) = _comments()
    assert scene.post(olga, f"{scene.thread_url(comment.id)}/support").status_code == 403



def test_a_round_s_times_with_an_offset_are_converted_to_utc_and_others_refused(scene):
    """A datetime-local field filled by a script may carry an offset: compared with the stored
    naive UTC times that raised (a 500). Now it is converted; a time the offset takes out of the
    calendar is refused like any other that is not one."""
    office = scene.client("office")
    scene.post(office, f"/codes/{scene.code.slug}/rounds/{scene.round.id}/close")
    year = utcnow().year + 1
    response = scene.post(office, f"/codes/{scene.code.slug}/rounds", draft=str(scene.draft.id),
                          opens_at=f"{year}-01-10T08:00+02:00", closes_at=f"{year}-01-20T10:00Z", name="Offsets")
    assert response.status_code == 303
    db.session.expire_all()
    opened = [r for r in ops.rounds_of(scene.code) if r.name == "Offsets"][0]
    assert (opened.opens_at.isoformat(), opened.closes_at.isoformat()) == (f"{year}-01-10T06:00:00",
                                                                        f"{year}-01-20T10:00:00")
    assert opened.opens_at.tzinfo is None
    for closes in ("9999-12-31T23:00-05:00", "not a time", "2027-02-30T10:00"):
        response = scene.post(office, f"/codes/{scene.code.slug}/rounds", draft=str(scene.draft.id),
                              closes_at=closes, name="Refused")
        assert response.status_code == 303, closes
        assert not [r for r in ops.rounds_of(scene.code) if r.name == "Refused"], closes

def test_other_codes_people_get_404_everywhere(scene):
    """SECURITY-CASES 3 and 27: the same 404 for every handler naming this code's clause."""
    rita, otto = scene.client("reviewer"), scene.client("outsider")
    scene.post(rita, scene.feedback_url, body="Private to the code.")
    (comment,) = _comments()
    token = csrf_token(otto, "/notifications")
    for path in (scene.feedback_url, f"{scene.feedback_url}?fragment=1", scene.thread_url(comment.id),
                 f"/codes/{scene.code.slug}/feedback", f"/codes/{scene.code.slug}/rounds"):
        assert otto.get(path).status_code == 404, path
    for action in ("replies", "support", "withdraw", "disposition", "status", "hide", "unhide", "amendment/accept"):
        response = otto.post(f"{scene.thread_url(comment.id)}/{action}", data={"csrf_token": token, "body": "x",
                                                                              "reason": "x"})
        assert response.status_code == 404, action
    assert otto.post(scene.feedback_url, data={"csrf_token": token, "body": "x"}).status_code == 404
    # A comment id of this code named under the outsider's own clause is not found either.
    own_clause = "/codes/other-code"
    assert otto.get(f"{own_clause}/clauses/{scene.clause.uid}/feedback/{comment.id}").status_code == 404


def test_the_office_hides_a_comment_with_a_reason_and_the_record_stays(scene):
    rita, sam, office = scene.client("reviewer"), scene.client("second_reviewer"), scene.client("office")
    scene.post(rita, scene.feedback_url, body="Offensive words.")
    (comment,) = _comments()
    chris = scene.client("chair")
    assert scene.post(chris, f"{scene.thread_url(comment.id)}/hide", reason="no").status_code == 403
    scene.post(office, f"{scene.thread_url(comment.id)}/hide", reason="Personal attack.")
    (comment,) = _comments()
    assert comment.hidden and comment.hidden_reason == "Personal attack." and comment.body == "Offensive words."
    assert "Offensive words." not in sam.get(scene.feedback_url).get_data(as_text=True)
    assert sam.get(scene.thread_url(comment.id)).status_code == 404
    own = rita.get(scene.feedback_url).get_data(as_text=True)
    assert "Offensive words." in own and "Hidden by the Office: Personal attack." in own
    assert "Offensive words." in office.get(scene.feedback_url).get_data(as_text=True)
    assert "hidden by the Office: Personal attack." in rita.get("/notifications").get_data(as_text=True)
    assert "Offensive" not in sam.get(f"/codes/{scene.code.slug}/feedback").get_data(as_text=True)
    scene.post(office, f"{scene.thread_url(comment.id)}/unhide")
    assert "Offensive words." in sam.get(scene.feedback_url).get_data(as_text=True)


def test_a_comment_flood_gets_429_with_retry_after(scene):
    """SECURITY-CASES 30."""
    rita = scene.client("reviewer")
    token = csrf_token(rita, scene.feedback_url)
    statuses = [rita.post(scene.feedback_url, data={"csrf_token": token, "body": f"Flood {n}"}).status_code
                for n in range(12)]
    assert statuses[:10] == [303] * 10 and statuses[10:] == [429, 429]
    response = rita.post(scene.feedback_url, data={"csrf_token": token, "body": "again"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert len(_comments()) == 10
    # Per person: someone else may still post.
    sam = scene.client("second_reviewer")
    assert scene.post(sam, scene.feedback_url, body="Unaffected.").status_code == 303


def test_script_and_javascript_links_in_comments_are_shown_as_text(scene):
    """SECURITY-CASES 17-18."""
    rita = scene.client("reviewer")
    evil = ('<script>alert(1)</script> <img src=x onerror=alert(2)> <svg onload=alert(3)> '
            '[a](javascript:alert(4)) [b](JaVaScRiPt&#58;alert(5)) [c](data:text/html,x) [d](vbscript:x)')
    scene.post(rita, scene.feedback_url, body=evil, quote="They shall keep it", unit="reading")
    scene.post(rita, f"{scene.thread_url(_comments()[0].id)}/replies", body=evil)
    page = rita.get(scene.feedback_url).get_data(as_text=True)
    for needle in ("<script>alert", "<img src=x", "<svg onload", 'href="javascript', "href=\"data:text/html",
                   "vbscript:x\"", "onerror=alert(2)>"):
        assert needle.lower() not in page.lower(), needle
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_filters_by_category_status_round_group_and_author(scene):
    rita, sam, chris = scene.client("reviewer"), scene.client("second_reviewer"), scene.client("chair")
    scene.post(rita, scene.feedback_url, body="Civil society view.")
    scene.post(sam, scene.feedback_url, body="Academic view.")
    first, second = _comments()
    scene.post(chris, f"{scene.thread_url(second.id)}/disposition", disposition="rejected", reason="No.")

    def listed(query: str, path: str | None = None) -> set[str]:
        page = rita.get(f"{path or scene.feedback_url}?{query}").get_data(as_text=True)
        return {text for text in ("Civil society view.", "Academic view.") if text in page}

    assert listed("category=civil-society") == {"Civil society view."}
    assert listed("category=academia") == {"Academic view."}
    assert listed("status=rejected") == {"Academic view."}
    assert listed(f"author={scene.people['reviewer'].id}") == {"Civil society view."}
    assert listed(f"round={scene.round.id}") == {"Civil society view.", "Academic view."}
    assert listed(f"round={scene.round.id + 99}") == set()
    group_id = scene.code.working_groups[0].id
    assert listed(f"group={group_id}") == {"Civil society view.", "Academic view."}
    assert listed(f"group={group_id + 99}") == set()
    assert listed("category=nonsense") == {"Civil society view.", "Academic view."}  # ignored, not an error
    code_page = f"/codes/{scene.code.slug}/feedback"
    assert listed("category=academia", code_page) == {"Academic view."}
    overview = rita.get(f"{code_page}").get_data(as_text=True)
    assert 'role="img"' in overview and "2 comments (Academia: 1, Civil society: 1)" in overview
    counts = ops.counts_by_clause(scene.code, scene.people["reviewer"], ops.FeedbackFilter(status="open"))
    assert counts == {scene.clause.id: {"civil-society": 1}}


def test_the_overview_include_renders_a_chart_per_clause(scene, app):
    from flask import render_template_string
    from flask_login import login_user

    rita = scene.client("reviewer")
    scene.post(rita, scene.feedback_url, body="One.")
    with app.test_request_context():
        login_user(scene.people["office"])
        html = render_template_string('{% include "feedback/overview_panel.html" %}', code=scene.code)
    assert "<svg" in html and "1 comments (Civil society: 1)" in html and scene.clause.heading in html
    # Only the working group was told (one batched activity notice); rendering sent nothing.
    assert db.session.scalar(select(Notification.id).where(Notification.kind != "activity")) is None
