"""The search page (/search, /codes/<slug>/search) and GET /api/v1/search.

Both parse the same request arguments into a ``SearchQuery`` with the viewer's visibility
tokens, ask the one engine, and present hits with links to the passage: a draft's clause
(/codes/<slug>/drafts/<n>#clause-<uid>), the live clause (/codes/<slug>/clauses/<uid>), or a
comment (/codes/<slug>/clauses/<uid>#comment-<id>). Bad input is never an error page: the
engine answers with a message, and unreadable filters are dropped with a message.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from codedraft import labels, policy
from codedraft.accounts.models import User
from codedraft.api.auth import api_user, token_required
from codedraft.codes.models import Code
from codedraft.extensions import db, limiter
from codedraft.numbers import stored_integer
from codedraft.search.engine import (
    ENGINE_MESSAGES,
    FACET_FIELDS,
    LIVE_DRAFT,
    MAX_QUERY_CHARS,
    ClauseGroup,
    SearchFilters,
    SearchHit,
    SearchQuery,
    SearchResults,
    clamp_paging,
    code_ids,
    join_messages,
)
from codedraft.search.indexing import allowed_tokens, query_languages, search_engine

bp = Blueprint("search", __name__)

# Request argument -> SearchFilters field, for the exact-value filters.
FILTER_ARGS: dict[str, str] = {
    "chapter": "chapter",
    "clause": "clause_number",
    "draft": "draft",
    "kind": "kind",
    "category": "category",
    "status": "status",
    "author": "author",
}
MAX_FILTER_VALUES = 20
MAX_FILTER_CHARS = 200
SEARCH_RATE = "300 per minute"


@dataclasses.dataclass(frozen=True)
class ParsedRequest:
    """What the request asked for, cleaned, and what had to be dropped."""

    text: str
    filters: SearchFilters
    selected: dict[str, list[str]]
    page: int
    per_page: int
    grouped: bool
    date_from: str
    date_to: str
    messages: tuple[str, ...]


def parse_request(args: MultiDict[str, str], code: Code | None) -> ParsedRequest:
    """Read q, filters, from/to (YYYY-MM-DD), page, per_page and group from query arguments.

    Never raises: unreadable dates or numbers are dropped with a message.
    """
    messages: list[str] = []
    selected: dict[str, list[str]] = {}
    values: dict[str, tuple[str, ...]] = {}
    for arg, field in FILTER_ARGS.items():
        chosen = [v.strip()[:MAX_FILTER_CHARS] for v in args.getlist(arg) if v.strip()][:MAX_FILTER_VALUES]
        chosen = list(dict.fromkeys(chosen))
        if chosen:
            selected[arg] = chosen
            values[field] = tuple(chosen)
    date_from, from_text = _date_arg(args, "from", messages)
    date_to, to_text = _date_arg(args, "to", messages)
    page, per_page = clamp_paging(stored_integer(args.get("page")), stored_integer(args.get("per_page")))
    filters = SearchFilters(
        **values,  # type: ignore[arg-type]
        code_id=code.id if code is not None else None,
        date_from=date_from,
        date_to=date_to,
    )
    # A longer query is cut by the engine (with its own message); this only bounds the work.
    text = args.get("q", "")[: MAX_QUERY_CHARS * 40]
    return ParsedRequest(
        text=text, filters=filters, selected=selected, page=page, per_page=per_page,
        grouped=args.get("group", "") in ("1", "on", "true"), date_from=from_text, date_to=to_text,
        messages=tuple(messages),
    )


def _message_pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching ``template`` with its ``{name}`` parts filled in."""
    seen: set[str] = set()
    pieces = []
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        pieces.append(re.escape(literal))
        if name:
            pieces.append(f"(?P={name})" if name in seen else f"(?P<{name}>[^“”]+?)")
            seen.add(name)
    return re.compile("".join(pieces))


_ENGINE_MESSAGE_PATTERNS = tuple((template, _message_pattern(template)) for template in ENGINE_MESSAGES)


def translated(message: str | None) -> str:
    """The engine's (English) messages in the page's language, the filled-in parts kept."""
    if not message:
        return ""
    for template, pattern in _ENGINE_MESSAGE_PATTERNS:
        message = pattern.sub(lambda found, t=template: _(t).format(**found.groupdict()), message)
    return message


