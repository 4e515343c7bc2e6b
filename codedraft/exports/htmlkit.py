"""Small HTML helpers shared by the standalone HTML, redline and feedback-report exports."""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from pathlib import Path

# static/css/print.css at the project root: the one stylesheet of every standalone export.
PRINT_CSS_PATH = Path(__file__).resolve().parents[2] / "static" / "css" / "print.css"

# A standalone export must not fetch anything when opened: styles are inline, images may only be
# data the export itself embeds, and no script runs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"
)

_ID_SAFE = re.compile(r"[A-Za-z0-9-]")
_HEADING_TAG = re.compile(r"<(/?)h([1-6])(?=[\s>])", re.IGNORECASE)


@lru_cache(maxsize=4096)  # a redline names each clause's anchor several times (index, links)
def anchor_id(prefix: str, key: str) -> str:
    """A DOM id for a clause or chapter key, e.g. ``clause-II-1``.

    The prefix keeps user text from clobbering DOM names (``__proto__``, ``csrf_token``); every
    character outside ``[A-Za-z0-9-]`` (``_`` included) is written as ``_<hex>_`` so distinct
    keys always give distinct ids.
    """
    encoded = "".join(char if _ID_SAFE.fullmatch(char) else f"_{ord(char):x}_" for char in key)
    return f"{prefix}-{encoded}"


def demote_headings(html: str, levels: int) -> str:
    """Shift every ``<h1>``..``<h6>`` in safe rendered HTML down by ``levels`` (capped at h6),
    so headings inside a clause body sit below the clause heading in the outline.

    Only valid on sanitised renderer output, where a literal ``<h1`` in user text is escaped.
    """
    if levels <= 0:
        return html

    def shift(match: re.Match[str]) -> str:
        return f"<{match.group(1)}h{min(6, int(match.group(2)) + levels)}"

    return _HEADING_TAG.sub(shift, html)


@lru_cache(maxsize=1)
def print_stylesheet() -> str:
    """The export stylesheet (static/css/print.css); raises FileNotFoundError if missing."""
    return PRINT_CSS_PATH.read_text(encoding="utf-8")


def standalone_page(*, title: str, language: str, body: str, body_class: str = "") -> str:
    """Wrap an HTML fragment in a complete page with the export stylesheet inlined.

    ``title`` and ``language`` are escaped here; ``body`` must already be safe HTML.
    """
    body_attr = f' class="{escape(body_class)}"' if body_class else ""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(language or "en")}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="CodeDraft">\n'
        f"<title>{escape(title)}</title>\n<style>\n{print_stylesheet()}\n</style>\n</head>\n"
        f"<body{body_attr}>\n{body}\n</body>\n</html>\n"
    )


def text_with_breaks(text: str) -> str:
    """Escape plain text for HTML; line breaks are kept by the ``pre-wrap`` CSS of the caller."""
    return escape(text, quote=False)
