"""How a clause is labelled: pure, shared by the live text, drafts and exports."""
from __future__ import annotations

KIND_LABELS = {
    "commitment": "Commitment",
    "measure": "Measure",
    "article": "Article",
    "annex": "Annex",
    "recital": "Recital",
}


def clause_heading(kind: str, number: str, title: str) -> str:
    """``Measure II.1.2. Title`` for numbered kinds, the bare title otherwise."""
    label = " ".join(part for part in (KIND_LABELS.get(kind, ""), number) if part)
    if label and title:
        return f"{label}. {title}"
    return label or title or "(untitled)"
