"""The feedback dataset: CSV, XLSX and JSON (one row per comment) and an HTML/PDF report.

Spreadsheets evaluate a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (CWE-1236, SECURITY-CASES 24). Every text cell is neutralised: in CSV such a
value gets a leading apostrophe; in XLSX it is stored as an explicit string with Excel's
"quote prefix" flag, so the spreadsheet shows the text as typed and never evaluates it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from .htmlkit import standalone_page
from .model import FeedbackRow

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

#: Column order of the CSV and XLSX exports; JSON uses the same keys.
COLUMNS: tuple[str, ...] = (
    "comment_id",
    "clause_number",
    "clause_title",
    "chapter",
    "category",
    "organisation",
    "author",
    "status",
    "disposition",
    "disposition_reason",
    "created",
    "text",
    "quote",
    "kind",
    "replacement",
    "supports",
    "round",
    "group",
    "theme",
)

# Characters that make a spreadsheet read a cell as a formula, plus their full-width forms,
# which some spreadsheet applications normalise.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_XLSX_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def is_formula_like(value: str) -> bool:
    """True if a spreadsheet could evaluate ``value``: it starts (possibly after spaces or line
    breaks) with a formula trigger."""
    return value.lstrip(" \n").startswith(_FORMULA_TRIGGERS) or value.startswith(_FORMULA_TRIGGERS)


def neutralise_cell(value: str) -> str:
    """``value`` made inert for CSV: a formula-like value gets a leading apostrophe."""
    return "'" + value if is_formula_like(value) else value


def _row_values(row: FeedbackRow) -> list[object]:
    return [
        row.comment_id,
        row.clause_number,
        row.clause_title,
        row.chapter,
        row.category,
        row.organisation,
        row.author,
        row.status,
        row.disposition,
        row.disposition_reason,
        row.created,
        row.text,
        row.quote,
        row.kind,
        row.replacement,
        row.supports,
        row.round,
        row.group,
        row.theme,
    ]


def _csv_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return neutralise_cell(str(value))


def export_feedback_csv(rows: Iterable[FeedbackRow]) -> str:
    """The comments as CSV text (header row first, RFC 4180 quoting, ``\\r\\n`` line ends).

    Encode it as UTF-8 with a BOM (``utf-8-sig``) when serving it, so Excel reads the accents.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_value(value) for value in _row_values(row)])
    return buffer.getvalue()


def feedback_record(row: FeedbackRow) -> dict[str, object]:
    """One comment as a JSON-ready dict (``created`` in ISO 8601)."""
    return {
        column: (value.isoformat() if isinstance(value, datetime) else value)
        for column, value in zip(COLUMNS, _row_values(row), strict=True)
    }


def export_feedback_json(rows: Iterable[FeedbackRow]) -> str:
    """The comments as a JSON document ``{"count": n, "comments": [...]}``; text is kept
    verbatim (JSON is data, not a spreadsheet)."""
    records = [feedback_record(row) for row in rows]
    return json.dumps({"count": len(records), "comments": records}, ensure_ascii=False, indent=2)


def _write_cell(sheet: Worksheet, row: int, column: int, value: object) -> None:
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, (int, float, datetime)) and not isinstance(value, bool):
        cell.value = value
        return
    text = _XLSX_ILLEGAL.sub("", str(value))
    cell.value = text
    # openpyxl turns any string starting with "=" into a formula; force a plain string, and
    # set the quote prefix so Excel keeps it a string even after the cell is edited.
    cell.data_type = "s"
    if is_formula_like(text):
        cell.quotePrefix = True


def category_counts(
    rows: Iterable[FeedbackRow], categories: Sequence[str] | None = None
) -> tuple[list[str], list[tuple[str, Counter[str]]]]:
    """Comments per clause by stakeholder category.

    Returns the category order (``categories`` if given, with any other category found appended;
    else order of first appearance) and ``(clause label, counts)`` in order of first appearance.
    """
    order = list(categories or [])
    per_clause: dict[str, Counter[str]] = {}
    for row in rows:
        if row.category not in order:
            order.append(row.category)
        label = " ".join(part for part in (row.clause_number, row.clause_title) if part) or "(no clause)"
        per_clause.setdefault(label, Counter())[row.category] += 1
    return order, list(per_clause.items())


