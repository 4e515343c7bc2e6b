"""Time in one convention: naive UTC datetimes in the database, aware ones never stored.

A time that comes from outside (a form's ``datetime-local`` field, which a person or a script may
fill with an offset) enters through :func:`parse_utc`, and an operation given a time normalises
it with :func:`naive_utc`: comparing an aware time with a stored naive one raises.
"""
from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` in the stored convention: an aware time converted to UTC, a naive one read as
    UTC already. Raises OverflowError if the conversion leaves the years 1 to 9999."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def parse_utc(text: str) -> datetime | None:
    """A time typed as ISO 8601 ("2027-01-10T10:00", with or without an offset) in the stored
    convention; None if it is not one, or if its offset takes it out of the calendar."""
    try:
        return naive_utc(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        return None
