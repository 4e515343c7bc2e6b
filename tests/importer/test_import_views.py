"""Importing in the browser: upload, preview (nothing written), corrections, apply."""
from __future__ import annotations

import io
import re
import zipfile

from sqlalchemy import func, select

from codedraft.codes.models import Chapter, Clause, Code
from codedraft.codes.operations import live_clauses
from codedraft.extensions import db
from codedraft.importer.models import ImportUpload
from tests.conftest import csrf_token, login

SMALL = ("# Small Code\n\n## Part One\n\n### Commitment 1. Care\n\nTake care of things.\n\n"
         "#### Summary of changes\n\nNew in this version.\n\n### Commitment 2. Share\n\nShare what you know.\n")
NEXT = ("# Small Code, second version\n\n## Part One\n\n### Commitment 1. Care\n\nTake good care of things.\n\n"
        "### Commitment 2. Pass on\n\nShare what you know with others.\n\n### Commitment 3. Report\n\nReport.\n")


def _office(client, make_user):
    office = make_user(office=True)
    db.session.commit()
    login(client, office.email)
    return office


def _upload(client, data: bytes, name: str, code: str | None = None):
    form = {"csrf_token": csrf_token(client, "/import"), "file": (io.BytesIO(data), name)}
    if code:
        form["code"] = code
    return client.post("/import", data=form, content_type="multipart/form-data")


def _counts() -> tuple[int, int, int]:
    return (db.session.scalar(select(func.count()).select_from(Code)),
            db.session.scalar(select(func.count()).select_from(Clause)),
            db.session.scalar(select(func.count()).select_from(ImportUpload)))


def test_new_code_is_previewed_before_anything_is_written_then_applied(app, client, make_user):
    _office(client, make_user)
    response = _upload(client, SMALL.encode(), "small.md")
    assert response.status_code == 302
    assert _counts()[:2] == (0, 0)  # only the pending upload is kept
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Found 1 chapters and 2 clauses." in page
    assert "Part One" in page and "Care" in page and "Share" in page
    token = response.headers["Location"].rsplit("/", 1)[1]
    applied = client.post(f"/import/{token}/apply", data={
        "csrf_token": csrf_token(client, f"/import/{token}"), "title": "Small Code",
        "draft_name": "First Draft", "newgroup-chapter:part-one": "Working Group 1",
    }, headers={"Accept": "application/json"})
    assert applied.status_code == 200, applied.get_data(as_text=True)
    code = db.session.scalar(select(Code))
    chapter = db.session.scalar(select(Chapter).where(Chapter.code_id == code.id))
    assert chapter.working_group.name == "Working Group 1"
    care = next(c for c in live_clauses(code) if c.number == "1")
    assert [n.body for n in care.notes] == ["New in this version."] and "Summary" not in care.body
    assert client.get(f"/import/{token}/progress").get_json() == {"progress": 100, "running": False, "done": True}
    again = client.post(f"/import/{token}/apply", data={"csrf_token": csrf_token(client, "/import")},
                        headers={"Accept": "application/json"})
    assert again.status_code == 409


def test_next_version_shows_matches_and_takes_a_correction(app, client, make_user):
    _office(client, make_user)
    first = _upload(client, SMALL.encode(), "small.md")
    token = first.headers["Location"].rsplit("/", 1)[1]
    client.post(f"/import/{token}/apply", data={"csrf_token": csrf_token(client, "/import")})
    code = db.session.scalar(select(Code))
    old = {c.number: c.uid for c in live_clauses(code)}
    second = _upload(client, NEXT.encode(), "next.md", code=code.slug)
    token = second.headers["Location"].rsplit("/", 1)[1]
    page = client.get(f"/import/{token}").get_data(as_text=True)
    # Each proposed match is a choice, with its reason and confidence.
    assert 'name="match-commitment:1"' in page and "same number and title" in page
    assert re.search(r"texts \d+ % alike", page)
    before = _counts()
    assert before[1] == 2
    # The Office says commitment 3 is new and commitment 2 continues commitment 2 (the proposal),
    # and renames the code.
    response = client.post(f"/import/{token}/apply", data={
        "csrf_token": csrf_token(client, "/import"), "title": "Small Code, second version",
        "match-commitment:2": old["2"], "match-commitment:3": "new", "match-commitment:1": "new",
    })
    assert response.status_code == 302
    db.session.expire_all()
    live = {c.number: c for c in live_clauses(code)}
    assert live["2"].uid == old["2"] and live["1"].uid != old["1"]
    assert db.session.get(Code, code.id).title == "Small Code, second version"
    withdrawn = db.session.scalar(select(Clause).where(Clause.uid == old["1"]))
    assert withdrawn.withdrawn


