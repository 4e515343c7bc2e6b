"""The co-editing refusals in the reader's language.

The pure core (:mod:`codedraft.collab.core`) and the presence checks refuse with English
messages that carry their msgid and parameters (:class:`~codedraft.collab.core.Reason`); the
Socket.IO adapter says them, and its own refusals, in the language the socket was opened in.
Every message is listed here for extraction; ``tests/collab/test_messages.py`` fails when the
core gains a refusal that is not listed.
"""
from __future__ import annotations

from typing import Any

from flask_babel import force_locale, get_translations, gettext

from codedraft.collab.core import Reason
from codedraft.labels import N_

#: The adapter's own refusals (codedraft.collab.namespace, codedraft.collab.store).
ADAPTER = (
    N_("Not connected."), N_("Too many messages; slow down."), N_("Send {clause: '<clause id>'}."),
    N_("No such clause, or you may not see it."),
    N_("Send {clause: '<clause id>', msg: <binary y-protocols message>}."), N_("Join the clause first."),
    N_("Your session has ended; sign in again."), N_("You may not see this clause any more."),
    N_("Held until earlier edits arrive; send them first."), N_("You signed out."), N_("Sign in to edit clauses."),
    N_("the edit could not be stored"), N_("the clause is being changed; try again"), N_("the clause is gone"),
    N_("Too many pages are open for this account; close some, then reload this one."),
)

#: The core's and the presence checks' refusals, as raised (msgids with their placeholders).
CORE = (
    N_("%(what)s is truncated"), N_("%(what)s holds an integer out of range"),
    N_("%(what)s holds a string that is not UTF-8"), N_("%(what)s has trailing bytes"),
    N_("sticky index holds an integer out of range"), N_("message of %(size)d bytes exceeds the %(limit)d-byte limit"),
    N_("unknown sync message type %(type)d"), N_("unknown message type %(type)d"),
    N_("awareness state is nested too deeply"), N_("awareness state is not valid JSON"),
    N_("awareness state must be a JSON object or null"),
    N_("awareness update names %(count)d clients; the limit is %(limit)d"), N_("update content is nested too deeply"),
    N_("update holds an unknown value type"), N_("update holds content of type %(type)d, not allowed in a clause"),
    N_("update does not decode"),
    N_("update inserts a NUL character, which a clause cannot hold"), N_("state vector does not decode"),
    N_("you may read this clause but not edit it"),
    N_("update could not be applied"), N_("update touches a shared type other than %(body)s"),
    N_("not an awareness message"), N_("a connection may only remove the presence it announced itself"),
    N_("a connection may announce at most %(limit)d presences in a clause"),
    N_("that presence belongs to another person"),
    N_("the update writes under another person's editor id"),
    # The suggestion check (a reviewer's update may only add or withdraw their own marks).
    N_("a suggestion may not change the accepted text"),
    N_("a suggestion may only carry your insertion mark"),
    N_("a suggestion may only change suggestion marks"),
    N_("delete your own suggested text instead of marking it"),
    N_("only a chair may accept a suggestion"),
    N_("the update could not be checked as one change"),
    N_("the update makes a change a suggestion cannot make"),
    N_("the update reaches past the end of the clause"),
    N_("you may not change another person's suggestion"),
    N_("you may not mark accepted text as inserted"),
    N_("you may only mark text as your own suggestion"),
    N_("you may only remove your own suggested text"),
    N_("you may only suggest text, marked as your suggestion"),
)

#: What the core's decoder was reading (the ``what`` of its refusals).
PARTS = {"frames": N_("frames"), "message": N_("the message"), "state vector": N_("state vector"),
         "awareness update": N_("awareness update"), "update": N_("the update"), "sticky index": N_("sticky index")}


def said(reason: str) -> str:
    """``reason`` in the current locale: a core Reason with its parameters, or an adapter
    message; any other text as it is."""
    if isinstance(reason, Reason) and reason.params:
        params: dict[str, Any] = dict(reason.params)
        part = PARTS.get(str(params.get("what")))
        if part is not None:
            params["what"] = gettext(part)
        try:
            return str(get_translations().ugettext(reason.msgid) % params)
        except (KeyError, ValueError, TypeError):
            return str(reason)
    return str(gettext(str(reason)))


def said_in(reason: str, language: str | None) -> str:
    """``reason`` in ``language`` (None: the current request's)."""
    if language is None:
        return said(reason)
    with force_locale(language):
        return said(reason)
