"""Told: the working group is notified of new comments and amendments, batched per clause; the
header counts unread notifications on every page; mail goes through a real SMTP server as each
person chose (immediately, a daily digest, never)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from codedraft.codes import operations as codes
from codedraft.extensions import db
from codedraft.feedback.models import Notification
from codedraft.mail import send_invitation_mail, send_mail
from codedraft.notifications import operations as notify_ops
from tests.conftest import csrf_token
from tests.support.smtp import Mailbox, body_of, smtp_server


@pytest.fixture
def mailbox(app) -> Iterator[Mailbox]:
    with smtp_server() as box:
        app.config["SMTP_URL"] = box.url
        yield box
        app.config["SMTP_URL"] = None


def activity_of(user) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user.id,
                                                              Notification.kind == "activity")))


def choose_mail(scene, who: str, mode: str) -> None:
    client = scene.client(who)
    token = csrf_token(client, "/notifications/settings")
    response = client.post("/notifications/settings", data={"csrf_token": token, "mail": mode})
    assert response.status_code == 303


def test_comments_on_a_clause_reach_its_working_group_as_one_batch(scene, make_user):
    member = make_user("member", scene.code, name="Mia Member", group=scene.clause.chapter.working_group)
    db.session.commit()
    rita, sam = scene.client("reviewer"), scene.client("second_reviewer")
    for client, body in ((rita, "First."), (sam, "Second."), (rita, "Third.")):
        assert scene.post(client, scene.feedback_url, body=body).status_code == 303
    db.session.expire_all()
    for person in (scene.people["chair"], member):
        notes = activity_of(person)
        assert len(notes) == 1, "one notification per clause per batch, not one per comment"
        assert notes[0].comment_count == 3 and "3 new comments" in notes[0].message
        assert scene.clause.title in notes[0].message
    # Reviewers and people outside the group are not told; nor is an author of their own words.
    assert activity_of(scene.people["reviewer"]) == [] and activity_of(scene.people["outsider"]) == []


def test_reading_a_batch_closes_it_and_the_next_comment_opens_another(scene):
    chair = scene.client("chair")
    rita = scene.client("reviewer")
    scene.post(rita, scene.feedback_url, body="One.")
    note = activity_of(scene.people["chair"])[0]
    token = csrf_token(chair, "/notifications")
    opened = chair.post(f"/notifications/{note.id}/open", data={"csrf_token": token})
    assert opened.status_code == 303 and opened.headers["Location"].endswith(scene.feedback_url)
    scene.post(rita, scene.feedback_url, body="Two.")
    db.session.expire_all()
    notes = sorted(activity_of(scene.people["chair"]), key=lambda n: n.id)
    assert [(n.read_at is not None, n.comment_count) for n in notes] == [(True, 1), (False, 1)]
    # Someone else's notification cannot be opened (nor its existence learnt).
    rita_token = csrf_token(rita, "/notifications")
    assert rita.post(f"/notifications/{notes[1].id}/open", data={"csrf_token": rita_token}).status_code == 404


def test_the_unread_count_is_in_the_header_of_every_page(scene):
    scene.post(scene.client("reviewer"), scene.feedback_url, body="Please define 'summary'.")
    chair = scene.client("chair")
    for page in ("/", f"/codes/{scene.code.slug}", f"/codes/{scene.code.slug}/clauses/{scene.clause.uid}",
                 "/search", "/notifications/settings"):
        html = chair.get(page, follow_redirects=True).get_data(as_text=True)
        assert 'data-unread="1"' in html, page
    assert 'data-unread' not in scene.client("observer").get("/").get_data(as_text=True)


def test_immediate_mail_is_one_message_per_batch(scene, mailbox):
    choose_mail(scene, "chair", "immediately")
    rita = scene.client("reviewer")
    scene.post(rita, scene.feedback_url, body="One.")
    scene.post(rita, scene.feedback_url, body="Two.", quote="publish a summary", replacement="release a summary",
               unit="codepoint")
    chair_mail = mailbox.to(scene.people["chair"].email)
    assert len(chair_mail) == 1
    assert "1 new comment" in chair_mail[0]["Subject"] and scene.clause.title in chair_mail[0]["Subject"]
    assert scene.feedback_url in body_of(chair_mail[0])
    note = activity_of(scene.people["chair"])[0]
    assert (note.comment_count, note.amendment_count) == (1, 1) and note.emailed_at is not None
    assert mailbox.to(scene.people["reviewer"].email) == []


def test_the_daily_digest_gathers_the_unmailed_notifications_once(scene, mailbox, make_user):
    group = scene.clause.chapter.working_group
    second = codes.add_clause(scene.clause.chapter, kind="measure", number="1.2", title="Copyright policy",
                              body="Signatories shall have a copyright policy.")
    never = make_user("member", scene.code, name="Nina Never", group=group)
    db.session.commit()
    choose_mail(scene, "chair", "daily")
    choose_mail_for = scene.app.test_client()
    from tests.conftest import login

    login(choose_mail_for, never.email)
    token = csrf_token(choose_mail_for, "/notifications/settings")
    choose_mail_for.post("/notifications/settings", data={"csrf_token": token, "mail": "never"})
    rita = scene.client("reviewer")
    scene.post(rita, scene.feedback_url, body="One.")
    second_url = f"/codes/{scene.code.slug}/clauses/{second.uid}/feedback"
    scene.post(rita, second_url, body="On copyright.")
    assert mailbox.messages == [], "digest readers get nothing immediately"
    report = notify_ops.send_daily_digests()
    assert report.sent == 1 and report.failed == []
    [digest] = mailbox.to(scene.people["chair"].email)
    text = body_of(digest)
    assert "2 notifications" in digest["Subject"]
    assert scene.clause.title in text and "Copyright policy" in text and second_url in text
    assert mailbox.to(never.email) == []
    assert notify_ops.send_daily_digests().sent == 0, "what was mailed is not mailed again"


def test_an_invitation_is_delivered_by_mail(app, mailbox):
    link = "http://127.0.0.1:5000/invitations/abc123"
    assert send_invitation_mail("new.person@example.test", "New Person", link, code_title="GPAI Code")
    [message] = mailbox.to("new.person@example.test")
    assert "GPAI Code" in message["Subject"] and link in body_of(message)


def test_without_smtp_mail_is_off_and_nothing_fails(scene):
    assert scene.app.config["SMTP_URL"] is None
    assert send_mail("a@example.test", "Hello", "Text") is False
    assert send_invitation_mail("a@example.test", "A", "http://x/invite") is False
    choose_mail(scene, "chair", "immediately")
    assert scene.post(scene.client("reviewer"), scene.feedback_url, body="One.").status_code == 303
    assert activity_of(scene.people["chair"])[0].emailed_at is None


def test_an_unreachable_smtp_server_loses_no_comment(scene):
    from tests.support.smtp import free_port

    scene.app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    choose_mail(scene, "chair", "immediately")
    response = scene.post(scene.client("reviewer"), scene.feedback_url, body="Kept.")
    assert response.status_code == 303
    note = activity_of(scene.people["chair"])[0]
    assert note.comment_count == 1 and note.emailed_at is None
    assert send_invitation_mail("a@example.test", "A", "http://x/invite") is False


def test_a_subject_cannot_carry_extra_headers(app, mailbox):
    send_mail("a@example.test", "Hi\r\nBcc: victim@example.test", "Text")
    [message] = mailbox.messages
    assert message["Bcc"] is None and "victim@example.test" not in message["X-Envelope-To"]


def test_the_mail_preference_refuses_unknown_values(scene):
    client = scene.client("chair")
    token = csrf_token(client, "/notifications/settings")
    response = client.post("/notifications/settings", data={"csrf_token": token, "mail": "hourly"},
                           follow_redirects=True)
    assert response.status_code == 200 and "Choose how you want to receive mail." in response.get_data(as_text=True)
    assert notify_ops.mail_mode(scene.people["chair"].id) == "daily"


def test_a_code_admin_s_invitation_is_mailed_and_its_link_accepts(app, mailbox, make_code, make_user, sign_in, client):
    code = make_code("Mailed Code")
    admin = make_user("admin", code)
    sign_in(admin)
    page = client.post(f"/codes/{code.slug}/invitations", follow_redirects=True, data={
        "email": "invitee@example.test", "name": "In Vitee", "role": "reviewer",
        "csrf_token": csrf_token(client, f"/codes/{code.slug}/settings")}).get_data(as_text=True)
    assert "Invitation mailed to invitee@example.test." in page and "/invite/" not in page
    [message] = mailbox.to("invitee@example.test")
    assert "Mailed Code" in message["Subject"] and "sign in first if you already have an account" in body_of(message)
    link = next(word for word in body_of(message).split() if "/invite/" in word)
    assert app.test_client().get(link[link.index("/invite/"):]).status_code == 200
