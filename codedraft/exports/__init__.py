"""Pure comparison and export core of CodeDraft.

Everything here works on plain dataclasses (see :mod:`codedraft.exports.model`) and never imports
Flask, SQLAlchemy or Socket.IO. Markdown is rendered by a renderer passed in by the caller (the
app's one safe renderer, ``codedraft.markdown.render_markdown``), so these modules never decide
what HTML is safe. Modules: ``compare`` (clause-by-clause word diff), ``redline`` (inline and
side-by-side HTML), ``markdown_export``, ``html_export``, ``docx_export``, ``pdf_export``,
``feedback_export`` and ``filenames``.

App side (imports Flask/SQLAlchemy, so loaded only by the app): ``builders`` (documents from
the database), ``jobs`` (ExportJob and the background pool), ``views``, ``cli``, ``openapi``,
and ``docx_import`` (Word to Markdown for the importer; pure).
"""
from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    """Wire exports into the app (called by the lead from ``codedraft.web``): the export folder
    defaults and the background runner (its worker threads are joined at interpreter exit by
    ``concurrent.futures`` itself)."""
    from codedraft.exports.jobs import runner_for

    app.config.setdefault("EXPORT_DIR", str(app.instance_path) + "/exports")
    app.config.setdefault("EXPORTS_PER_MINUTE", 10)
    app.config.setdefault("EXPORT_WORKERS", 2)
    # "auto": LibreOffice for redline PDFs when soffice is installed, else WeasyPrint.
    app.config.setdefault("EXPORT_REDLINE_PDF_ENGINE", "auto")
    runner_for(app)
