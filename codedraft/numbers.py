"""Numbers typed by people or read from files: request arguments, form fields, search tokens,
attributes of an imported document. Pure: nothing here touches the database or the app.

Every such number is read with :func:`stored_integer`, never with ``str.isdigit()`` and ``int()``:
``isdigit`` is true for "²" and "١٢", which ``int`` then refuses or reads as another number, and a
digit string may be longer than any column holds (tests/test_numbers.py keeps it that way).
"""
from __future__ import annotations

#: The largest value an Integer column holds on PostgreSQL (32 bits). Comparing a column with a
#: larger number raises there, so a number from a URL beyond it is treated as matching nothing.
MAX_INTEGER = 2**31 - 1


def stored_integer(raw: object) -> int | None:
    """``raw`` as a non-negative integer a column can hold, else None: ASCII digits only, with
    surrounding spaces allowed, and no more than :data:`MAX_INTEGER`."""
    text = str(raw or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= MAX_INTEGER else None
