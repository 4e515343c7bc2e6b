"""Translated names for the drafting domain's stored codes: clause kinds, comment statuses,
dispositions and stakeholder categories.

The database keeps the codes ("partly_accepted", "civil-society"); people read these names in
their own language. Babel extracts each msgid below (``N_`` marks without translating), so a
new language is a catalogue and nothing else. A stakeholder category the Office configured
beyond the defaults is shown as configured when the catalogue has no entry for it.
"""
from __future__ import annotations

from flask import Flask, current_app
from flask_babel import gettext


def N_(message: str) -> str:  # noqa: N802  (the name Babel's extractor looks for)
    return message


CLAUSE_KINDS: dict[str, str] = {
    "commitment": N_("Commitment"), "measure": N_("Measure"), "article": N_("Article"),
    "annex": N_("Annex"), "recital": N_("Recital"), "section": N_("Section"), "glossary": N_("Glossary entry"),
}

COMMENT_STATUSES: dict[str, str] = {
    "open": N_("open"), "addressed": N_("addressed"), "accepted": N_("accepted"),
    "partly_accepted": N_("partly accepted"), "rejected": N_("rejected"), "withdrawn": N_("withdrawn"),
}

DISPOSITIONS: dict[str, str] = {
    "accepted": N_("Accepted"), "partly_accepted": N_("Partly accepted"), "rejected": N_("Rejected"),
    "addressed_elsewhere": N_("Addressed elsewhere"), "out_of_scope": N_("Out of scope"),
}

# Where a stored edit of the live text came from (ClauseUpdate.origin), shown in its history.
EDIT_ORIGINS: dict[str, str] = {
    "editor": N_("typed"), "import": N_("imported"), "restore": N_("restored"), "amendment": N_("accepted amendment"),
    "suggestion": N_("accepted suggestion"), "suggestion-rejected": N_("rejected suggestion"),
    "suggested": N_("suggested"),
}

# The default categories' English names (config.DEFAULT_STAKEHOLDER_CATEGORIES), for extraction.
_DEFAULT_CATEGORY_NAMES = (
    N_("GPAI provider / developer"), N_("Academia"), N_("Open-source"), N_("Civil society"),
    N_("Rightsholder"), N_("Industry"), N_("Public body"), N_("Individual expert"),
)


def _translated(table: dict[str, str], code: str | None) -> str:
    if not code:
        return ""
    name = table.get(code)
    return gettext(name) if name else code.replace("_", " ")


def clause_kind_label(kind: str | None) -> str:
    return _translated(CLAUSE_KINDS, kind)


def comment_status_label(status: str | None) -> str:
    return _translated(COMMENT_STATUSES, status)


def disposition_label(disposition: str | None) -> str:
    return _translated(DISPOSITIONS, disposition)


def edit_origin_label(origin: str | None) -> str:
    return _translated(EDIT_ORIGINS, origin)


def stakeholder_category_label(category: str | None) -> str:
    configured = dict(current_app.config["STAKEHOLDER_CATEGORIES"])
    return _translated(configured, category)


def install(app: Flask) -> None:
    """Make the label functions available to every template."""
    app.jinja_env.globals.update(
        stakeholder_categories=stakeholder_categories, clause_kind_label=clause_kind_label,
        comment_status_label=comment_status_label, disposition_label=disposition_label,
        stakeholder_category_label=stakeholder_category_label, edit_origin_label=edit_origin_label,
    )


def stakeholder_categories() -> dict[str, str]:
    """Every configured stakeholder category with its name in the reader's language."""
    return {code: stakeholder_category_label(code) for code, _name in current_app.config["STAKEHOLDER_CATEGORIES"]}


def comment_statuses() -> dict[str, str]:
    return {code: gettext(name) for code, name in COMMENT_STATUSES.items()}
