"""Bringing in submissions made outside CodeDraft: a survey tool's CSV or XLSX, one comment a
row (organisation, stakeholder category, clause reference or free text, comment).

All or nothing: a file that cannot be read (wrong encoding, not a spreadsheet, missing columns,
too large) imports nothing and says why; in a readable file, each row that cannot be imported
is named with its reason, rows whose clause is not found are held for the Office to resolve by
hand, and the rest are imported in the same transaction (operations flush; the view commits).
Imported comments carry ``source="import"`` and the organisation and category of the row.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import insert, select

from codedraft import policy
from codedraft.accounts.models import User
from codedraft.codes.models import Clause, Code
from codedraft.drafts.operations import latest_draft
from codedraft.extensions import db
from codedraft.feedback.models import SOURCE_IMPORT, Comment, FeedbackRound
from codedraft.feedback.operations import MAX_BODY_CHARS, FeedbackError, NotAllowed
from codedraft.markdown import render_markdown
from codedraft.notifications.operations import record_activity_counts
from codedraft.timeutil import utcnow

#: Larger files are refused before they are read (a survey of 50,000 rows is ~30 MB of CSV).
MAX_FILE_BYTES = 40 * 1024 * 1024
#: An XLSX is a zip: its unpacked size is checked too, so a small zip bomb is refused.
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_ROWS = 50_000
#: Unmatched rows the Office resolves by hand on one page; beyond this, fixing the file is faster.
MAX_UNMATCHED = 500
IMPORTER_EMAIL = "imported-submissions@codedraft.invalid"

#: Header names (lower case) survey tools use for each column.
COLUMNS: dict[str, tuple[str, ...]] = {
    "organisation": ("organisation", "organization", "org", "organisation name", "organization name"),
    "category": ("category", "stakeholder category", "stakeholder type", "stakeholder group"),
    "clause": ("clause", "clause reference", "reference", "section", "measure", "commitment"),
    "comment": ("comment", "comments", "feedback", "text", "response", "submission"),
}
# What a spreadsheet would run: "=...", "@...", and "+"/"-" before a function call or a DDE
# link ("+SUM(", "-cmd|"). A leading "- " of a Markdown list or "+1" stays text.
_FORMULA = re.compile(r"^\s*(?:=|@|[+-]\s*[\w.]*\s*[(|!])")
_NUMBER = re.compile(r"\b([IVX]+\.\d+(?:\.\d+)*|\d+(?:\.\d+)+|\d+)\b")


class ImportRefused(FeedbackError):
    """The whole file cannot be imported; the message says why."""


@dataclass
class PendingRow:
    """A row whose clause was not found: shown to the Office with a clause to choose."""

    row: int
    organisation: str
    category: str
    reference: str
    text: str


@dataclass
class ImportReport:
    imported: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    unmatched: list[PendingRow] = field(default_factory=list)
    by_clause: dict[int, int] = field(default_factory=dict)
    opened_notifications: list[int] = field(default_factory=list)  # to mail after the commit


# --- reading the file ------------------------------------------------------------------------


def read_rows(filename: str, data: bytes) -> list[list[str]]:
    """The file's rows as text, header first. Raises ImportRefused for a file that is too large,
    not UTF-8 CSV, not a readable XLSX, or empty."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportRefused(f"The file is {len(data) // (1024 * 1024)} MB; at most "
                            f"{MAX_FILE_BYTES // (1024 * 1024)} MB can be imported at once. Split it.")
    if not data.strip():
        raise ImportRefused("The file is empty.")
    if filename.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        return _xlsx_rows(data)
    return _csv_rows(data)


def _csv_rows(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRefused(f"The file is not UTF-8 text (byte {error.start + 1} cannot be read). Save it as "
                            "“CSV UTF-8” and import it again.") from None
    if "\x00" in text:
        raise ImportRefused("The file holds binary data: import a CSV or XLSX file.")
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text, newline=""), dialect)]
    except csv.Error as error:
        raise ImportRefused(f"The CSV file cannot be read: {error}.") from None
    return rows


