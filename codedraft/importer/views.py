"""The Office imports a file in the browser: upload, preview, correct, apply."""
from __future__ import annotations

from flask import Blueprint

from codedraft.importer import models  # noqa: F401  (the upload table)

bp = Blueprint("importer", __name__)
