"""What a notification says, kept as a message key and parameters and said in the reader's language.

A notification is stored as its key (the English msgid below) and its parameters as JSON; the
web list says it in the reader's language, a mail in the recipient's saved language
(:func:`codedraft.notifications.operations.mail_language`). The English text is stored as well:
rows written before keys existed have only that, and show it as written.

Parameters are plain text (names, headings, reasons); the templates escape them like any text.
A parameter named ``disposition`` holds a disposition code and is shown by its translated name;
an activity batch counts its comments and amendments in its own row's columns.
"""
from __future__ import annotations

import json
from typing import Any

from flask_babel import get_translations, gettext, ngettext

from codedraft.labels import N_, disposition_label

REPLIED = N_("%(author)s replied to your comment.")
DISPOSED = N_("Your comment on %(clause)s received the disposition “%(disposition)s”: %(reason)s")
HIDDEN = N_("Your comment was hidden by the Office: %(reason)s")
VISIBLE_AGAIN = N_("Your comment is visible again.")
AMENDMENT_APPLIED = N_("Your amendment to %(clause)s was accepted and applied.")
AMENDMENT_REJECTED = N_("Your amendment to %(clause)s was rejected: %(reason)s")
RESPONSES_PUBLISHED = N_("The responses to %(round)s are published.")
#: An activity batch: "3 new comments and 1 new amendment on 1.2 Transparency".
ACTIVITY = N_("%(what)s on %(clause)s")

KEYS: frozenset[str] = frozenset({REPLIED, DISPOSED, HIDDEN, VISIBLE_AGAIN, AMENDMENT_APPLIED, AMENDMENT_REJECTED,
                                  RESPONSES_PUBLISHED, ACTIVITY})
#: A parameter longer than this is cut: a notification quotes, it does not carry whole texts.
MAX_PARAMETER_CHARS = 300


def encode(params: dict[str, Any]) -> str:
    """The parameters as stored: strings cut to MAX_PARAMETER_CHARS, numbers as they are."""
    kept = {str(name): _stored_value(value) for name, value in params.items()}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True)


def _stored_value(value: Any) -> Any:
    # True and False are ints to Python, but a notification shows them as words.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value)[:MAX_PARAMETER_CHARS]


def decode(stored: str | None) -> dict[str, Any]:
    """The stored parameters; {} for nothing or anything that is not a JSON object."""
    if not stored:
        return {}
    try:
        params = json.loads(stored)
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def activity_what(comments: int, amendments: int) -> str:
    parts = []
    if comments:
        parts.append(ngettext("%(num)d new comment", "%(num)d new comments", comments))
    if amendments:
        parts.append(ngettext("%(num)d new amendment", "%(num)d new amendments", amendments))
    return gettext(" and ").join(parts)


def render(key: str | None, params: dict[str, Any], fallback: str = "", *, comments: int = 0,
           amendments: int = 0) -> str:
    """The message in the current locale; ``fallback`` for an unknown key or parameters that do
    not fit it (never an exception: a notification always shows something)."""
    if not key or key not in KEYS:
        return fallback
    values = dict(params)
    if key == ACTIVITY:
        values["what"] = activity_what(comments, amendments)
    if "disposition" in values:
        values["disposition"] = disposition_label(str(values["disposition"]))
    try:
        # Always formatted, so a key whose parameters are missing falls back instead of showing "%(...)s".
        return str(get_translations().ugettext(key) % values)
    except (KeyError, ValueError, TypeError):
        return fallback


def say(note: Any) -> str:
    """What a stored notification says, in the current locale."""
    return render(note.message_key, decode(note.message_params), note.message or "",
                  comments=note.comment_count or 0, amendments=note.amendment_count or 0)