def _date_arg(args: Mapping[str, str], name: str, messages: list[str]) -> tuple[dt.date | None, str]:
    raw = args.get(name, "").strip()
    if not raw:
        return None, ""
    try:
        return dt.date.fromisoformat(raw[:10]), raw[:10]
    except ValueError:
        messages.append(_("Dates must look like 2025-03-11; “%(value)s” was ignored.", value=raw[:20]))
        return None, ""


def run_search(viewer: User, parsed: ParsedRequest) -> SearchResults:
    """Ask the engine as ``viewer``: only documents their tokens allow come back."""
    tokens = allowed_tokens(viewer)
    query = SearchQuery(
        text=parsed.text, allowed_tokens=tokens, filters=parsed.filters,
        page=parsed.page, per_page=parsed.per_page, group_by_clause=parsed.grouped,
        languages=query_languages(tokens, code_ids(parsed.filters.code_id)),
    )
    return search_engine().search(query)


# --- presenting hits -------------------------------------------------------------------------


def codes_by_id(ids: Sequence[int]) -> dict[int, Code]:
    if not ids:
        return {}
    return {code.id: code for code in db.session.scalars(select(Code).where(Code.id.in_(set(ids))))}


def hit_url(hit: SearchHit, code: Code | None) -> str | None:
    """Where a hit leads: the clause in its draft, the live clause, or the comment."""
    fields = hit.fields
    uid = str(fields.get("clause_uid") or "")
    if code is None or not uid:
        return None
    if hit.kind == "comment":
        comment_id = hit.doc_id.removeprefix("comment:")
        return url_for("codes.clause", slug=code.slug, uid=uid) + f"#comment-{comment_id}"
    number = stored_integer(fields.get("draft") or LIVE_DRAFT)
    if number is not None:
        return url_for("drafts.show", slug=code.slug, number=number) + f"#clause-{uid}"
    return url_for("codes.clause", slug=code.slug, uid=uid)


def hit_json(hit: SearchHit, codes: Mapping[int, Code]) -> dict[str, Any]:
    fields = hit.fields
    code = codes.get(int(str(fields.get("code_id") or 0)))
    created = fields.get("created")
    draft = str(fields.get("draft") or LIVE_DRAFT)
    return {
        "doc_id": hit.doc_id,
        "kind": hit.kind,
        "score": round(hit.score, 4),
        "snippet": hit.snippet,
        "url": hit_url(hit, code),
        "code": {"slug": code.slug, "title": code.title} if code else None,
        "chapter": str(fields.get("chapter") or ""),
        "clause": {
            "uid": str(fields.get("clause_uid") or ""),
            "number": str(fields.get("clause_number") or ""),
            "heading": str(fields.get("clause_title") or ""),
        },
        "draft": {"number": stored_integer(draft), "label": draft_label(draft, fields)},
        "category": str(fields.get("category") or ""),
        "status": str(fields.get("status") or ""),
        "author": str(fields.get("author") or ""),
        "created": created.isoformat() + "Z" if isinstance(created, dt.datetime) else None,
    }


def draft_label(draft: str, fields: Mapping[str, object]) -> str:
    if draft == LIVE_DRAFT or not draft:
        return _("Live text")
    label = str(fields.get("draft_label") or "")
    return label or _("Draft %(number)s", number=draft)


def group_json(group: ClauseGroup, codes: Mapping[int, Code]) -> dict[str, Any]:
    return {
        "clause_uid": group.clause_uid,
        "clause_number": group.clause_number,
        "heading": group.clause_title,
        "best_score": round(group.best_score, 4),
        "hits": [hit_json(h, codes) for h in group.hits],
    }


def results_json(results: SearchResults, extra_messages: Sequence[str], grouped: bool) -> dict[str, Any]:
    codes = codes_by_id([int(str(h.fields.get("code_id") or 0)) for h in results.hits])
    body: dict[str, Any] = {
        "total": results.total,
        "estimated": results.estimated,
        "page": results.page,
        "per_page": results.per_page,
        "message": join_messages([*extra_messages, translated(results.message)]),
        "facets": {name: dict(results.facets.get(name, {})) for name in FACET_FIELDS},
        "hits": [hit_json(h, codes) for h in results.hits],
    }
    if grouped:
        body["total_groups"] = results.total_groups
        body["groups"] = [group_json(g, codes) for g in results.groups]
    return body


