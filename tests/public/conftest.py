"""A public code with two published drafts, unpublished live text, a closed and published round,
and the people around it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask

from codedraft.accounts.models import User
from codedraft.codes import operations as codes
from codedraft.codes.models import Clause, Code
from codedraft.drafts.operations import publish_draft
from codedraft.extensions import db
from codedraft.feedback import install as install_feedback
from codedraft.feedback import operations as feedback
from codedraft.feedback.models import Comment, FeedbackRound
from codedraft.public import operations as public
from codedraft.timeutil import utcnow

FIRST_TEXT = "Signatories shall document their models. First wording."
SECOND_TEXT = "Signatories shall document their models and keep the documentation current. Second wording."
# Words that exist only in the live text, never in a published draft: no public page may show them.
UNPUBLISHED = "UNPUBLISHED-LIVE-WORDING"
UNPUBLISHED_TITLE = "Unpublished new title"


@dataclass
class PublicScene:
    app: Flask
    code: Code
    private_code: Code
    clause: Clause
    round: FeedbackRound
    comments: dict[str, Comment]
    people: dict[str, User]


@pytest.fixture
def public_scene(app: Flask, make_code: Callable[..., Code], make_user: Callable[..., User]) -> PublicScene:
    install_feedback(app)
    code = make_code("Open Code of Practice", summary="A code drafted in the open.")
    group = codes.add_working_group(code, "Transparency WG")
    chapter = codes.add_chapter(code, "Transparency", number="I", working_group=group)
    clause = codes.add_clause(chapter, kind="commitment", number="1", title="Documentation", body=FIRST_TEXT)
    office = make_user(office=True, name="Office Person")
    chair = make_user("chair", code, group=group, name="Chair Person")
    reviewer = make_user("reviewer", code, name="Reviewer Person", category="civil-society")
    other = make_user("reviewer", code, name="Other Reviewer", category="academia")
    publish_draft(code, "First Draft", by=office)
    codes.set_clause_body(clause, SECOND_TEXT)
    second = publish_draft(code, "Second Draft", by=office)
    feedback_round = feedback.open_round(code, second, utcnow() + timedelta(days=1), by=office, name="Second round")
    kept = feedback.post_comment(code, clause, reviewer, "Please define *current*. PUBLISHED-COMMENT")
    hidden = feedback.post_comment(code, clause, other, "Offensive words. HIDDEN-COMMENT")
    withdrawn = feedback.post_comment(code, clause, other, "Never mind. WITHDRAWN-COMMENT")
    feedback.record_disposition(code, clause, kept, chair, "partly_accepted", "We say annually. PUBLISHED-RESPONSE")
    feedback.hide_comment(code, hidden, office, "Abusive. HIDDEN-REASON")
    feedback.withdraw_comment(withdrawn, other)
    feedback.close_round(feedback_round)
    codes.set_clause_body(clause, f"{SECOND_TEXT} {UNPUBLISHED}")
    clause.title = UNPUBLISHED_TITLE
    public.make_public(code, office)
    private_code = make_code("Private Code", summary="PRIVATE-SUMMARY")
    private_chapter = codes.add_chapter(private_code, "Hidden chapter")
    codes.add_clause(private_chapter, kind="commitment", number="1", title="Private", body="PRIVATE-TEXT")
    publish_draft(private_code, "Private Draft", by=office)
    db.session.commit()
    return PublicScene(app, code, private_code, clause, feedback_round,
                       {"kept": kept, "hidden": hidden, "withdrawn": withdrawn},
                       {"office": office, "chair": chair, "reviewer": reviewer, "other": other})
