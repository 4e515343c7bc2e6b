"""Comparing drafts, and exports of drafts, redlines and feedback, with progress."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("exports", __name__)