def export_feedback_xlsx(rows: Sequence[FeedbackRow], *, categories: Sequence[str] | None = None,
                         words: Mapping[str, str] | None = None) -> bytes:
    """The comments as an .xlsx workbook: a sheet of comments (one row per comment) and a sheet
    of counts per clause by stakeholder category, with a stacked bar chart. Sheet names and the
    chart's title are in the language of ``words``; the column names stay the dataset's keys (the
    same in CSV and JSON), so scripts read every language's workbook alike."""
    # openpyxl brings numpy with it: loaded for a workbook, not by every server process.
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference

    workbook = Workbook()
    comments = workbook.active
    assert comments is not None
    comments.title = _sheet_name(_said(words, "comments_sheet"))
    for column, name in enumerate(COLUMNS, start=1):
        comments.cell(row=1, column=column, value=name)
    for row_index, row in enumerate(rows, start=2):
        for column, value in enumerate(_row_values(row), start=1):
            _write_cell(comments, row_index, column, value)
    comments.freeze_panes = "A2"

    order, per_clause = category_counts(rows, categories)
    summary = workbook.create_sheet(_sheet_name(_said(words, "per_clause")))
    _write_cell(summary, 1, 1, "clause")
    for column, category in enumerate(order, start=2):
        _write_cell(summary, 1, column, category)
    for row_index, (label, counts) in enumerate(per_clause, start=2):
        _write_cell(summary, row_index, 1, label)
        for column, category in enumerate(order, start=2):
            summary.cell(row=row_index, column=column, value=counts.get(category, 0))
    if per_clause and order:
        chart = BarChart()
        chart.type = "bar"
        chart.grouping = "stacked"
        chart.overlap = 100
        chart.title = _said(words, "counts_caption")
        data = Reference(summary, min_col=2, max_col=1 + len(order), min_row=1, max_row=1 + len(per_clause))
        labels = Reference(summary, min_col=1, min_row=2, max_row=1 + len(per_clause))
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(labels)
        summary.add_chart(chart, f"{chr(ord('A') + min(len(order) + 2, 25))}2")

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _sheet_name(name: str) -> str:
    """``name`` as a spreadsheet allows a sheet name: at most 31 characters, none of ``[]:*?/\\``."""
    return re.sub(r"[\[\]:*?/\\]", " ", name)[:31].strip() or "Sheet"


# Colour-blind-safe palette (Okabe-Ito); the legend and the data table carry the same data.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def render_category_chart(order: Sequence[str], per_clause: Sequence[tuple[str, Counter[str]]]) -> str:
    """An inline SVG stacked horizontal bar chart: one bar per clause, one colour per category.

    Self-contained (no script, no external reference); labelled with ``role="img"`` and a
    title, and each segment has a ``<title>`` with its count.
    """
    label_width, bar_width, bar_height, gap = 260, 420, 16, 6
    largest = max((sum(counts.values()) for _, counts in per_clause), default=0) or 1
    height = len(per_clause) * (bar_height + gap) + gap
    width = label_width + bar_width + 50
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-labelledby="chart-title" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        '<title id="chart-title">Comments per clause by stakeholder category</title>',
    ]
    for index, (label, counts) in enumerate(per_clause):
        y = gap + index * (bar_height + gap)
        short = label if len(label) <= 40 else label[:39] + "…"
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bar_height - 4}" text-anchor="end" '
            f'font-size="11" font-family="DejaVu Sans, Arial, sans-serif">{escape(short)}</text>'
        )
        x = float(label_width)
        for colour_index, category in enumerate(order):
            value = counts.get(category, 0)
            if not value:
                continue
            span = bar_width * value / largest
            colour = _PALETTE[colour_index % len(_PALETTE)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{span:.1f}" height="{bar_height}" fill="{colour}">'
                f"<title>{escape(category)}: {value}</title></rect>"
            )
            x += span
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + bar_height - 4}" font-size="11" '
            f'font-family="DejaVu Sans, Arial, sans-serif">{sum(counts.values())}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


#: The report's own words in English; the app passes them said in the code's language.
FEEDBACK_WORDS: Mapping[str, str] = {
    "feedback_on": "Feedback on %(draft)s",
    "title": "%(code)s: feedback on %(draft)s",
    "comments": "Comments: %(num)s.",
    "comments_sheet": "Comments",
    "per_clause": "Comments per clause",
    "legend": "Legend",
    "counts_caption": "Comments per clause by stakeholder category",
    "clause": "Clause",
    "total": "Total",
    "annex": "Annex: disposition of comments",
    "annex_caption": "Disposition of comments",
    "comment": "Comment",
    "organisation": "Organisation",
    "text": "Text",
    "status": "Status",
    "disposition": "Disposition",
    "reason": "Reason",
    "no_dispositions": "No dispositions recorded yet.",
}


