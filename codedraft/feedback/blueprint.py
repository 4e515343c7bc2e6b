"""The feedback blueprint, shared by its two view modules (threads and the round's triage), so
that neither has to import the other."""
from __future__ import annotations

from flask import Blueprint

from codedraft.numbers import stored_integer

bp = Blueprint("feedback", __name__)


def int_or_none(raw: str | None) -> int | None:
    """A non-negative id or page number from a query or form, or None ("²", "-1", 2**40 included)."""
    return stored_integer(raw)
