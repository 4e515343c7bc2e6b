"""Brought in: the Office imports a survey tool's CSV or XLSX into a round; rows are matched to
clauses by number or title, the unmatched resolved by hand; broken or hostile files get a clear
report and leave nothing half-imported."""
from __future__ import annotations

import io

from openpyxl import Workbook
from sqlalchemy import func, select

from codedraft.codes import operations as codes
from codedraft.extensions import db
from codedraft.feedback import importing
from codedraft.feedback.models import Comment, Notification
from tests.conftest import csrf_token


def import_url(scene) -> str:
    return f"/codes/{scene.code.slug}/rounds/{scene.round.id}/import"


def upload(client, scene, name: str, data: bytes, follow: bool = False):
    token = csrf_token(client, import_url(scene))
    return client.post(import_url(scene), data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data", follow_redirects=follow)


def imported() -> list[Comment]:
    return list(db.session.scalars(select(Comment).where(Comment.source == "import").order_by(Comment.id)))


def csv_bytes(*rows: str, header: str = "Organisation,Stakeholder category,Clause,Comment") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def test_a_survey_csv_is_matched_by_number_and_title_and_the_rest_resolved_by_hand(scene):
    second = codes.add_clause(scene.clause.chapter, kind="measure", number="1.2", title="Copyright policy",
                              body="Signatories shall have a copyright policy.")
    db.session.commit()
    office = scene.client("office")
    data = csv_bytes(
        'Authors Guild,Rightsholder,1.1,"Please list every crawler, with dates."',
        "Uni Warsaw,academia,Copyright policy,The policy should be public.",
        "SME Alliance,Industry,Measure 1.2,Keep the policy short.",
        "Someone,Martian,1.1,Unknown category.",
        "Hacker Ltd,Industry,1.1,=HYPERLINK(\"http://evil.test\";\"click\")",
        "Empty Org,Academia,1.1,",
        "Free Text Org,Civil society,the bit about opt-outs,Honour robots.txt.",
    )
    page = upload(office, scene, "survey.csv", data).get_data(as_text=True)
    assert "3 comments imported" in page
    assert "Row 5: unknown stakeholder category" in page and "Row 6: the comment cell holds a formula" in page
    assert "Row 7: no comment text" in page and "the bit about opt-outs" in page
    rows = imported()
    assert [(c.organisation, c.category, c.clause_id) for c in rows] == [
        ("Authors Guild", "rightsholder", scene.clause.id), ("Uni Warsaw", "academia", second.id),
        ("SME Alliance", "industry", second.id)]
    assert all(c.round_id == scene.round.id and c.author.name == "Imported submissions" for c in rows)
    # The working group is told, one batch per clause.
    chair_notes = db.session.scalars(select(Notification).where(Notification.user_id == scene.people["chair"].id))
    assert sorted(n.comment_count for n in chair_notes) == [1, 2]
    # The Office resolves the free-text row by hand.
    token = csrf_token(office, import_url(scene))
    resolved = office.post(import_url(scene) + "/resolve", data={
        "csrf_token": token, "clause": str(scene.clause.id), "organisation": "Free Text Org",
        "category": "civil-society", "text": "Honour robots.txt."}, follow_redirects=True)
    assert "1 held rows imported" in resolved.get_data(as_text=True)
    assert imported()[-1].organisation == "Free Text Org" and imported()[-1].clause_id == scene.clause.id
    # Imported comments are marked on the clause's feedback page.
    assert "Imported submissions" in office.get(scene.feedback_url).get_data(as_text=True)


def test_broken_files_import_nothing_and_say_why(scene, monkeypatch):
    office = scene.client("office")
    cases = [
        ("latin1.csv",
         "Organisation,Category,Clause,Comment\nCaf\xe9 Org,Academia,1.1,Tr\xe8s bien\n".encode("latin-1"),
         "not UTF-8 text"),
        ("columns.csv", b"Org,Text\nA,B\n", "Columns missing: category, clause"),
        ("broken.xlsx", b"PK\x03\x04" + b"\x00garbage" * 50, "not a readable XLSX"),
        ("empty.csv", b"   \n", "The file is empty."),
        ("binary.csv", b"Organisation,Category,Clause,Comment\n\x00\x01", "binary data"),
    ]
    for name, data, message in cases:
        response = upload(office, scene, name, data)
        assert response.status_code == 400, name
        html = response.get_data(as_text=True)
        assert "Nothing was imported." in html and message in html, name
    monkeypatch.setattr(importing, "MAX_FILE_BYTES", 2_000)
    big = csv_bytes(*[f"Org {n},Academia,1.1,Comment number {n} on the clause." for n in range(100)])
    response = upload(office, scene, "big.csv", big)
    assert response.status_code == 400 and "can be imported at once" in response.get_data(as_text=True)
    # Beyond what the server accepts at all (100 MB against its limit): a clear page, not an error.
    scene.app.config["MAX_CONTENT_LENGTH"] = 1_000
    response = upload(office, scene, "huge.csv", big)
    assert response.status_code == 413 and "larger than this server accepts" in response.get_data(as_text=True)
    assert imported() == []


def test_too_many_unknown_clauses_leave_nothing_half_imported(scene, monkeypatch):
    monkeypatch.setattr(importing, "MAX_UNMATCHED", 1)
    office = scene.client("office")
    data = csv_bytes("Good Org,Academia,1.1,Fine.", "A,Academia,9.9,Lost.", "B,Academia,Annex Z,Lost too.")
    response = upload(office, scene, "survey.csv", data)
    assert response.status_code == 400 and "name no clause of this code" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0


def test_an_xlsx_is_read_and_its_formula_cells_refused(scene):
    book = Workbook()
    sheet = book.active
    sheet.append(["Organization", "Category", "Reference", "Feedback"])
    sheet.append(["Provider Inc", "GPAI provider / developer", "1.1", "The summary template works for us."])
    sheet.append(["Formula Org", "Industry", "1.1", "=1+1"])
    sheet.append(["Semicolon; Org", "Open-source", "Training data summary", "Exempt open weights."])
    buffer = io.BytesIO()
    book.save(buffer)
    page = upload(scene.client("office"), scene, "survey.xlsx", buffer.getvalue()).get_data(as_text=True)
    assert "2 comments imported" in page and "Row 3: the comment cell holds a formula" in page
    assert [(c.organisation, c.category) for c in imported()] == [("Provider Inc", "provider"),
                                                                   ("Semicolon; Org", "open-source")]


def test_only_the_office_imports(scene):
    data = csv_bytes("A,Academia,1.1,Hi.")
    assert upload(scene.client("chair"), scene, "s.csv", data).status_code == 403
    reviewer = scene.client("reviewer")
    token = csrf_token(reviewer, scene.feedback_url)
    response = reviewer.post(import_url(scene), data={"csrf_token": token, "file": (io.BytesIO(data), "s.csv")},
                             content_type="multipart/form-data")
    assert response.status_code == 404 and imported() == []
