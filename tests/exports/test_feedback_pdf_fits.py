"""The feedback report's tables fit the page: seven long stakeholder categories and long
comments and reasons, laid out by WeasyPrint as the PDF export does, leave no box past the page's
right edge (before, the counts table ran off the page from the sixth category on)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from weasyprint import HTML

from codedraft.exports.feedback_export import FeedbackRow, export_feedback_report_html

CATEGORIES = ["GPAI provider / developer", "Academia and research", "Open-source community",
              "Civil society organisation", "Rightsholder", "Industry association", "Public body"]


def _rows() -> list[FeedbackRow]:
    return [
        FeedbackRow(comment_id=1000 + n, clause_number=f"Measure {n}.{n}", chapter="Safety",
                    clause_title="Safety and security framework for models with systemic risk",
                    category=CATEGORIES[n % 7], author="A", status="partly accepted", disposition="Partly accepted",
                    organisation="The Very Long Organisation Name of European Rightsholders Association",
                    disposition_reason="We accept the principle but the deadline stays. " + "x" * 60,
                    created=datetime(2025, 3, 20), text="A long comment that goes on and on. " * 12)
        for n in range(9)
    ]


def _boxes(box: Any) -> Any:
    yield box
    for child in getattr(box, "children", []) or []:
        yield from _boxes(child)


def test_both_tables_fit_the_page_width() -> None:
    html = export_feedback_report_html(_rows(), code_title="Code", draft_label="Third Draft", categories=CATEGORIES)
    document = HTML(string=html).render()
    overflowing = []
    for number, page in enumerate(document.pages, start=1):
        # The laid-out boxes of the page (WeasyPrint keeps them on the page as _page_box).
        for box in _boxes(page._page_box):
            right = getattr(box, "position_x", 0) + (box.margin_width() if hasattr(box, "margin_width") else 0)
            if right > page.width + 0.5:
                overflowing.append((number, type(box).__name__, round(right), round(page.width)))
    assert overflowing == [], overflowing[:5]
    assert len(document.pages) <= 8  # long comments flow over pages instead of one row a page
