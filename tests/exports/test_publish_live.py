"""Publishing a draft while someone types: the snapshot is atomic and holds every acknowledged edit."""
from __future__ import annotations

import re
import threading
import time

from sqlalchemy import select

from codedraft.codes import operations as codes
from codedraft.drafts.models import Draft, DraftClause
from codedraft.extensions import db
from tests.conftest import PASSWORD
from tests.support.live import YClient, http_sign_in, serving, wait_for

SEED = "Seed text."
TYPED = "".join("abcdefghij"[i % 10] for i in range(120))


def test_publishing_while_typing_keeps_every_acknowledged_edit(app, make_code, make_user) -> None:
    code = make_code("Live Publish")
    clause = codes.add_clause(codes.add_chapter(code, "Chapter"), kind="commitment", number="1", title="Live",
                              body=SEED)
    chair = make_user("chair", code)
    office = make_user(office=True)
    db.session.commit()

    with serving(app) as base:
        editor = YClient(base, http_sign_in(base, chair.email, PASSWORD)).connect()
        try:
            assert editor.join(clause.uid)["ok"]
            assert editor.synced.wait(5)
            # The join's sync messages are acknowledged too: let them settle, then count keystrokes.
            time.sleep(0.3)
            baseline = len(editor.acks)
            done = threading.Event()

            def type_text() -> None:
                for index, char in enumerate(TYPED):
                    editor.insert(len(SEED) + index, char)
                    time.sleep(0.004)
                done.set()

            typist = threading.Thread(target=type_text)
            admin = http_sign_in(base, office.email, PASSWORD)
            token = re.search(r'name="csrf-token" content="([^"]+)"', admin.get(f"{base}/codes/{code.slug}").text)
            assert token
            typist.start()
            acknowledged_before: list[int] = []
            while not done.is_set() or len(acknowledged_before) < 3:
                time.sleep(0.08)
                acked = [ack for ack in editor.acks[baseline:] if isinstance(ack, dict) and ack.get("ok")]
                acknowledged_before.append(len(acked))
                response = admin.post(f"{base}/codes/{code.slug}/drafts",
                                      data={"name": f"Draft {len(acknowledged_before)}",
                                            "csrf_token": token.group(1)},
                                      allow_redirects=False, timeout=30)
                assert response.status_code == 302, response.text[:300]  # publishing never fails
            typist.join(10)
            wait_for(lambda: len(editor.acks) - baseline >= len(TYPED), 10, "every keystroke acknowledged")
        finally:
            editor.close()

    bodies = db.session.execute(
        select(Draft.number, DraftClause.body).join(DraftClause, DraftClause.draft_id == Draft.id)
        .where(Draft.code_id == code.id).order_by(Draft.number)
    ).all()
    assert len(bodies) == len(acknowledged_before) >= 3
    previous = 0
    for (number, body), acknowledged in zip(bodies, acknowledged_before, strict=True):
        # Each draft holds the text as it stood at one moment: the seed and a prefix of the typing
        assert body.startswith(SEED) and TYPED.startswith(body[len(SEED):]), (number, body)
        held = len(body) - len(SEED)
        # ... and at least every keystroke acknowledged before the publish started.
        assert held >= acknowledged, (number, held, acknowledged)
        assert held >= previous  # later drafts never go back in time
        previous = held
    assert previous == len(TYPED) or acknowledged_before[-1] < len(TYPED)