def _said(words: Mapping[str, str] | None, key: str, **params: Any) -> str:
    """A word of the report with its parameters (English when not given), not yet escaped."""
    text = (words or {}).get(key) or FEEDBACK_WORDS[key]
    try:
        return text % params if params else text
    except (KeyError, ValueError, TypeError):
        return FEEDBACK_WORDS[key] % params if params else FEEDBACK_WORDS[key]


def _w(words: Mapping[str, str] | None, key: str, **params: Any) -> str:
    """A word of the report, escaped for HTML."""
    return escape(_said(words, key, **params))


def _legend(order: Sequence[str], words: Mapping[str, str] | None = None) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{_PALETTE[index % len(_PALETTE)]}"></span>{escape(category)}</li>'
        for index, category in enumerate(order)
    )
    return f'<ul class="chart-legend" aria-label="{_w(words, "legend")}">{items}</ul>'


def _counts_table(order: Sequence[str], per_clause: Sequence[tuple[str, Counter[str]]],
                  words: Mapping[str, str] | None = None) -> str:
    head = "".join(f'<th scope="col" class="numeric">{escape(category)}</th>' for category in order)
    rows = []
    for label, counts in per_clause:
        cells = "".join(f'<td class="numeric">{counts.get(category, 0)}</td>' for category in order)
        rows.append(
            f'<tr><th scope="row">{escape(label)}</th>{cells}<td class="numeric">{sum(counts.values())}</td></tr>'
        )
    return (
        f'<table class="counts"><caption>{_w(words, "counts_caption")}</caption>'
        f'<thead><tr><th scope="col">{_w(words, "clause")}</th>{head}'
        f'<th scope="col" class="numeric">{_w(words, "total")}</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _annex_table(rows: Sequence[FeedbackRow], words: Mapping[str, str] | None = None) -> str:
    decided = [row for row in rows if row.disposition.strip() or row.disposition_reason.strip()]
    lines = "".join(
        "<tr>"
        f"<td>{escape(str(row.comment_id))}</td>"
        f"<td>{escape(' '.join(p for p in (row.clause_number, row.clause_title) if p))}</td>"
        f"<td>{escape(row.organisation)}<br><small>{escape(row.category)}</small></td>"
        f"<td>{escape(row.text)}</td>"
        f"<td>{escape(row.status)}</td><td>{escape(row.disposition)}</td>"
        f"<td>{escape(row.disposition_reason)}</td>"
        "</tr>"
        for row in decided
    )
    return (
        f'<table class="annex"><caption>{_w(words, "annex_caption")}</caption><thead><tr>'
        + "".join(f'<th scope="col">{_w(words, key)}</th>'
                  for key in ("comment", "clause", "organisation", "text", "status", "disposition", "reason"))
        + f"</tr></thead><tbody>{lines}</tbody></table>"
        if decided
        else f"<p>{_w(words, 'no_dispositions')}</p>"
    )


def export_feedback_report_html(
    rows: Sequence[FeedbackRow],
    *,
    code_title: str,
    draft_label: str,
    language: str = "en",
    categories: Sequence[str] | None = None,
    words: Mapping[str, str] | None = None,
) -> str:
    """A standalone HTML report: per-clause counts by stakeholder category (SVG chart, legend and
    the same numbers as a table) and the disposition annex. ``words``: FEEDBACK_WORDS in the
    report's language (English when not given)."""
    order, per_clause = category_counts(rows, categories)
    totals = Counter(row.category for row in rows)
    overview = ", ".join(f"{escape(category)}: {totals.get(category, 0)}" for category in order)
    body = (
        f'<header class="doc-header"><h1>{escape(code_title)}</h1>'
        f'<p class="draft-label">{_w(words, "feedback_on", draft=draft_label)}</p>'
        f"<p>{_w(words, 'comments', num=len(rows))} {overview}</p></header>\n<main>"
        f"<h2>{_w(words, 'per_clause')}</h2>"
        f"<figure>{render_category_chart(order, per_clause)}{_legend(order, words)}</figure>"
        f"{_counts_table(order, per_clause, words)}"
        f"<h2>{_w(words, 'annex')}</h2>"
        f"{_annex_table(rows, words)}</main>"
    )
    return standalone_page(title=_said(words, "title", code=code_title, draft=draft_label), language=language,
                           body=body,
                           body_class="feedback-report")
