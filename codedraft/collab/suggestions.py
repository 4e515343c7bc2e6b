"""Suggestion mode: the pending suggestions of a clause, and deciding them.

A suggestion lives in the clause's live text as marks on its characters (see the pure core,
``codedraft.collab.core``: ``SUGGEST_INSERT``, ``SUGGEST_DELETE``); suggesters add and withdraw
their own from the editor, checked by the core. Here: the list a panel shows (with each author's
name and colour), a preview of accepting some of them, and the one way they are decided on the
server: accepting or rejecting by id, as a minimal edit through ``ClauseStore.edit_live_text``
in the caller's transaction (the view commits; co-editors get the edit once it commits).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from codedraft import policy, signals
from codedraft.accounts.models import User
from codedraft.codes.models import Clause
from codedraft.collab.core import SUGGESTION_ID, ClauseDocument, SettleSuggestions, Suggestion
from codedraft.collab.store import ClauseStore
from codedraft.exports.compare import DiffSegment, diff_words
from codedraft.extensions import db

#: The origins of log rows (labels.EDIT_ORIGINS names them in the history): suggestions accepted
#: (with any rejected at once), only rejected or withdrawn, and made by the server (an amendment).
ORIGIN = "suggestion"
ORIGIN_REJECTED = "suggestion-rejected"
ORIGIN_SUGGESTED = "suggested"
#: Accounts looked up by one query when naming the authors of a clause's suggestions.
AUTHORS_PER_QUERY = 500
#: The colour of a suggestion whose mark names no account (a neutral grey, also the editor's).
UNKNOWN_AUTHOR_COLOUR = "#767676"
#: Most ids one request may decide (an "accept all" of a long clause stays well below).
MAX_IDS = 500


class SuggestionError(ValueError):
    """The request names suggestions that are malformed or not pending in this clause."""


class NotAllowed(PermissionError):
    """The person may not decide these suggestions."""


@dataclass(frozen=True)
class PendingSuggestion:
    """A pending suggestion as a panel shows it."""

    suggestion: Suggestion
    author: str
    colour: str

    def as_json(self, viewer_id: int | None) -> dict[str, object]:
        s = self.suggestion
        return {"id": s.id, "by": s.by, "author": self.author, "color": self.colour, "kind": s.kind,
                "inserted": s.inserted, "deleted": s.deleted, "start": s.start, "mine": s.by == viewer_id}


@dataclass(frozen=True)
class Preview:
    """What deciding would make of the accepted text: before, after and their word diff."""

    before: str
    after: str
    diff: tuple[DiffSegment, ...]


def checked_ids(raw: Iterable[str]) -> list[str]:
    """The ids a request names, each well-formed, at most MAX_IDS. Raises SuggestionError."""
    ids = list(dict.fromkeys(raw))
    if len(ids) > MAX_IDS:
        raise SuggestionError("too many suggestions in one request")
    for value in ids:
        # Made by browsers (and by amendments: "amendment-<comment id>"), checked by the core.
        if not isinstance(value, str) or not SUGGESTION_ID.fullmatch(value):
            raise SuggestionError("malformed suggestion id")
    return ids


def pending(store: ClauseStore, clause: Clause) -> list[Suggestion]:
    """The clause's pending suggestions, from its live document (none if never co-edited)."""
    if not store.has_history(clause):
        return []
    opened = store.open(clause)
    with opened.lock:
        return opened.doc.suggestions()


def with_authors(suggestions: list[Suggestion]) -> list[PendingSuggestion]:
    """Each suggestion with its author's name and colour, read from the accounts (never from
    the text, where a suggester could have written anything). A mark naming no account (only a
    writer's browser could have made one) is credited to "Someone", in the reader's language."""
    ids = sorted({s.by for s in suggestions})
    people: dict[int, User] = {}
    # In slices: a text can name more authors than a query may bind parameters (SQLite: 32,766).
    for first in range(0, len(ids), AUTHORS_PER_QUERY):
        chunk = ids[first:first + AUTHORS_PER_QUERY]
        people.update((user.id, user) for user in db.session.scalars(select(User).where(User.id.in_(chunk))))
    return [PendingSuggestion(s, people[s.by].name if s.by in people else _("Someone"),
                              people[s.by].colour if s.by in people else UNKNOWN_AUTHOR_COLOUR)
            for s in suggestions]


def _authorise(clause: Clause, by: User, *, accept: Collection[str], reject: Collection[str],
               found: dict[str, Suggestion]) -> None:
    missing = [i for i in (*accept, *reject) if i not in found]
    if missing:
        raise SuggestionError("no such pending suggestion in this clause")
    if policy.can_decide_suggestions(by, clause):
        return
    # A suggester may withdraw (reject) their own suggestions, and nothing else.
    if accept or any(found[i].by != by.id for i in reject) or not policy.can_suggest_on_clause(by, clause):
        raise NotAllowed("only people who may edit the clause accept or reject suggestions")


def decide(store: ClauseStore, clause: Clause, by: User, *, accept: Collection[str] = (),
           reject: Collection[str] = ()) -> bool:
    """Accept and reject suggestions by id, as one minimal edit of the live text in the caller's
    transaction. Returns whether the text changed.

    Raises NotAllowed (a person who may not edit accepting, or rejecting another's suggestion),
    SuggestionError (an id that is not pending in this clause, or in both lists).
    """
    accept, reject = set(checked_ids(accept)), set(checked_ids(reject))
    if accept & reject:
        raise SuggestionError("a suggestion cannot be both accepted and rejected")
    if not accept and not reject:
        raise SuggestionError("name at least one suggestion")
    _authorise(clause, by, accept=accept, reject=reject, found={s.id: s for s in pending(store, clause)})

    decided: dict[str, frozenset[str]] = {}

    def settle(document: ClauseDocument) -> SettleSuggestions:
        # Under the clause's lock: decide only what is still pending at this moment.
        still = {s.id for s in document.suggestions()}
        decided["accept"], decided["reject"] = frozenset(accept & still), frozenset(reject & still)
        return SettleSuggestions(accept=decided["accept"], reject=decided["reject"])

    changed = store.edit_live_text(clause, settle, user_id=by.id, origin=ORIGIN if accept else ORIGIN_REJECTED)
    signals.suggestions_decided.send(current_app._get_current_object(), clause=clause,
                                     accepted=decided.get("accept", frozenset()),
                                     rejected=decided.get("reject", frozenset()), by=by)
    return changed


def preview(store: ClauseStore, clause: Clause, by: User, *, accept: Collection[str] = (),
            reject: Collection[str] = ()) -> Preview:
    """The accepted text before and after deciding, without changing anything. Raises as
    :func:`decide`."""
    accept, reject = set(checked_ids(accept)), set(checked_ids(reject))
    found = {s.id: s for s in pending(store, clause)}
    _authorise(clause, by, accept=accept, reject=reject, found=found)
    opened = store.open(clause)
    with opened.lock:
        state = opened.doc.encode_state()
    copy = ClauseDocument.from_history(state, [])
    before = copy.text
    copy.apply_change(SettleSuggestions(accept=frozenset(accept), reject=frozenset(reject)))
    return Preview(before=before, after=copy.text, diff=diff_words(before, copy.text))