# --- the page --------------------------------------------------------------------------------


def visible_codes(user: User) -> list[Code]:
    return [c for c in db.session.scalars(select(Code).order_by(Code.title)) if policy.can_view_code(user, c)]


def code_from_arg(slug: str | None, user: User) -> Code | None:
    """The code named by ?code=slug, or None when absent; 404 for a missing or hidden one."""
    if not slug:
        return None
    code = db.session.scalar(select(Code).where(Code.slug == slug))
    if code is None or not policy.can_view_code(user, code):
        abort(404)
    return code


@bp.route("/search")
@login_required
@limiter.limit(SEARCH_RATE)
def search_all() -> ResponseReturnValue:
    code = code_from_arg(request.args.get("code"), current_user)
    return _render_page(code, scoped=False)


@bp.route("/codes/<slug>/search")
@login_required
@limiter.limit(SEARCH_RATE)
def search_code(slug: str) -> ResponseReturnValue:
    from codedraft.codes.views import load_code

    return _render_page(load_code(slug), scoped=True)


def _render_page(code: Code | None, *, scoped: bool) -> ResponseReturnValue:
    parsed = parse_request(request.args, code)
    asked = bool(parsed.text.strip()) or bool(parsed.selected) or bool(parsed.date_from or parsed.date_to)
    results = run_search(current_user, parsed) if asked else None
    codes = codes_by_id([int(str(h.fields.get("code_id") or 0)) for h in results.hits]) if results else {}
    endpoint_args = {"slug": code.slug} if scoped and code else {}
    links = FacetLinks(request.args, request.endpoint or "search.search_all", endpoint_args)
    message = (join_messages([*parsed.messages, translated(results.message)]) if results
               else join_messages(parsed.messages))
    pages = 0
    if results is not None:
        count = results.total_groups if parsed.grouped else results.total
        pages = min(-(-count // parsed.per_page), 200)
    return render_template(
        "search/search.html", code=code, scoped=scoped, parsed=parsed, results=results, message=message,
        codes=codes, links=links, pages=pages, hit_url=hit_url, draft_label=draft_label,
        all_codes=[] if scoped else visible_codes(current_user), facet_fields=FACET_FIELDS,
        categories=labels.stakeholder_categories(),
    )


class FacetLinks:
    """URLs for the page's links: add or remove one filter value, or go to another page."""

    def __init__(self, args: MultiDict[str, str], endpoint: str, endpoint_args: dict[str, str]) -> None:
        self.args = args
        self.endpoint = endpoint
        self.endpoint_args = endpoint_args

    def _url(self, params: dict[str, list[str]]) -> str:
        clean = {k: v for k, v in params.items() if v}
        return url_for(self.endpoint, **self.endpoint_args, **clean)

    def _params(self) -> dict[str, list[str]]:
        return {key: self.args.getlist(key) for key in self.args if key != "page"}

    def add(self, name: str, value: str) -> str:
        params = self._params()
        params[name] = [*params.get(name, []), value]
        return self._url(params)

    def remove(self, name: str, value: str) -> str:
        params = self._params()
        params[name] = [v for v in params.get(name, []) if v != value]
        return self._url(params)

    def page(self, number: int) -> str:
        params = self._params()
        params["page"] = [str(number)]
        return self._url(params)

    def toggle_group(self, on: bool) -> str:
        params = self._params()
        params["group"] = ["1"] if on else []
        return self._url(params)

    def is_selected(self, name: str, value: str) -> bool:
        return value in self.args.getlist(name)


# --- the API ---------------------------------------------------------------------------------


@bp.route("/api/v1/search")
@token_required
@limiter.limit(SEARCH_RATE)
def api_search() -> ResponseReturnValue:
    """JSON answer: {total, page, per_page, message, facets, hits, groups?, total_groups?}."""
    user = api_user()
    code = code_from_arg(request.args.get("code"), user)
    parsed = parse_request(request.args, code)
    results = run_search(user, parsed)
    return jsonify(results_json(results, parsed.messages, parsed.grouped))
