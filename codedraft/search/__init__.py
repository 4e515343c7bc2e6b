"""Search for CodeDraft: one interface (``engine.SearchEngine``) over plain documents.

``engine`` holds the interface, the shared types and query validation; ``whoosh_backend``
is the embedded default (``WhooshSearchEngine(path, language="en")``); ``analysis`` holds
the folding and stemming analyzers. Those three import neither Flask nor SQLAlchemy.
``postgres_backend`` (``PostgresSearchEngine(url, language="en")``) keeps the index in
PostgreSQL for processes on several machines; it uses SQLAlchemy Core, not Flask.
The app side: ``indexing`` (documents from the database, the per-process engine, rebuild
and check, visibility tokens), ``sync`` (index after commits, the live-text indexer),
``views`` (/search, /codes/<slug>/search, /api/v1/search) and ``cli``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def install(app: Flask) -> None:
    """Keep ``app``'s search index in sync with its database after every commit.

    Performs no I/O: the index is opened on first use, the live-text indexer's thread starts
    on the first co-editing write. Idempotent.
    """
    from codedraft.search.sync import install_sync

    install_sync(app)
