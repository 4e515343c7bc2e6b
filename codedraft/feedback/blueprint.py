"""The feedback blueprint, shared by its two view modules (threads and the round's triage), so
that neither has to import the other."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("feedback", __name__)
