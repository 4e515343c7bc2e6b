"""Reading a serving process's analysis data before its first search needs it.

A code in Polish (or another language lemmatised with simplemma) is searched through a
dictionary that takes seconds to read (``analysis.prepare_language``). Read lazily, that
was the first search's wait in every new process: 5-8 s on a loaded machine. The serving
process (``codedraft serve``, each gunicorn worker) therefore reads, on a background thread
once it has started, the data of the languages its codes are written in, and nothing else:
a process whose codes are all English reads no dictionary at all (the co-editing worker's
memory is budgeted), and neither importing the package nor ``create_app`` reads any (tests
and commands start fast). ``SEARCH_PREPARE_ON_START`` (``CODEDRAFT_SEARCH_PREPARE``) turns it off.
"""
from __future__ import annotations

import logging
import time

from flask import Flask
from sqlalchemy import select

from codedraft.codes.models import Code
from codedraft.concurrency import start_in_background
from codedraft.extensions import db
from codedraft.search import analysis

log = logging.getLogger(__name__)


def code_languages() -> list[str]:
    """The languages the codes of the database are written in (ISO 639-1, each once)."""
    languages = db.session.scalars(select(Code.language).distinct())
    return sorted({analysis.normal_language(language or analysis.DEFAULT_LANGUAGE) for language in languages})


def prepare_languages(languages: list[str]) -> list[str]:
    """Read the analysis data of each of ``languages``; returns those that had a dictionary
    to read. A language whose data cannot be read is logged and skipped: its first search
    will try again (and fall back to folding, as ``analysis.index_term`` does)."""
    read = []
    for language in languages:
        try:
            if analysis.prepare_language(language):
                read.append(language)
        except Exception:  # a broken dictionary must not stop the process from serving
            log.exception("could not read the search analysis data for %r", language)
    return read


def prepare_search(app: Flask) -> list[str]:
    """In ``app``'s context: read the analysis data of its codes' languages; returns the
    languages whose dictionaries were read. Never raises (it runs on a background thread)."""
    started = time.perf_counter()
    try:
        with app.app_context():
            languages = code_languages()
            db.session.remove()  # the thread's session is not needed again
    except Exception:  # no database yet (before `db upgrade`): the first search reads lazily
        log.exception("could not list the codes' languages to prepare search")
        return []
    read = prepare_languages(languages)
    log.info("search analysis ready for %s in %.1f s", ", ".join(languages) or "no code", time.perf_counter() - started)
    return read


def prepare_search_in_background(app: Flask) -> bool:
    """Start ``prepare_search(app)`` on a background thread, unless ``SEARCH_PREPARE_ON_START``
    is off; returns whether it was started. Called by the serving process once it starts."""
    if not app.config.get("SEARCH_PREPARE_ON_START", True):
        return False
    start_in_background(prepare_search, app, name="search-prepare")
    return True
