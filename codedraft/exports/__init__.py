"""Pure comparison and export core of CodeDraft.

Everything here works on plain dataclasses (see :mod:`codedraft.exports.model`) and never imports
Flask, SQLAlchemy or Socket.IO. Markdown is rendered by a renderer passed in by the caller (the
app's one safe renderer, ``codedraft.markdown.render_markdown``), so these modules never decide
what HTML is safe. Modules: ``compare`` (clause-by-clause word diff), ``redline`` (inline and
side-by-side HTML), ``markdown_export``, ``html_export``, ``docx_export``, ``pdf_export``,
``feedback_export`` and ``filenames``.
"""
