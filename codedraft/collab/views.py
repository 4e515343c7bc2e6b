"""Pages of co-editing: the clause editor panel, history, replay, checkpoints, restore."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("collab", __name__)