def _xlsx_rows(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
                raise ImportRefused("The spreadsheet unpacks to more than 200 MB; it cannot be imported.")
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except ImportRefused:
        raise
    except Exception:  # openpyxl raises many kinds for a damaged or foreign file
        raise ImportRefused("The file is not a readable XLSX spreadsheet.") from None
    try:
        sheet = workbook.worksheets[0]
        rows = []
        for cells in sheet.iter_rows():
            row = []
            for cell in cells:
                value = cell.value
                if getattr(cell, "data_type", None) == "f":
                    value = "=" + str(value).lstrip("=")  # marked: the row check refuses formulas
                row.append("" if value is None else str(value).strip())
            rows.append(row)
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    finally:
        workbook.close()


def column_positions(header: list[str]) -> dict[str, int]:
    """Where each needed column is. Raises ImportRefused naming the missing ones."""
    names = [" ".join(h.lower().replace("_", " ").split()) for h in header]
    found: dict[str, int] = {}
    for column, aliases in COLUMNS.items():
        for index, name in enumerate(names):
            if name in aliases:
                found[column] = index
                break
    missing = [column for column in COLUMNS if column not in found]
    if missing:
        raise ImportRefused(f"Columns missing: {', '.join(missing)}. The first row must name the columns "
                            "organisation, category, clause and comment.")
    return found


# --- matching --------------------------------------------------------------------------------


class ClauseMatcher:
    """A row's clause reference to a clause: by number ("1.2", "Measure II.1.2"), by exact title,
    else by a title at least 90% similar. Withdrawn clauses are not matched."""

    def __init__(self, clauses: list[Clause]) -> None:
        self.by_number = {c.number.strip().lower(): c for c in clauses if c.number.strip()}
        self.by_title = {" ".join(c.title.lower().split()): c for c in clauses if c.title.strip()}
        self.titles = list(self.by_title)
        self.by_heading = {" ".join(c.heading.lower().split()): c for c in clauses}

    def match(self, reference: str) -> Clause | None:
        ref = " ".join(reference.lower().split())
        if not ref:
            return None
        found = self.by_number.get(ref) or self.by_title.get(ref) or self.by_heading.get(ref)
        if found is not None:
            return found
        for number in _NUMBER.findall(reference):
            if number.lower() in self.by_number:
                return self.by_number[number.lower()]
        if self.titles:
            # Imported here, by the only code that matches titles loosely: a survey import.
            from rapidfuzz import fuzz, process

            best = process.extractOne(ref, self.titles, scorer=fuzz.ratio, score_cutoff=90)
            if best is not None:
                return self.by_title[best[0]]
        return None


def category_of(raw: str) -> str | None:
    """The configured category a row names, by key or label, in any case."""
    wanted = " ".join(raw.lower().replace("_", " ").split())
    for key, label in current_app.config["STAKEHOLDER_CATEGORIES"]:
        if wanted in (key.lower(), key.lower().replace("-", " "), label.lower()):
            return str(key)
    return None


# --- importing -------------------------------------------------------------------------------


def importer_account() -> User:
    """The account imported comments are filed under (the people are not CodeDraft users)."""
    user = db.session.scalar(select(User).where(User.email == IMPORTER_EMAIL))
    if user is None:
        user = User(email=IMPORTER_EMAIL, name="Imported submissions", is_active_account=False)
        db.session.add(user)
        db.session.flush()
    return user


def import_file(code: Code, feedback_round: FeedbackRound, by: User, filename: str, data: bytes) -> ImportReport:
    """Import a survey file into ``feedback_round``. Raises NotAllowed unless ``by`` is the Office
    of the code, ImportRefused when the file as a whole cannot be imported."""
    if not policy.can_administer_code(by, code):
        raise NotAllowed("Only the Office imports submissions.")
    if feedback_round.code_id != code.id:
        raise FeedbackError("That round belongs to another code.")
    rows = read_rows(filename, data)
    if not rows:
        raise ImportRefused("The file is empty.")
    if len(rows) - 1 > MAX_ROWS:
        raise ImportRefused(f"The file has more than {MAX_ROWS} rows; split it.")
    positions = column_positions(rows[0])
    clauses = list(db.session.scalars(select(Clause).where(Clause.code_id == code.id, Clause.withdrawn.is_(False))))
    matcher = ClauseMatcher(clauses)
    report = ImportReport()
    ready: list[tuple[Clause, str, str, str]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = {column: (row[index] if index < len(row) else "") for column, index in positions.items()}
        reason = _row_problem(cells)
        if reason:
            report.skipped.append((number, reason))
            continue
        category = category_of(cells["category"])
        if category is None:
            report.skipped.append((number, f"unknown stakeholder category “{cells['category'][:60]}”"))
            continue
        clause = matcher.match(cells["clause"])
        if clause is None:
            report.unmatched.append(PendingRow(number, cells["organisation"][:200], category,
                                               cells["clause"][:300], cells["comment"]))
            continue
        ready.append((clause, cells["organisation"][:200], category, cells["comment"]))
    if len(report.unmatched) > MAX_UNMATCHED:
        raise ImportRefused(f"{len(report.unmatched)} rows name no clause of this code (for example row "
                            f"{report.unmatched[0].row}: “{report.unmatched[0].reference[:80]}”). Fix the clause "
                            "column and import again.")
    _insert(code, feedback_round, ready, report)
    return report


def _row_problem(cells: dict[str, str]) -> str:
    for column, value in cells.items():
        if _FORMULA.match(value):
            return f"the {column} cell holds a formula"
    if not cells["comment"].strip():
        return "no comment text"
    if len(cells["comment"]) > MAX_BODY_CHARS:
        return f"the comment is longer than {MAX_BODY_CHARS} characters"
    return ""


def import_resolved(code: Code, feedback_round: FeedbackRound, by: User,
                    rows: list[tuple[int, str, str, str]]) -> ImportReport:
    """Import held rows once the Office chose their clauses: (clause id, organisation, category,
    text) each. Rows with no clause chosen are skipped; a clause of another code is refused."""
    if not policy.can_administer_code(by, code):
        raise NotAllowed("Only the Office imports submissions.")
    clauses = {c.id: c for c in db.session.scalars(select(Clause).where(Clause.code_id == code.id,
                                                                        Clause.withdrawn.is_(False)))}
    report = ImportReport()
    ready = []
    for index, (clause_id, organisation, category, text) in enumerate(rows, start=1):
        clause = clauses.get(clause_id)
        checked = category_of(category)
        problem = _row_problem({"organisation": organisation, "category": category, "clause": "", "comment": text})
        if clause is None or checked is None or problem:
            report.skipped.append((index, problem or "no clause chosen"))
            continue
        ready.append((clause, organisation[:200], checked, text))
    _insert(code, feedback_round, ready, report)
    return report


def _insert(code: Code, feedback_round: FeedbackRound, ready: list[tuple[Clause, str, str, str]],
            report: ImportReport) -> None:
    if not ready:
        return
    importer = importer_account()
    draft = latest_draft(code)
    now = utcnow()
    rows = [{"code_id": code.id, "clause_id": clause.id, "round_id": feedback_round.id,
             "draft_id": draft.id if draft else None, "author_id": importer.id, "organisation": organisation,
             "category": category, "kind": "comment", "body": text, "body_html": render_markdown(text),
             "status": "open", "created_at": now, "support_count": 0, "reply_count": 0, "hidden": False,
             "disposition_reason": "", "hidden_reason": "", "source": SOURCE_IMPORT}
            for clause, organisation, category, text in ready]
    db.session.execute(insert(Comment), rows)
    counts = Counter(clause.id for clause, *_rest in ready)
    clauses = {clause.id: clause for clause, *_rest in ready}
    for clause_id, number in counts.items():
        opened = record_activity_counts(clauses[clause_id], importer.id, comments=number)
        db.session.flush()
        report.opened_notifications += [note.id for note in opened]
    report.imported += len(rows)
    report.by_clause = dict(counts)
    db.session.flush()
