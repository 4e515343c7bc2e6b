"""Database engine settings that must hold for every connection."""
from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL for concurrent readers; synchronous=FULL because acknowledged edits must survive a
    power loss (SECURITY-CASES 16); foreign keys on, since SQLite leaves them off."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def storable_text(text: str) -> bool:
    """Whether both databases can store or compare ``text``: PostgreSQL refuses NUL characters,
    and a lone surrogate (JSON's ``"\\ud800"`` decodes to one) has no UTF-8 form."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TextTooLong(ValueError):
    """A value longer than its column holds; the message names the field and the limit."""

    def __init__(self, field: str, limit: int) -> None:
        super().__init__(f"The field '{field}' is longer than {limit} characters.")
        self.field = field
        self.limit = limit


class TextNotStorable(ValueError):
    """A value holding a character no column can hold (NUL, a lone surrogate); the message names
    the field."""

    def __init__(self, field: str) -> None:
        super().__init__(f"The field '{field}' holds a character that cannot be stored (such as NUL).")
        self.field = field


def check_string_lengths(_mapper: Any, _connection: Any, target: Any) -> None:
    """Refuse a text value its column cannot hold, before it is written: longer than its
    ``String(n)``, or with a character PostgreSQL refuses (:func:`storable_text`).

    SQLite stores both, but PostgreSQL refuses them with an error that surfaced as a 500; checking
    here, for every form, the API and the importer at once, makes both databases give the same
    clear answer (SECURITY-CASES 38).
    """
    table = getattr(target, "__table__", None)
    if table is None:
        return
    for column in table.columns:
        value = getattr(target, column.key, None)
        if not isinstance(value, str):
            continue
        limit = getattr(column.type, "length", None)
        if limit and len(value) > limit:
            raise TextTooLong(column.key, limit)
        if not storable_text(value):
            raise TextNotStorable(column.key)