def test_a_bad_correction_is_refused_and_nothing_changes(app, client, make_user):
    _office(client, make_user)
    first = _upload(client, SMALL.encode(), "small.md")
    token = first.headers["Location"].rsplit("/", 1)[1]
    client.post(f"/import/{token}/apply", data={"csrf_token": csrf_token(client, "/import")})
    code = db.session.scalar(select(Code))
    old = {c.number: c.uid for c in live_clauses(code)}
    second = _upload(client, NEXT.encode(), "next.md", code=code.slug)
    token = second.headers["Location"].rsplit("/", 1)[1]
    response = client.post(f"/import/{token}/apply", data={
        "csrf_token": csrf_token(client, "/import"),
        "match-commitment:2": old["1"], "match-commitment:1": old["1"],
    }, headers={"Accept": "application/json"})
    assert response.status_code == 400 and "same clause" in response.get_json()["error"]
    db.session.expire_all()
    assert {c.number: c.uid for c in live_clauses(code)} == old


def test_only_the_office_imports_and_uploads_are_private(app, client, make_user, make_code):
    code = make_code()
    chair = make_user("chair", code)
    db.session.commit()
    login(client, chair.email)
    assert client.get("/import").status_code == 403
    assert client.get(f"/import?code={code.slug}").status_code == 403
    assert client.get("/import/not-a-token").status_code == 404


def _zip(parts: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as package:
        for name, data in parts.items():
            package.writestr(name, data)
    return buffer.getvalue()


WORD_PARTS = {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"}


def test_hostile_files_get_a_clear_message_and_nothing_is_written(app, client, make_user):
    _office(client, make_user)
    app.config["IMPORT_MAX_BYTES"] = 200_000
    bomb = _zip({**WORD_PARTS, "word/media/big.bin": b"\0" * 50_000_000})
    entities = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml":
                     b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'})
    cases = [
        (b"%PDF-1.7 not markdown", "draft.md", "not a text file"),
        (b"plain text pretending", "draft.docx", "not a Word document"),
        (bomb, "draft.docx", "zip bomb"),
        (entities, "draft.docx", "declares entities"),
        (_zip({"a.txt": b"x"}), "draft.docx", "not a Word document"),
        ("Zażółć gęślą jaźń".encode("iso-8859-2"), "draft.md", "not UTF-8"),
        (b"# Big\n\n" + b"x" * 300_000, "big.md", "the limit is"),
        (b"", "empty.md", "empty"),
    ]
    for data, name, message in cases:
        response = _upload(client, data, name)
        page = response.get_data(as_text=True)
        assert response.status_code == 400, name
        assert message in page and "Nothing was written." in page, (name, message)
    assert _counts() == (0, 0, 0)


def test_utf16_markdown_is_read(app, client, make_user):
    _office(client, make_user)
    response = _upload(client, SMALL.encode("utf-16"), "small.md")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "UTF-16" in page and "Found 1 chapters and 2 clauses." in page


def test_imports_and_structure_changes_are_in_the_audit_log_and_its_csv(app, client, make_user):
    import csv

    from codedraft.audit.models import AuditEvent

    _office(client, make_user)
    response = _upload(client, SMALL.encode(), "=small.md")
    token = response.headers["Location"].rsplit("/", 1)[1]
    client.post(f"/import/{token}/apply", data={"csrf_token": csrf_token(client, "/import")})
    code = db.session.scalar(select(Code))
    clause = next(c for c in live_clauses(code) if c.number == "2")
    client.post(f"/codes/{code.slug}/clauses/{clause.uid}/structure",
                data={"csrf_token": csrf_token(client, "/import"), "action": "withdraw"})
    client.post(f"/codes/{code.slug}/rename", data={"csrf_token": csrf_token(client, "/import"), "title": "Renamed"})
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-3:] == ["import.applied", "structure.withdraw", "structure.rename_code"]
    page = client.get("/admin/audit?action=structure.withdraw").get_data(as_text=True)
    assert "structure.withdraw" in page and "import.applied</code>" not in page
    exported = client.get(f"/admin/audit.csv?code={code.id}")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0][:2] == ["when_utc", "action"] and len(rows) == 4
    about = {row[1]: row[4] for row in rows[1:]}
    assert about["import.applied"] == "'=small.md"  # a formula-like cell is neutralised


def test_uploads_left_waiting_for_a_day_are_forgotten(app, client, make_user):
    from datetime import timedelta

    from codedraft.timeutil import utcnow

    _office(client, make_user)
    first = _upload(client, SMALL.encode(), "small.md").headers["Location"].rsplit("/", 1)[1]
    stale = db.session.scalar(select(ImportUpload).where(ImportUpload.token == first))
    stale.created_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    _upload(client, SMALL.encode(), "again.md")
    db.session.expire_all()
    assert db.session.scalars(select(ImportUpload.filename)).all() == ["again.md"]
    assert client.get(f"/import/{first}").status_code == 404
