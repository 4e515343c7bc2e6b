"""The one Markdown renderer: clauses, comments, previews and exports all go through it.

markdown-it-py's default preset turns raw HTML on, so the CommonMark preset is used with
``html`` off, and the output is sanitised again with nh3 (SECURITY-CASES 17-20).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt

# Depth beyond which nested blocks (``>>>>``, lists) stop nesting: keeps hostile input linear.
MAX_NESTING = 20
MAX_SOURCE_CHARS = 400_000
HEADING_ID_PREFIX = "md-"

_ALLOWED_TAGS = {
    "a", "abbr", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
    **{f"h{level}": {"id"} for level in range(1, 7)},
}
_SLUG_DROP = re.compile(r"[^\w\- ]+", re.UNICODE)


def _slug(text: str) -> str:
    words = _SLUG_DROP.sub("", text).strip().lower().split()
    return "-".join(words)[:80] or "section"


def _heading_ids(state: Any) -> None:
    """Give headings ids that can never clobber DOM names: always prefixed (SECURITY-CASES 19)."""
    seen: dict[str, int] = {}
    tokens = state.tokens
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or index + 1 >= len(tokens):
            continue
        slug = _slug(tokens[index + 1].content)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        token.attrSet("id", f"{HEADING_ID_PREFIX}{slug}" + (f"-{count}" if count else ""))


def _only_prefixed_ids(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "id" and not value.startswith(HEADING_ID_PREFIX):
        return None
    return value


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING})
    parser.enable("table").enable("strikethrough")
    parser.core.ruler.push("codedraft_heading_ids", _heading_ids)
    return parser


def sanitise_html(html: str) -> str:
    """Clean HTML from any source down to what clause text may contain."""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_only_prefixed_ids,
        strip_comments=True,
    )


def render_markdown(text: str) -> str:
    """Render untrusted Markdown to safe HTML in time linear in its length.

    Text beyond ``MAX_SOURCE_CHARS`` is cut off with a visible note rather than refused,
    so a huge paste still previews.
    """
    truncated = len(text) > MAX_SOURCE_CHARS
    source = text[:MAX_SOURCE_CHARS] if truncated else text
    html = sanitise_html(_parser().render(source))
    if truncated:
        html += '<p class="notice">The text is too long to show in full.</p>'
    return html
