"""Notifications reach each reader in their language: stored as a message key and parameters,
said in the reader's language on the web and in the recipient's saved language by mail (through
the real SMTP server); parameters are text, escaped like any text."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from codedraft.extensions import db
from codedraft.feedback.models import Comment, Notification
from codedraft.notifications import messages as said
from codedraft.notifications import operations as notify_ops
from tests.conftest import csrf_token
from tests.support.smtp import Mailbox, body_of, smtp_server


@pytest.fixture
def mailbox(app) -> Iterator[Mailbox]:
    with smtp_server() as box:
        app.config["SMTP_URL"] = box.url
        yield box
        app.config["SMTP_URL"] = None


def save_preferences(client, **form: str):
    token = csrf_token(client, "/notifications/settings")
    return client.post("/notifications/settings", data={"csrf_token": token, **form})


def polish(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "pl"
    return client


def test_a_polish_reader_sees_activity_and_replies_in_polish(scene):
    rita, sam = scene.client("reviewer"), scene.client("second_reviewer")
    scene.post(rita, scene.feedback_url, body="Start.")
    scene.post(sam, scene.feedback_url, body="Second.")
    comment = db.session.scalars(select(Comment).order_by(Comment.id)).first()
    scene.post(sam, f"{scene.thread_url(comment.id)}/replies", body="Agreed.")
    chair = polish(scene.client("chair"))
    page = chair.get("/notifications").get_data(as_text=True)
    assert "2 nowe uwagi do 1.1 Training data summary" in page
    assert "new comment" not in page
    reply_page = polish(rita).get("/notifications").get_data(as_text=True)
    assert f"{scene.people['second_reviewer'].name} odpowiedział(a) na Twoją uwagę." in reply_page
    # The same rows read in English by an English reader; the row keeps its English text too.
    english = scene.client("chair").get("/notifications").get_data(as_text=True)
    assert "2 new comments on 1.1 Training data summary" in english
    note = db.session.scalars(select(Notification).where(Notification.kind == "activity")).first()
    assert note.message_key == said.ACTIVITY and note.message == "2 new comments on 1.1 Training data summary"


def test_parameters_with_html_are_escaped(scene):
    hostile = '<img src=x onerror="alert(1)">'
    sam = scene.people["second_reviewer"]
    sam.name = hostile
    db.session.commit()
    rita = scene.client("reviewer")
    scene.post(rita, scene.feedback_url, body="Start.")
    comment = db.session.scalars(select(Comment)).one()
    scene.post(scene.client("second_reviewer"), f"{scene.thread_url(comment.id)}/replies", body="Hi.")
    for client in (rita, polish(scene.client("reviewer"))):
        page = client.get("/notifications").get_data(as_text=True)
        assert hostile not in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_a_row_without_a_key_or_with_broken_parameters_shows_its_text(scene):
    user = scene.people["reviewer"]
    db.session.add_all([
        Notification(user_id=user.id, message="Old <b>English</b> text."),
        Notification(user_id=user.id, message="Broken params.", message_key=said.HIDDEN, message_params="[1, 2"),
        Notification(user_id=user.id, message="Unknown key.", message_key="%(nope)s gone", message_params="{}"),
        Notification(user_id=user.id, message="Not a dict.", message_key=said.HIDDEN, message_params='"x"'),
    ])
    db.session.commit()
    page = polish(scene.client("reviewer")).get("/notifications").get_data(as_text=True)
    assert "Old &lt;b&gt;English&lt;/b&gt; text." in page
    assert "Broken params." in page and "Unknown key." in page and "Not a dict." in page


def test_mail_reaches_each_person_in_their_saved_language(scene, mailbox):
    chair = scene.client("chair")
    assert save_preferences(chair, mail="immediately", language="pl").status_code == 303
    assert notify_ops.mail_language(scene.people["chair"].id) == "pl"
    # The settings page says it, and offers the languages by their own names.
    settings = chair.get("/notifications/settings").get_data(as_text=True)
    assert 'value="pl" lang="pl" selected' in settings and "Polski" in settings
    rita = scene.client("reviewer")  # writes in English: the recipient's language counts, not hers
    scene.post(rita, scene.feedback_url, body="One.")
    [mail] = mailbox.to(scene.people["chair"].email)
    assert "1 nowa uwaga do 1.1 Training data summary" in mail["Subject"]
    assert "Otwórz: " in body_of(mail) and scene.feedback_url in body_of(mail)


def test_the_daily_digest_is_in_each_recipients_language(scene, mailbox, make_user):
    member = make_user("member", scene.code, name="Mia Member", group=scene.clause.chapter.working_group)
    db.session.commit()
    chair = scene.client("chair")
    save_preferences(chair, mail="daily", language="pl")
    from tests.conftest import login

    mia = scene.app.test_client()
    login(mia, member.email)
    save_preferences(mia, mail="daily", language="en")
    scene.post(scene.client("reviewer"), scene.feedback_url, body="One.")
    assert notify_ops.send_daily_digests().sent == 2
    [polish_digest] = mailbox.to(scene.people["chair"].email)
    [english_digest] = mailbox.to(member.email)
    assert "1 powiadomienie" in polish_digest["Subject"]
    assert "1 nowa uwaga do 1.1 Training data summary" in body_of(polish_digest)
    assert "1 notification" in english_digest["Subject"]
    assert "1 new comment on 1.1 Training data summary" in body_of(english_digest)


def test_choosing_the_interface_language_sets_the_mail_language(scene):
    rita = scene.client("reviewer")
    token = csrf_token(rita, "/notifications")
    assert rita.post("/language", data={"csrf_token": token, "lang": "pl", "next": "/"}).status_code == 302
    assert notify_ops.mail_language(scene.people["reviewer"].id) == "pl"


@pytest.mark.parametrize("language", ["xx", "", "<script>", "p" * 10_000, "en\x00"])
def test_a_language_that_is_not_offered_is_refused_and_nothing_is_saved(scene, language):
    chair = scene.client("chair")
    response = save_preferences(chair, mail="immediately", language=language)
    # A NUL in any form field is refused before the view, with a 400 naming the field.
    assert response.status_code == (400 if "\x00" in language else 303)
    assert notify_ops.mail_mode(scene.people["chair"].id) == "daily"
    assert notify_ops.mail_language(scene.people["chair"].id) == "en"
    assert chair.get("/notifications/settings").status_code == 200


def test_mail_follows_the_language_one_signs_in_with_until_one_chooses(scene):
    from tests.conftest import login

    reviewer = scene.people["reviewer"]
    browser = polish(scene.app.test_client())
    login(browser, reviewer.email)
    assert notify_ops.mail_language(reviewer.id) == "pl"
    save_preferences(browser, mail="daily", language="en")
    again = polish(scene.app.test_client())
    login(again, reviewer.email)
    assert notify_ops.mail_language(reviewer.id) == "en", "a choice made stays"
